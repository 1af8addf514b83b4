#pragma once
// A forward-only JSON scanner: enough to pull one string field out of each JSONL line without
// building a document tree. Strings are decoded (escapes, \u surrogate pairs) to UTF-8; any
// other value can be skipped. Malformed input raises an error that names `what` and the offset.

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "nanochat/core/utf8_encode.hpp"
#include "nanochat/core/error.hpp"

namespace nanochat::data {

class JsonScanner {
 public:
  JsonScanner(std::string_view text, const std::string& what) : text_(text), what_(what) {}

  // The next non-blank character, or '\0' at the end.
  char peek() {
    skip_blanks();
    return pos_ < text_.size() ? text_[pos_] : '\0';
  }

  void expect(char c) {
    NANOCHAT_CHECK(peek() == c, what_, ": expected '", c, "' at offset ", pos_);
    ++pos_;
  }

  // Consumes c if it is next; tells whether it was.
  bool accept(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }

  void read_string(std::string& out) {
    out.clear();
    expect('"');
    while (true) {
      std::size_t run = pos_;
      while (run < text_.size() && text_[run] != '"' && text_[run] != '\\') ++run;
      out.append(text_.substr(pos_, run - pos_));
      pos_ = run;
      NANOCHAT_CHECK(pos_ < text_.size(), what_, ": unterminated string");
      if (text_[pos_++] == '"') return;
      NANOCHAT_CHECK(pos_ < text_.size(), what_, ": unterminated escape");
      char escape = text_[pos_++];
      switch (escape) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': append_code_point(out); break;
        default: NANOCHAT_FAIL(what_, ": invalid escape '\\", escape, "' at offset ", pos_ - 1);
      }
    }
  }

  // Skips one value of any kind (nesting bounded so hostile input cannot exhaust the stack).
  void skip_value(int depth = 0) {
    NANOCHAT_CHECK(depth < 512, what_, ": JSON nested deeper than 512 levels");
    char c = peek();
    if (c == '"') {
      read_string(scratch_);
    } else if (c == '{' || c == '[') {
      char close = c == '{' ? '}' : ']';
      ++pos_;
      if (accept(close)) return;
      do {
        if (c == '{') {
          read_string(scratch_);
          expect(':');
        }
        skip_value(depth + 1);
      } while (accept(','));
      expect(close);
    } else {
      // number, true, false, null: a run of literal characters
      std::size_t start = pos_;
      while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) ||
                                     text_[pos_] == '-' || text_[pos_] == '+' || text_[pos_] == '.')) {
        ++pos_;
      }
      NANOCHAT_CHECK(pos_ > start, what_, ": expected a value at offset ", start);
    }
  }

  // Consumes the literal `null` if it is next.
  bool accept_null() {
    if (peek() != 'n' || text_.substr(pos_, 4) != "null") return false;
    pos_ += 4;
    return true;
  }

 private:
  void skip_blanks() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  std::uint32_t read_hex4() {
    NANOCHAT_CHECK(text_.size() - pos_ >= 4, what_, ": truncated \\u escape");
    std::uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text_[pos_++];
      value <<= 4;
      if (c >= '0' && c <= '9') value |= static_cast<std::uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') value |= static_cast<std::uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') value |= static_cast<std::uint32_t>(c - 'A' + 10);
      else NANOCHAT_FAIL(what_, ": bad hex digit in \\u escape at offset ", pos_ - 1);
    }
    return value;
  }

  void append_code_point(std::string& out) {
    std::uint32_t cp = read_hex4();
    if (cp >= 0xD800 && cp < 0xDC00 && text_.substr(pos_, 2) == "\\u") {
      std::size_t save = pos_;
      pos_ += 2;
      std::uint32_t low = read_hex4();
      if (low >= 0xDC00 && low < 0xE000) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
      } else {
        pos_ = save;  // unpaired high surrogate: emit it alone, like Python's json
      }
    }
    append_utf8(out, static_cast<char32_t>(cp));
  }

  std::string_view text_;
  const std::string& what_;
  std::size_t pos_ = 0;
  std::string scratch_;
};

// The string value of `field` in the JSON object `line`; false when the object lacks it.
inline bool json_string_field(std::string_view line, std::string_view field, std::string& out,
                              const std::string& what) {
  JsonScanner in(line, what);
  in.expect('{');
  if (in.accept('}')) return false;
  std::string key;
  do {
    in.read_string(key);
    in.expect(':');
    if (key == field) {
      NANOCHAT_CHECK(in.peek() == '"', what, ": field '", field, "' is not a string");
      in.read_string(out);
      return true;
    }
    in.skip_value();
  } while (in.accept(','));
  in.expect('}');
  return false;
}

}  // namespace nanochat::data
