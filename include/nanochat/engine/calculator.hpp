#pragma once
// nanochat's calculator tool (spec §7.4) as a small safe evaluator: it never runs general code.
// nanochat evaluates the text as Python after a character filter; this accepts the subset of
// Python that filter lets through and that means arithmetic or counting:
//
//   arithmetic (characters 0-9 + - * / . ( ) space; "**" refused):
//     expr   := term (("+" | "-") term)*
//     term   := unary (("*" | "/" | "//") unary)*
//     unary  := ("+" | "-") unary | atom
//     atom   := number | "(" expr ")"
//     number := digits ["." [digits]] | "." digits      (no leading zeros on integers, as Python)
//   counting (letters, digits, ' " ( ) . _ space; none of nanochat's banned words; ".count(" in it):
//     'literal'.count('literal')   either quote, spaces between tokens allowed
//
// Values follow Python: ints stay ints under + - * and //, / is true division to float, mixed
// operands become float, x / 0 and x // 0 have no result. Python's ints are unbounded; here an
// int result outside 64 bits has no result. The result is rendered as Python's str() does
// ("0.2", "10.0", "1e+16"). Commas are removed first, as nanochat does. Anything else, including
// every Python form outside this grammar, yields std::nullopt (nanochat's None: no tool output).

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace nanochat::engine {

namespace calculator_detail {

struct Value {
  bool is_int = true;
  std::int64_t i = 0;
  double f = 0.0;
  double as_float() const { return is_int ? static_cast<double>(i) : f; }
};

// Python's repr(float): shortest round-trip digits, fixed notation for decimal exponents in
// [-4, 16), scientific otherwise with a signed two-digit-minimum exponent.
inline std::string python_float_str(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  std::array<char, 64> buf{};
  const auto res = std::to_chars(buf.data(), buf.data() + buf.size(), x, std::chars_format::scientific);
  std::string_view s(buf.data(), static_cast<std::size_t>(res.ptr - buf.data()));
  std::string sign;
  if (s.front() == '-') {
    sign = "-";
    s.remove_prefix(1);
  }
  const std::size_t e = s.find('e');
  std::string digits;
  for (char c : s.substr(0, e))
    if (c != '.') digits += c;
  const int exp10 = std::atoi(std::string(s.substr(e + 1)).c_str());
  if (exp10 < -4 || exp10 >= 16) {
    std::string out = sign + digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    const int a = std::abs(exp10);
    out += exp10 < 0 ? "e-" : "e+";
    if (a < 10) out += "0";
    return out + std::to_string(a);
  }
  std::string out = sign;
  if (exp10 < 0) {
    out += "0." + std::string(static_cast<std::size_t>(-exp10 - 1), '0') + digits;
  } else {
    const auto point = static_cast<std::size_t>(exp10) + 1;
    if (digits.size() <= point) {
      out += digits + std::string(point - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, point) + "." + digits.substr(point);
    }
  }
  return out;
}

class Arithmetic {
 public:
  explicit Arithmetic(std::string_view s) : s_(s) {}

  std::optional<Value> parse() {
    auto v = expr();
    skip();
    if (!v || i_ != s_.size()) return std::nullopt;
    return v;
  }

 private:
  static constexpr int max_nesting = 200;  // Python's parser refuses deeper nesting too

  void skip() {
    while (i_ < s_.size() && s_[i_] == ' ') ++i_;
  }
  bool eat(char c) {
    skip();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  char peek() {
    skip();
    return i_ < s_.size() ? s_[i_] : '\0';
  }

  std::optional<Value> expr() {
    auto left = term();
    while (left) {
      const char op = peek();
      if (op != '+' && op != '-') break;
      ++i_;
      auto right = term();
      if (!right) return std::nullopt;
      left = op == '+' ? add(*left, *right, 1) : add(*left, *right, -1);
    }
    return left;
  }

  std::optional<Value> term() {
    auto left = unary();
    while (left) {
      const char op = peek();
      if (op != '*' && op != '/') break;
      ++i_;
      const bool floor_div = op == '/' && i_ < s_.size() && s_[i_] == '/';
      if (floor_div) ++i_;
      auto right = unary();
      if (!right) return std::nullopt;
      left = op == '*' ? mul(*left, *right) : floor_div ? floordiv(*left, *right) : truediv(*left, *right);
    }
    return left;
  }

  std::optional<Value> unary() {
    if (++depth_ > max_nesting) return std::nullopt;
    std::optional<Value> v;
    const char c = peek();
    if (c == '+' || c == '-') {
      ++i_;
      v = unary();
      if (v && c == '-') {
        if (v->is_int) {
          if (v->i == INT64_MIN) return std::nullopt;
          v->i = -v->i;
        } else {
          v->f = -v->f;
        }
      }
    } else {
      v = atom();
    }
    --depth_;
    return v;
  }

  std::optional<Value> atom() {
    if (eat('(')) {
      auto v = expr();
      if (!v || !eat(')')) return std::nullopt;
      return v;
    }
    return number();
  }

  std::optional<Value> number() {
    skip();
    const std::size_t begin = i_;
    while (i_ < s_.size() && is_digit(s_[i_])) ++i_;
    const std::size_t int_end = i_;
    bool is_float = false;
    if (i_ < s_.size() && s_[i_] == '.') {
      is_float = true;
      ++i_;
      while (i_ < s_.size() && is_digit(s_[i_])) ++i_;
    }
    const std::string_view text = s_.substr(begin, i_ - begin);
    if (text.empty() || text == ".") return std::nullopt;
    if (i_ < s_.size() && (s_[i_] == '.' || s_[i_] == '(')) return std::nullopt;  // 1.2.3, 2(3)
    Value v;
    if (is_float) {
      v.is_int = false;
      v.f = std::strtod(std::string(text).c_str(), nullptr);
      return v;
    }
    // Python refuses leading zeros on a nonzero integer literal ("012"); "00" is 0.
    if (int_end - begin > 1 && s_[begin] == '0' && text.find_first_not_of('0') != std::string_view::npos)
      return std::nullopt;
    const auto res = std::from_chars(text.data(), text.data() + text.size(), v.i);
    if (res.ec != std::errc{}) return std::nullopt;  // beyond 64 bits
    return v;
  }

  static bool is_digit(char c) { return c >= '0' && c <= '9'; }

  static std::optional<Value> add(Value a, Value b, int sign) {
    if (a.is_int && b.is_int) {
      Value r;
      const bool overflow = sign > 0 ? __builtin_add_overflow(a.i, b.i, &r.i) : __builtin_sub_overflow(a.i, b.i, &r.i);
      if (overflow) return std::nullopt;
      return r;
    }
    return Value{false, 0, sign > 0 ? a.as_float() + b.as_float() : a.as_float() - b.as_float()};
  }
  static std::optional<Value> mul(Value a, Value b) {
    if (a.is_int && b.is_int) {
      Value r;
      if (__builtin_mul_overflow(a.i, b.i, &r.i)) return std::nullopt;
      return r;
    }
    return Value{false, 0, a.as_float() * b.as_float()};
  }
  static std::optional<Value> truediv(Value a, Value b) {
    if (b.as_float() == 0.0) return std::nullopt;  // ZeroDivisionError
    return Value{false, 0, a.as_float() / b.as_float()};
  }
  // Python's floor division: ints floor exactly; floats as float_floor_div (fmod, then adjust).
  static std::optional<Value> floordiv(Value a, Value b) {
    if (a.is_int && b.is_int) {
      if (b.i == 0 || (a.i == INT64_MIN && b.i == -1)) return std::nullopt;
      std::int64_t q = a.i / b.i;
      if ((a.i % b.i != 0) && ((a.i < 0) != (b.i < 0))) --q;
      return Value{true, q, 0.0};
    }
    const double x = a.as_float(), y = b.as_float();
    if (y == 0.0) return std::nullopt;
    double mod = std::fmod(x, y);
    double div = (x - mod) / y;
    if (mod != 0.0 && ((y < 0) != (mod < 0))) div -= 1.0;
    double floordiv;
    if (div != 0.0) {
      floordiv = std::floor(div);
      if (div - floordiv > 0.5) floordiv += 1.0;
    } else {
      floordiv = std::copysign(0.0, x / y);
    }
    return Value{false, 0, floordiv};
  }

  std::string_view s_;
  std::size_t i_ = 0;
  int depth_ = 0;
};

// 'haystack'.count('needle') with optional spaces between tokens.
inline std::optional<std::string> count_call(std::string_view s) {
  std::size_t i = 0;
  const auto skip = [&] {
    while (i < s.size() && s[i] == ' ') ++i;
  };
  const auto literal = [&]() -> std::optional<std::string_view> {
    skip();
    if (i >= s.size() || (s[i] != '\'' && s[i] != '"')) return std::nullopt;
    const char quote = s[i];
    const std::size_t end = s.find(quote, i + 1);
    if (end == std::string_view::npos) return std::nullopt;
    const std::string_view lit = s.substr(i + 1, end - i - 1);
    i = end + 1;
    // Adjacent literals concatenate in Python, and '''...''' opens a triple quote: not handled.
    skip();
    if (i < s.size() && (s[i] == '\'' || s[i] == '"')) return std::nullopt;
    return lit;
  };
  const auto expect = [&](std::string_view word) {
    skip();
    if (s.substr(i, word.size()) != word) return false;
    i += word.size();
    return true;
  };
  const auto hay = literal();
  if (!hay || !expect(".") || !expect("count") || !expect("(")) return std::nullopt;
  const auto needle = literal();
  if (!needle || !expect(")")) return std::nullopt;
  skip();
  if (i != s.size()) return std::nullopt;
  std::int64_t n = 0;
  if (needle->empty()) {
    n = static_cast<std::int64_t>(hay->size()) + 1;
  } else {
    for (std::size_t p = hay->find(*needle); p != std::string_view::npos; p = hay->find(*needle, p + needle->size())) ++n;
  }
  return std::to_string(n);
}

}  // namespace calculator_detail

inline std::optional<std::string> use_calculator(std::string_view input) {
  using namespace calculator_detail;
  std::string expr;
  for (char c : input)
    if (c != ',') expr += c;
  const auto in = [](char c, std::string_view set) { return set.find(c) != std::string_view::npos; };
  bool arithmetic = true;
  for (char c : expr) arithmetic = arithmetic && in(c, "0123456789*+-/.() ");
  if (arithmetic) {
    if (expr.find("**") != std::string::npos) return std::nullopt;
    const auto v = Arithmetic(expr).parse();
    if (!v) return std::nullopt;
    return v->is_int ? std::to_string(v->i) : python_float_str(v->f);
  }
  for (char c : expr) {
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!letter && !in(c, "'\"()._ ")) return std::nullopt;
  }
  std::string lower = expr;
  for (char& c : lower)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  static constexpr std::array<std::string_view, 17> banned = {
      "__", "import", "exec", "eval", "compile", "open", "file", "input", "raw_input", "globals",
      "locals", "vars", "dir", "getattr", "setattr", "delattr", "hasattr"};
  for (std::string_view word : banned)
    if (lower.find(word) != std::string::npos) return std::nullopt;
  if (expr.find(".count(") == std::string::npos) return std::nullopt;
  return count_call(expr);
}

}  // namespace nanochat::engine
