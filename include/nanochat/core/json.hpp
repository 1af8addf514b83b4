#pragma once
// The library's one JSON reader (RFC 8259, strictly), in two layers over the same lexer:
//   - Reader, a pull reader: the caller walks objects and arrays and takes what it needs. Hot
//     paths use it directly (a JSONL line's "text" field without building a tree), and so do
//     formats that need what a tree hides (safetensors: exact 64-bit integers, duplicate keys).
//   - Value and parse(), a document tree for small files (configs, checkpoint meta, chats).
// Every problem is an Error "<source>: invalid JSON at byte N: <what is wrong>" (a format may
// name its text: "invalid header"); nesting is bounded, so no input can overflow the stack.
// quote() writes strings the reader reads back.

#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/utf8.hpp"

namespace nanochat::json {

// What a \uD800-\uDFFF escape without its partner becomes. UTF-8 cannot hold it, yet Python's
// json accepts it, so each format picks: reject (safetensors, as its reference reader), replace
// with U+FFFD (the document tree: its strings stay valid UTF-8), or keep its 3-byte encoding
// (JSONL corpora, byte for byte what Python's json.loads holds).
enum class LoneSurrogate { reject, replace, keep };

class Reader {
 public:
  static constexpr int max_depth = 256;

  // `source` names the input in errors ("x.json", "a.jsonl: document 3"); `what` names the text
  // ("JSON", or "header" inside a safetensors file). The reader keeps views: all three must
  // outlive it.
  Reader(std::string_view text, std::string_view source, LoneSurrogate lone = LoneSurrogate::replace,
         std::string_view what = "JSON")
      : text_(text), source_(source), what_(what), lone_(lone) {}

  // The next non-blank byte, '\0' at the end: tells which kind of value comes next.
  char peek() {
    skip_blanks();
    return pos_ < text_.size() ? text_[pos_] : '\0';
  }

  // Reads an object, calling on_member(key) for each member; it must consume the member's value.
  template <class OnMember>
  void read_object(OnMember&& on_member) {
    open('{');
    if (!accept('}')) {
      std::string key;
      do {
        if (peek() != '"') fail("expected a string key");
        read_string_into(key);
        if (!accept(':')) fail("expected ':'");
        on_member(std::move(key));
      } while (accept(','));
      if (!accept('}')) fail("expected ',' or '}'");
    }
    --depth_;
  }

  // Reads an array, calling on_element() for each element; it must consume the element.
  template <class OnElement>
  void read_array(OnElement&& on_element) {
    open('[');
    if (!accept(']')) {
      do on_element();
      while (accept(','));
      if (!accept(']')) fail("expected ',' or ']'");
    }
    --depth_;
  }

  std::string read_string() {
    std::string out;
    if (peek() != '"') fail("expected a string");
    read_string_into(out);
    return out;
  }

  double read_number() {
    const Number n = lex_number();
    double value = 0;
    if (std::from_chars(text_.data() + n.begin, text_.data() + pos_, value).ec != std::errc{})
      fail_at(n.begin, "number ", text_.substr(n.begin, pos_ - n.begin), " is out of the range of a double");
    return value;
  }

  // An integer exactly, as formats with 64-bit sizes and offsets need (a double holds only 53 bits).
  std::uint64_t read_uint64() {
    const char c = peek();
    if (c < '0' || c > '9') fail("expected a non-negative integer");
    const Number n = lex_number();
    if (!n.integral) fail_at(n.begin, "expected an integer, got a fraction or exponent");
    std::uint64_t value = 0;
    if (std::from_chars(text_.data() + n.begin, text_.data() + pos_, value).ec != std::errc{})
      fail_at(n.begin, "integer ", text_.substr(n.begin, pos_ - n.begin), " does not fit 64 bits");
    return value;
  }

  bool read_bool() {
    if (accept_word("true")) return true;
    if (!accept_word("false")) fail("expected a value");
    return false;
  }

  // Consumes `null` if it comes next; tells whether it did.
  bool accept_null() { return accept_word("null"); }

