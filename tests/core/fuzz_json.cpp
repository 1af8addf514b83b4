// libFuzzer target: the strict JSON reader (core/json.hpp) on any bytes, under ASan and UBSan.
// What must hold:
//   - the tree parser and the pull reader's skip_value accept exactly the same texts, and the
//     three lone-surrogate policies differ only in that `reject` refuses more;
//   - a failure is a nanochat::Error "fuzz.json: invalid JSON at byte N: ...";
//   - a parsed tree written back (quote() for strings, shortest round-trip numbers) parses to the
//     same tree, and writing that again gives the same text;
//   - from valid UTF-8, every string and key of the tree is valid UTF-8;
//   - whole_number() on every number either gives the number or an Error (never UB), and
//     quote() of any bytes reads back as those bytes.
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/core/utf8.hpp"

namespace json = nanochat::json;
using nanochat::fuzz::check;

namespace {

constexpr std::string_view kSource = "fuzz.json";

std::string write(const json::Value& v) {
  if (v.is_null()) return "null";
  if (const bool* b = std::get_if<bool>(&v.data)) return *b ? "true" : "false";
  if (const double* d = std::get_if<double>(&v.data)) {
    char buf[64];
    const auto end = std::to_chars(buf, buf + sizeof buf, *d).ptr;  // shortest text that reads back exactly
    return {buf, end};
  }
  if (v.is_string()) return json::quote(std::get<std::string>(v.data));
  std::string out;
  if (v.is_array()) {
    out = "[";
    for (const json::Value& e : std::get<json::Array>(v.data)) out += (out.size() > 1 ? "," : "") + write(e);
    return out + "]";
  }
  out = "{";
  for (const auto& [k, e] : std::get<json::Object>(v.data))
    out += (out.size() > 1 ? "," : "") + json::quote(k) + ":" + write(e);
  return out + "}";
}

bool same(const json::Value& a, const json::Value& b) {
  if (a.data.index() != b.data.index()) return false;
  if (a.is_array()) {
    const auto &x = std::get<json::Array>(a.data), &y = std::get<json::Array>(b.data);
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i)
      if (!same(x[i], y[i])) return false;
    return true;
  }
  if (a.is_object()) {
    const auto &x = std::get<json::Object>(a.data), &y = std::get<json::Object>(b.data);
    if (x.size() != y.size()) return false;
    for (auto i = x.begin(), j = y.begin(); i != x.end(); ++i, ++j)
      if (i->first != j->first || !same(i->second, j->second)) return false;
    return true;
  }
  if (const double* d = std::get_if<double>(&a.data)) {
    const double e = std::get<double>(b.data);
    return *d == e && std::signbit(*d) == std::signbit(e);
  }
  if (a.is_string()) return std::get<std::string>(a.data) == std::get<std::string>(b.data);
  if (const bool* x = std::get_if<bool>(&a.data)) return *x == std::get<bool>(b.data);
  return true;  // both null
}

// Visits every value of the tree: strings stay UTF-8, whole_number never misbehaves.
void walk(const json::Value& v, bool utf8_input) {
  if (v.is_string()) check(!utf8_input || nanochat::is_valid_utf8(std::get<std::string>(v.data)), "string not UTF-8");
  if (const double* d = std::get_if<double>(&v.data)) {
    check(std::isfinite(*d), "a parsed number is not finite");
    try {
      const std::uint64_t n = v.whole_number("n");
      check(static_cast<double>(n) == *d, "whole_number changed the value");
    } catch (const nanochat::Error&) {
      check(!(*d >= 0 && *d <= 0x1p53 && *d == std::floor(*d)), "whole_number refused a whole number");
    }
  }
  if (v.is_array())
    for (const json::Value& e : std::get<json::Array>(v.data)) walk(e, utf8_input);
  if (v.is_object()) {
    for (const auto& [k, e] : std::get<json::Object>(v.data)) {
      check(!utf8_input || nanochat::is_valid_utf8(k), "key not UTF-8");
      walk(e, utf8_input);
    }
  }
}

bool skips(std::string_view text, json::LoneSurrogate lone) {
  try {
    json::Reader in(text, kSource, lone);
    in.skip_value();
    in.finish();
    return true;
  } catch (const nanochat::Error& e) {
    check(std::string_view(e.what()).starts_with("fuzz.json: invalid JSON at byte "), "error format");
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = nanochat::fuzz::as_text(data, size);
  bool parsed = false;
  try {
    const json::Value v = json::parse(text, kSource);
    parsed = true;
    walk(v, nanochat::is_valid_utf8(text));
    const std::string written = write(v);
    const json::Value again = json::parse(written, "written");
    check(same(v, again), "the written tree parses to another tree");
    check(write(again) == written, "writing is not stable");
  } catch (const nanochat::Error& e) {
    check(!parsed, "an Error after parsing succeeded");
    check(std::string_view(e.what()).starts_with("fuzz.json: invalid JSON at byte "), "error format");
  }
  const bool replace = skips(text, json::LoneSurrogate::replace);
  check(replace == parsed, "skip_value and parse disagree");
  check(skips(text, json::LoneSurrogate::keep) == parsed, "lone surrogate 'keep' accepts differently");
  check(!skips(text, json::LoneSurrogate::reject) || parsed, "'reject' accepted what parse refused");

  const std::string quoted = json::quote(text);
  json::Reader in(quoted, "quoted");
  check(in.read_string() == text, "quote does not read back");
  in.finish();
  return 0;
}
