// The JSON reader: the tree, the pull reader's exact integers and lone-surrogate policies, and
// strictness — every malformed input is an Error naming the source, the byte and the problem.

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "nanochat/core/json.hpp"

namespace json = nanochat::json;

namespace {

// Parsing `text` fails with a message holding "t: invalid JSON at byte <byte>: " and `problem`.
void expect_invalid(const std::string& text, std::size_t byte, const std::string& problem) {
  INFO(text);
  try {
    (void)json::parse(text, "t");
    FAIL("parsing succeeded but should fail with: ", problem);
  } catch (const nanochat::Error& e) {
    const std::string message = e.what();
    INFO(message);
    CHECK(message.find("t: invalid JSON at byte " + std::to_string(byte) + ": ") != std::string::npos);
    CHECK(message.find(problem) != std::string::npos);
  }
}

std::string read_one_string(const std::string& text, json::LoneSurrogate lone) {
  json::Reader in(text, "t", lone);
  std::string s = in.read_string();
  in.finish();
  return s;
}

}  // namespace

TEST_CASE("json: the tree holds every kind of value") {
  const json::Value v = json::parse(
      " {\"s\": \"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u6771\\uD83D\\uDE42\", \"n\": [0, -0.5, 1e3, 2E-2, -7],"
      " \"o\": {\"t\": true, \"f\": false, \"z\": null}, \"e\": {}, \"a\": [], \"k\": 1, \"k\": 2}\r\n",
      "t");
  CHECK(v.find("s")->string("s") == "a\"\\/\b\f\n\r\t\xC3\xA9\xE6\x9D\xB1\xF0\x9F\x99\x82");
  const json::Array& n = v.find("n")->array("n");
  REQUIRE(n.size() == 5);
  CHECK(n[0].number("0") == 0.0);
  CHECK(n[1].number("1") == -0.5);
  CHECK(n[2].number("2") == 1000.0);
  CHECK(n[3].number("3") == 0.02);
  CHECK(n[4].number("4") == -7.0);
  const json::Value* o = v.find("o");
  CHECK(std::get<bool>(o->find("t")->data));
  CHECK(!std::get<bool>(o->find("f")->data));
  CHECK(o->find("z")->is_null());
  CHECK(o->find("absent") == nullptr);
  CHECK(v.find("e")->object("e").empty());
  CHECK(v.find("a")->array("a").empty());
  CHECK(v.find("k")->number("k") == 2.0);  // the last of repeated keys, as Python's json
  CHECK(json::parse("\"top\"", "t").string("top") == "top");
  CHECK_THROWS_WITH_AS((void)v.find("s")->number("field s"), doctest::Contains("field s must be a number"),
                       nanochat::Error);
}

TEST_CASE("json: a whole number is a count from 0 to 2^53, refused before any cast otherwise") {
  const json::Value v = json::parse("[0, 7, 9007199254740992, 2.5, -1, 1e30, \"3\"]", "t");
  const json::Array& n = v.array("a");
  CHECK(n[0].whole_number("0") == 0);
  CHECK(n[1].whole_number("1") == 7);
  CHECK(n[2].whole_number("2") == (std::uint64_t{1} << 53));
  for (std::size_t i : {3, 4, 5}) {
    CHECK_THROWS_WITH_AS((void)n[i].whole_number("count"), doctest::Contains("not a whole number from 0 to 2^53"),
                         nanochat::Error);
  }
  CHECK_THROWS_WITH_AS((void)n[6].whole_number("count"), doctest::Contains("count must be a number"), nanochat::Error);
}

TEST_CASE("json: quote writes every byte so that the reader gives it back") {
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  CHECK(json::quote("a\"b\\c\x01\n") == "\"a\\\"b\\\\c\\u0001\\u000a\"");
  CHECK(json::parse(json::quote(all), "t").string("all") == all);
}

TEST_CASE("json: a lone surrogate is rejected, replaced or kept, as the reader is told") {
  // A high surrogate alone, before a non-surrogate escape, and a low surrogate alone.
  for (const std::string text : {"\"x\\ud800\"", "\"x\\ud800\\u0041\"", "\"x\\udc00\""}) {
    CAPTURE(text);
    const std::string rest = text.find("0041") != std::string::npos ? "A" : "";
    CHECK(read_one_string(text, json::LoneSurrogate::replace) == "x\xEF\xBF\xBD" + rest);
    const std::string kept = read_one_string(text, json::LoneSurrogate::keep);
    CHECK(kept == (text.find("dc00") != std::string::npos ? "x\xED\xB0\x80" : "x\xED\xA0\x80" + rest));
    json::Reader in(text, "h", json::LoneSurrogate::reject, "header");
    CHECK_THROWS_WITH_AS((void)in.read_string(),
                         doctest::Contains("h: invalid header at byte 2: unpaired surrogate in \\u escape"),
                         nanochat::Error);
  }
  CHECK(read_one_string("\"\\ud83d\\ude42\"", json::LoneSurrogate::reject) == "\xF0\x9F\x99\x82");
}