  // Consumes one value of any kind, checking it as strictly as reading it would.
  void skip_value() {
    switch (peek()) {
      case '{': read_object([&](const std::string&) { skip_value(); }); break;
      case '[': read_array([&] { skip_value(); }); break;
      case '"': read_string_into(scratch_); break;
      case 't': case 'f': read_bool(); break;
      default:
        if (!accept_null()) read_number();
    }
  }

  // Only blanks may follow the value.
  void finish() {
    skip_blanks();
    if (pos_ != text_.size()) fail("unexpected text after the value");
  }

  // Fails at the current byte; callers use it for what their format forbids in valid JSON.
  template <class... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    fail_at(pos_, parts...);
  }

 private:
  struct Number {
    std::size_t begin;
    bool integral;  // no fraction, no exponent
  };

  template <class... Parts>
  [[noreturn]] void fail_at(std::size_t at, const Parts&... parts) const {
    NANOCHAT_FAIL(source_, ": invalid ", what_, " at byte ", at, ": ", parts...);
  }

  void skip_blanks() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }
  bool accept(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  bool accept_word(std::string_view word) {
    skip_blanks();
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }
  void open(char bracket) {
    if (!accept(bracket)) fail("expected '", bracket, "'");
    if (++depth_ > max_depth) fail("more than ", max_depth, " levels of nesting");
  }
  bool digit_at(std::size_t i) const { return i < text_.size() && text_[i] >= '0' && text_[i] <= '9'; }
  bool skip_digits() {
    const std::size_t from = pos_;
    while (digit_at(pos_)) ++pos_;
    return pos_ > from;
  }
  bool at(char c) const { return pos_ < text_.size() && text_[pos_] == c; }

  // Moves past one number of JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
  Number lex_number() {
    skip_blanks();
    const std::size_t begin = pos_;
    if (at('-')) ++pos_;
    if (!digit_at(pos_)) fail("expected a value");
    if (text_[pos_] == '0' && digit_at(pos_ + 1)) fail("number with a leading zero");
    skip_digits();
    bool integral = true;
    if (at('.')) {
      ++pos_;
      if (!skip_digits()) fail("expected digits after '.'");
      integral = false;
    }
    if (at('e') || at('E')) {
      ++pos_;
      if (at('+') || at('-')) ++pos_;
      if (!skip_digits()) fail("expected exponent digits");
      integral = false;
    }
    return {begin, integral};
  }

  // A table, not three comparisons: this loop is the JSONL corpora's hot path.
  static bool ends_run(char c) {
    static constexpr auto table = [] {
      std::array<bool, 256> t{};
      for (int b = 0; b < 0x20; ++b) t[b] = true;
      t['"'] = t['\\'] = true;
      return t;
    }();
    return table[static_cast<unsigned char>(c)];
  }

  // The opening quote is next. Unescaped runs are copied whole: most text has no escapes.
  void read_string_into(std::string& out) {
    out.clear();
    const std::size_t start = pos_++;
    while (true) {
      std::size_t run = pos_;
      while (run < text_.size() && !ends_run(text_[run])) ++run;
      out.append(text_.substr(pos_, run - pos_));
      pos_ = run;
      if (pos_ == text_.size()) fail_at(start, "unterminated string");
      const char c = text_[pos_++];
      if (c == '"') return;
      if (c != '\\') fail_at(pos_ - 1, "raw control character in a string");
      if (pos_ == text_.size()) fail_at(start, "unterminated string");
      const char escape = text_[pos_++];
      switch (escape) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': append_escaped_code_point(out); break;
        default: fail_at(pos_ - 2, "invalid escape '\\", escape, "'");
      }
    }
  }

  char32_t hex4() {
    if (text_.size() - pos_ < 4) fail("truncated \\u escape");
    char32_t v = 0;
    for (int i = 0; i < 4; ++i, ++pos_) {
      const char h = text_[pos_];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= static_cast<char32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') v |= static_cast<char32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= static_cast<char32_t>(h - 'A' + 10);
      else fail("bad hex digit in \\u escape");
    }
    return v;
  }

  // After "\u": one code point, or a surrogate pair written as two escapes.
  void append_escaped_code_point(std::string& out) {
    const std::size_t start = pos_ - 2;
    char32_t c = hex4();
    if (c >= 0xD800 && c <= 0xDBFF && text_.substr(pos_, 2) == "\\u") {
      const std::size_t low_at = pos_;
      pos_ += 2;
      const char32_t low = hex4();
      if (low >= 0xDC00 && low <= 0xDFFF) {
        append_utf8(out, 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00));
        return;
      }
      pos_ = low_at;  // not a low surrogate: c stands alone, the next escape is read on its own
    }
    if (c >= 0xD800 && c <= 0xDFFF) {
      if (lone_ == LoneSurrogate::reject) fail_at(start, "unpaired surrogate in \\u escape");
      if (lone_ == LoneSurrogate::replace) c = 0xFFFD;
    }
    append_utf8(out, c);
  }

  std::string_view text_;
  std::string_view source_;
  std::string_view what_;
  LoneSurrogate lone_;
  std::size_t pos_ = 0;
  int depth_ = 0;
  std::string scratch_;  // skipped strings land here, so skipping allocates once per reader
};

