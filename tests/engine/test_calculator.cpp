// The calculator tool: cases checked against Python 3's eval/str by hand, and fuzzing — random
// expression trees against a direct evaluation, and random strings that must never crash.

#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "nanochat/engine/calculator.hpp"

using nanochat::engine::use_calculator;
using nanochat::engine::calculator_detail::python_float_str;

namespace {
std::string calc(const std::string& s) { return use_calculator(s).value_or("<none>"); }
}  // namespace

TEST_CASE("calculator: arithmetic as Python evaluates and prints it") {
  CHECK(calc("1+2") == "3");
  CHECK(calc("12/60") == "0.2");
  CHECK(calc("0.2*50") == "10.0");
  CHECK(calc("2*(3+4)") == "14");
  CHECK(calc(" ( 1 + 2 ) * 3 ") == "9");
  CHECK(calc("1,000 * 3") == "3000");  // commas are removed first
  CHECK(calc("-3 - -2") == "-1");
  CHECK(calc("+-+5") == "-5");
  CHECK(calc("7//2") == "3");
  CHECK(calc("-7//2") == "-4");
  CHECK(calc("7.5//2") == "3.0");
  CHECK(calc("-7.5//2") == "-4.0");
  CHECK(calc("1/3") == "0.3333333333333333");
  CHECK(calc("2/3") == "0.6666666666666666");
  CHECK(calc("10/2") == "5.0");
  CHECK(calc("0.1+0.2") == "0.30000000000000004");
  CHECK(calc("1e3") == "<none>");  // 'e' is not an arithmetic character and there is no .count(
  CHECK(calc("100000000000000000.0") == "1e+17");
  CHECK(calc("10000000000000000.0") == "1e+16");
  CHECK(calc("1000000000000000.0") == "1000000000000000.0");
  CHECK(calc("0.0001") == "0.0001");
  CHECK(calc("0.00001") == "1e-05");
  CHECK(calc("1.5/100000") == "1.5e-05");
  CHECK(calc("-0.0") == "-0.0");
  CHECK(calc("5.") == "5.0");
  CHECK(calc(".5") == "0.5");
  CHECK(calc("00") == "0");
  CHECK(calc("3.14*2") == "6.28");
  CHECK(calc("123456789*987654321") == "121932631112635269");
}

TEST_CASE("calculator: no result for errors and anything outside the grammar") {
  for (const char* bad : {"2**3", "1/0", "1//0", "1.0/0", "5 % 2", "", " ", "()", "(1", "1)", "1 2", "2(3)",
                          "1.2.3", "012", "1 .2", "--", "1+", "*3", "/ /", "9223372036854775807+1",
                          "99999999999999999999", "abs(1)", "print(1)", "__import__('os')", "'a'.upper()",
                          "x.count('a')", "'a'.count('a'", "'aa'.count('a') 'b'", "open('f').count('a')",
                          "'a'.count(\"a\")+1", "'ab' 'cd'.count('a')", "'abc'.count('a', 1)"}) {
    CAPTURE(bad);
    CHECK_FALSE(use_calculator(bad).has_value());
  }
  CHECK_FALSE(use_calculator(std::string(1000, '(') + "1" + std::string(1000, ')')).has_value());
}

TEST_CASE("calculator: 'literal'.count('literal')") {
  CHECK(calc("'strawberry'.count('r')") == "3");
  CHECK(calc("\"strawberry\".count(\"r\")") == "3");
  CHECK(calc(" 'aaaa'.count( 'aa' ) ") == "2");  // non-overlapping, as Python counts
  CHECK(calc("'aaaa' . count('a')") == "<none>");  // nanochat requires the text ".count("
  CHECK(calc("'abc'.count('')") == "4");
  CHECK(calc("'Mississippi'.count('s')") == "4");
  CHECK(calc("'a,b,c'.count('b')") == "1");  // commas removed first
  CHECK(calc("'hello world'.count('o')") == "2");
  CHECK(calc("'file'.count('f')") == "<none>");  // nanochat's banned words apply to the whole text
}

namespace {
// Random expression over small ints with + - * and parentheses, and its value.
std::string random_expr(std::mt19937& rng, int depth, std::int64_t& value) {
  std::uniform_int_distribution<int> pick(0, 5);
  if (depth == 0 || pick(rng) < 2) {
    value = std::uniform_int_distribution<std::int64_t>(0, 999)(rng);
    return std::to_string(value);
  }
  std::int64_t a = 0, b = 0;
  const std::string left = random_expr(rng, depth - 1, a), right = random_expr(rng, depth - 1, b);
  switch (pick(rng) % 4) {
    case 0: value = a + b; return "(" + left + " + " + right + ")";
    case 1: value = a - b; return "(" + left + "-" + right + ")";
    case 2: value = a * b; return "(" + left + ")*(" + right + ")";
    default: value = -a; return "-(" + left + ")";
  }
}
}  // namespace

TEST_CASE("calculator fuzz: random expressions evaluate exactly and random text never crashes") {
  std::mt19937 rng(1234);
  for (int i = 0; i < 3000; ++i) {
    std::int64_t value = 0;
    const std::string e = random_expr(rng, 4, value);
    CAPTURE(e);
    CHECK(calc(e) == std::to_string(value));
  }
  const std::string alphabets[] = {"0123456789*+-/.() ", "0123456789+-*/()", "ab'\".()_ count,",
                                   std::string("0123456789*+-/.() ab'\"\\\x01\xff,:;[]{}=<>\n", 37)};
  int with_result = 0;
  for (const std::string& alphabet : alphabets)
    for (int i = 0; i < 20000; ++i) {
      const auto len = std::uniform_int_distribution<int>(0, 24)(rng);
      std::string s;
      for (int j = 0; j < len; ++j)
        s += alphabet[static_cast<std::size_t>(std::uniform_int_distribution<std::size_t>(0, alphabet.size() - 1)(rng))];
      CAPTURE(s);
      const auto r = use_calculator(s);
      if (r) {
        ++with_result;
        CHECK(!r->empty());
        CHECK(r->find_first_not_of("0123456789.-+einaf") == std::string::npos);
      }
    }
  CHECK(with_result > 0);
}

TEST_CASE("python_float_str matches Python's repr on round trips") {
  CHECK(python_float_str(0.1) == "0.1");
  CHECK(python_float_str(1e22) == "1e+22");
  CHECK(python_float_str(1.0 / 0.0) == "inf");
  CHECK(python_float_str(123.456) == "123.456");
  CHECK(python_float_str(2.5e-7) == "2.5e-07");
  CHECK(python_float_str(1234567890123456.7) == "1234567890123456.8");
}
