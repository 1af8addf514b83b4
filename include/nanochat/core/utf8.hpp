#pragma once
// UTF-8 for every reader of text: decoding that never fails (text from users and corpora may
// hold invalid bytes, and the tokenizer must still split, encode and round-trip it byte-exactly),
// validation (formats that require UTF-8, such as a safetensors header) and encoding of one code
// point (the JSON reader's escapes).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace nanochat {

// Appends one code point as UTF-8.
inline void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

struct DecodedChar {
  char32_t code;     // the code point, or kInvalidChar for an invalid sequence
  std::size_t size;  // bytes consumed
};

// Marks an invalid sequence; it counts as one character, like U+FFFD after Python's
// errors="replace" decode.
inline constexpr char32_t kInvalidChar = 0xFFFFFFFF;

// Decodes the character at text[pos] (pos < text.size()). An invalid sequence is its maximal
// subpart (the lead byte plus the continuation bytes that were still acceptable), the unit that
// Python's errors="replace" turns into one U+FFFD; overlongs, surrogates and code points above
// U+10FFFF are invalid.
inline DecodedChar decode_utf8(std::string_view text, std::size_t pos) {
  const auto b0 = static_cast<std::uint8_t>(text[pos]);
  if (b0 < 0x80) return {b0, 1};
  std::size_t need = 0;      // continuation bytes after the lead byte
  std::uint8_t lo = 0x80;    // accepted range of the first continuation byte
  std::uint8_t hi = 0xBF;
  char32_t code = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1, code = b0 & 0x1Fu;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2, code = b0 & 0x0Fu;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3, code = b0 & 0x07u;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return {kInvalidChar, 1};
  }
  for (std::size_t i = 1; i <= need; ++i) {
    if (pos + i >= text.size()) return {kInvalidChar, i};
    const auto b = static_cast<std::uint8_t>(text[pos + i]);
    if (b < lo || b > hi) return {kInvalidChar, i};
    code = (code << 6) | (b & 0x3Fu);
    lo = 0x80, hi = 0xBF;
  }
  return {code, need + 1};
}

// Replaces each invalid sequence by U+FFFD, as Python's bytes.decode("utf-8", "replace") does.
inline std::string to_valid_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (std::size_t pos = 0; pos < bytes.size();) {
    const DecodedChar ch = decode_utf8(bytes, pos);
    if (ch.code == kInvalidChar) {
      out += "\xEF\xBF\xBD";
    } else {
      out.append(bytes.substr(pos, ch.size));
    }
    pos += ch.size;
  }
  return out;
}

inline bool is_valid_utf8(std::string_view bytes) {
  for (std::size_t pos = 0; pos < bytes.size();) {
    const DecodedChar ch = decode_utf8(bytes, pos);
    if (ch.code == kInvalidChar) return false;
    pos += ch.size;
  }
  return true;
}

// Keeps the first `cap` characters of text (nanochat's doc_cap crop, which counts code points; an
// invalid sequence counts as one character) and returns how many were kept.
inline std::size_t crop_to_chars(std::string& text, std::size_t cap) {
  std::size_t pos = 0, chars = 0;
  while (pos < text.size() && chars < cap) {
    pos += decode_utf8(text, pos).size;
    ++chars;
  }
  text.resize(pos);
  return chars;
}

}  // namespace nanochat