TEST_CASE("json: integers are exact to 64 bits, and only integers pass as integers") {
  json::Reader in("[0, 18446744073709551615, 9007199254740993]", "t");
  std::vector<std::uint64_t> values;
  in.read_array([&] { values.push_back(in.read_uint64()); });
  in.finish();
  CHECK(values == std::vector<std::uint64_t>{0, UINT64_MAX, 9007199254740993ull});
  const auto uint64_error = [](const std::string& text) {
    json::Reader bad(text, "t");
    try {
      (void)bad.read_uint64();
    } catch (const nanochat::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(uint64_error(" 18446744073709551616").find("byte 1: integer 18446744073709551616 does not fit 64 bits") !=
        std::string::npos);
  CHECK(uint64_error("-1").find("expected a non-negative integer") != std::string::npos);
  CHECK(uint64_error("\"1\"").find("expected a non-negative integer") != std::string::npos);
  CHECK(uint64_error("1.0").find("expected an integer, got a fraction or exponent") != std::string::npos);
  CHECK(uint64_error("1e3").find("expected an integer, got a fraction or exponent") != std::string::npos);
}

TEST_CASE("json: malformed text is an error naming the byte and the problem") {
  expect_invalid("", 0, "expected a value");
  expect_invalid("{\"a\": 1} x", 9, "unexpected text after the value");
  expect_invalid("[1] [2]", 4, "unexpected text after the value");
  expect_invalid("{\"a\": \"xy", 6, "unterminated string");
  expect_invalid("\"ab\\", 0, "unterminated string");
  expect_invalid("\"a\\x\"", 2, "invalid escape '\\x'");
  expect_invalid("\"a\\u12x4\"", 6, "bad hex digit in \\u escape");
  expect_invalid("\"a\\u12", 4, "truncated \\u escape");
  expect_invalid("\"a\tb\"", 2, "raw control character in a string");
  expect_invalid("{'a': 1}", 1, "expected a string key");
  expect_invalid("{\"a\" 1}", 5, "expected ':'");
  expect_invalid("{\"a\": 1,}", 8, "expected a string key");
  expect_invalid("{\"a\": 1 \"b\": 2}", 8, "expected ',' or '}'");
  expect_invalid("[1, 2", 5, "expected ',' or ']'");
  expect_invalid("[1,]", 3, "expected a value");
  expect_invalid("[tru]", 1, "expected a value");
  expect_invalid("NaN", 0, "expected a value");
  expect_invalid("-Infinity", 1, "expected a value");
  expect_invalid("+1", 0, "expected a value");
  expect_invalid("-", 1, "expected a value");
  expect_invalid("012", 0, "number with a leading zero");
  expect_invalid("1.", 2, "expected digits after '.'");
  expect_invalid(".5", 0, "expected a value");
  expect_invalid("1e+", 3, "expected exponent digits");
  expect_invalid("[1, -1e999]", 4, "number -1e999 is out of the range of a double");
  expect_invalid("1e-400", 0, "out of the range of a double");
}

TEST_CASE("json: nesting is bounded, in the tree and when skipping") {
  const auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  CHECK(json::parse(nested(json::Reader::max_depth), "t").is_array());
  expect_invalid(nested(json::Reader::max_depth + 1), json::Reader::max_depth + 1, "more than 256 levels of nesting");
  expect_invalid(std::string(100000, '['), 257, "more than 256 levels of nesting");
  const std::string deep = "{\"deep\": " + nested(300) + "}";
  json::Reader skipping(deep, "t");
  CHECK_THROWS_WITH_AS(skipping.skip_value(), doctest::Contains("levels of nesting"), nanochat::Error);
}

TEST_CASE("json: skipping a value checks it as strictly as reading it") {
  for (const std::string text : {"[1, 01]", "{\"a\": \"\\q\"}", "[nul]", "{\"a\" 1}", "[1e999]"}) {
    CAPTURE(text);
    json::Reader in(text, "t");
    CHECK_THROWS_AS(in.skip_value(), nanochat::Error);
  }
  json::Reader in(" {\"a\": [1, {\"b\": null}, \"\\u00e9\"], \"c\": true} ", "t");
  in.skip_value();
  in.finish();
}

TEST_CASE("json: every truncation and byte flip of a document is a clean result or an Error") {
  const std::string doc =
      R"({"messages": [{"role": "user", "content": "h\u00e9llo \ud83d\ude42"}, {"n": [1.5e3, -2, true, null]}]})";
  for (std::size_t n = 0; n < doc.size(); ++n) {
    CAPTURE(n);
    CHECK_THROWS_AS((void)json::parse(doc.substr(0, n), "t"), nanochat::Error);
  }
  for (std::size_t i = 0; i < doc.size(); ++i) {
    for (const char c : {'\0', '"', '\\', '{', ']', ',', '9', 'x', '\x80'}) {
      std::string flipped = doc;
      flipped[i] = c;
      try {
        (void)json::parse(flipped, "t");
      } catch (const nanochat::Error&) {
      }
    }
  }
}