struct Value;
using Array = std::vector<Value>;
using Object = std::map<std::string, Value, std::less<>>;  // a repeated key keeps its last value, as in Python

struct Value {
  std::variant<std::nullptr_t, bool, double, std::string, Array, Object> data;

  bool is_null() const { return std::holds_alternative<std::nullptr_t>(data); }
  bool is_string() const { return std::holds_alternative<std::string>(data); }
  bool is_array() const { return std::holds_alternative<Array>(data); }
  bool is_object() const { return std::holds_alternative<Object>(data); }

  // Typed access; `what` names the value in the error when the type is wrong.
  const std::string& string(std::string_view what) const {
    NANOCHAT_CHECK(is_string(), what, " must be a string");
    return std::get<std::string>(data);
  }
  double number(std::string_view what) const {
    NANOCHAT_CHECK(std::holds_alternative<double>(data), what, " must be a number");
    return std::get<double>(data);
  }
  // A count, id or position: a whole number from 0 to 2^53 (what a double holds exactly), as
  // Python's json reads and writes them. Checked before any cast, which would be undefined outside.
  std::uint64_t whole_number(std::string_view what) const {
    const double v = number(what);
    NANOCHAT_CHECK(v >= 0 && v <= 0x1p53 && v == std::floor(v), what, " is ", v, ", not a whole number from 0 to 2^53");
    return static_cast<std::uint64_t>(v);
  }
  const Array& array(std::string_view what) const {
    NANOCHAT_CHECK(is_array(), what, " must be an array");
    return std::get<Array>(data);
  }
  const Object& object(std::string_view what) const {
    NANOCHAT_CHECK(is_object(), what, " must be an object");
    return std::get<Object>(data);
  }
  // Member of an object, or nullptr when absent (or when this is not an object).
  const Value* find(std::string_view key) const {
    if (!is_object()) return nullptr;
    const Object& o = std::get<Object>(data);
    const auto it = o.find(key);
    return it == o.end() ? nullptr : &it->second;
  }
};

// The value that comes next in `in`, as a tree.
inline Value read_value(Reader& in) {
  switch (in.peek()) {
    case '{': {
      Object o;
      in.read_object([&](std::string key) { o.insert_or_assign(std::move(key), read_value(in)); });
      return Value{std::move(o)};
    }
    case '[': {
      Array a;
      in.read_array([&] { a.push_back(read_value(in)); });
      return Value{std::move(a)};
    }
    case '"': return Value{in.read_string()};
    case 't': case 'f': return Value{in.read_bool()};
    default:
      if (in.accept_null()) return Value{nullptr};
      return Value{in.read_number()};
  }
}

// A whole JSON text as a tree; `source` names it in errors.
inline Value parse(std::string_view text, std::string_view source) {
  Reader in(text, source);
  Value v = read_value(in);
  in.finish();
  return v;
}

// s as a JSON string literal. Bytes >= 0x80 are copied as they are, so UTF-8 stays UTF-8.
inline std::string quote(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out + '"';
}

}  // namespace nanochat::json
