#pragma once
// A small JSON reader and string escaper: enough for the tokenizer's config file, JSONL corpora
// and nanochat's conversation records. Parse errors name the byte offset and what was expected;
// nesting is bounded so a hostile file cannot overflow the stack.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "nanochat/core/utf8_encode.hpp"
#include "nanochat/core/error.hpp"

namespace nanochat::tokenizer::json {

struct Value;
using Array = std::vector<Value>;
using Object = std::map<std::string, Value, std::less<>>;

struct Value {
  std::variant<std::nullptr_t, bool, double, std::string, Array, Object> data;

  bool is_null() const { return std::holds_alternative<std::nullptr_t>(data); }
  bool is_string() const { return std::holds_alternative<std::string>(data); }
  bool is_number() const { return std::holds_alternative<double>(data); }
  bool is_array() const { return std::holds_alternative<Array>(data); }
  bool is_object() const { return std::holds_alternative<Object>(data); }

  // Typed access; `what` names the value in the error when the type is wrong.
  const std::string& string(std::string_view what) const {
    NANOCHAT_CHECK(is_string(), what, " must be a string");
    return std::get<std::string>(data);
  }
  double number(std::string_view what) const {
    NANOCHAT_CHECK(is_number(), what, " must be a number");
    return std::get<double>(data);
  }
  const Array& array(std::string_view what) const {
    NANOCHAT_CHECK(is_array(), what, " must be an array");
    return std::get<Array>(data);
  }
  const Object& object(std::string_view what) const {
    NANOCHAT_CHECK(is_object(), what, " must be an object");
    return std::get<Object>(data);
  }
  // Member of an object, or nullptr when absent.
  const Value* find(std::string_view key) const {
    if (!is_object()) return nullptr;
    const Object& o = std::get<Object>(data);
    const auto it = o.find(key);
    return it == o.end() ? nullptr : &it->second;
  }
};

class Parser {
 public:
  // `source` names the input in errors (a file path, "line 3 of x.jsonl").
  Parser(std::string_view text, std::string_view source) : text_(text), source_(source) {}

  Value parse_document() {
    Value v = parse_value(0);
    skip_space();
    expect(pos_ == text_.size(), "end of input");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 256;

  void expect(bool ok, std::string_view what) const {
    NANOCHAT_CHECK(ok, source_, ": invalid JSON at byte ", pos_, ": expected ", what);
  }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool consume(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  Value parse_value(int depth) {
    expect(depth < kMaxDepth, "at most 256 levels of nesting");
    skip_space();
    expect(pos_ < text_.size(), "a value");
    const char c = text_[pos_];
    if (c == '{') return parse_object(depth);
    if (c == '[') return parse_array(depth);
    if (c == '"') return Value{parse_string()};
    if (consume("true")) return Value{true};
    if (consume("false")) return Value{false};
    if (consume("null")) return Value{nullptr};
    return Value{parse_number()};
  }

  Value parse_object(int depth) {
    ++pos_;
    Object o;
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      ++pos_;
      return Value{std::move(o)};
    }
    while (true) {
      skip_space();
      expect(pos_ < text_.size() && text_[pos_] == '"', "a string key");
      std::string key = parse_string();
      skip_space();
      expect(pos_ < text_.size() && text_[pos_] == ':', "':'");
      ++pos_;
      o.insert_or_assign(std::move(key), parse_value(depth + 1));
      skip_space();
      expect(pos_ < text_.size() && (text_[pos_] == ',' || text_[pos_] == '}'), "',' or '}'");
      if (text_[pos_++] == '}') return Value{std::move(o)};
    }
  }

  Value parse_array(int depth) {
    ++pos_;
    Array a;
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == ']') {
      ++pos_;
      return Value{std::move(a)};
    }
    while (true) {
      a.push_back(parse_value(depth + 1));
      skip_space();
      expect(pos_ < text_.size() && (text_[pos_] == ',' || text_[pos_] == ']'), "',' or ']'");
      if (text_[pos_++] == ']') return Value{std::move(a)};
    }
  }

  double parse_number() {
    const std::size_t start = pos_;
    if (pos_ < text_.size() && text_[pos_] == '-') ++pos_;
    const auto digits = [&] {
      const std::size_t from = pos_;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
      return pos_ > from;
    };
    expect(digits(), "a value");
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      expect(digits(), "digits after '.'");
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      expect(digits(), "exponent digits");
    }
    // strtod, not stod: an out-of-range literal becomes ±inf instead of throwing a non-Error.
    return std::strtod(std::string(text_.substr(start, pos_ - start)).c_str(), nullptr);
  }

  unsigned hex4() {
    expect(pos_ + 4 <= text_.size(), "4 hex digits");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = text_[pos_++];
      v <<= 4;
      if (h >= '0' && h <= '9') {
        v |= static_cast<unsigned>(h - '0');
      } else if (h >= 'a' && h <= 'f') {
        v |= static_cast<unsigned>(h - 'a' + 10);
      } else if (h >= 'A' && h <= 'F') {
        v |= static_cast<unsigned>(h - 'A' + 10);
      } else {
        --pos_;
        expect(false, "a hex digit");
      }
    }
    return v;
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      expect(pos_ < text_.size(), "a closing '\"'");
      const char c = text_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        expect(static_cast<unsigned char>(c) >= 0x20, "no raw control character in a string");
        out += c;
        continue;
      }
      expect(pos_ < text_.size(), "an escape");
      const char e = text_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          char32_t c1 = hex4();
          if (c1 >= 0xD800 && c1 <= 0xDBFF && text_.substr(pos_, 2) == "\\u") {
            const std::size_t save = pos_;
            pos_ += 2;
            const char32_t c2 = hex4();
            if (c2 >= 0xDC00 && c2 <= 0xDFFF) {
              c1 = 0x10000 + ((c1 - 0xD800) << 10) + (c2 - 0xDC00);
            } else {
              pos_ = save;
            }
          }
          // A lone surrogate cannot be UTF-8; Python's json would keep it, we use U+FFFD.
          append_utf8(out, c1 >= 0xD800 && c1 <= 0xDFFF ? char32_t{0xFFFD} : c1);
          break;
        }
        default:
          --pos_;
          expect(false, "a valid escape");
      }
    }
  }

  std::string_view text_;
  std::string_view source_;
  std::size_t pos_ = 0;
};

inline Value parse(std::string_view text, std::string_view source) {
  return Parser(text, source).parse_document();
}

// Quotes s as a JSON string (bytes ≥ 0x80 are copied as they are).
inline std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace nanochat::tokenizer::json
