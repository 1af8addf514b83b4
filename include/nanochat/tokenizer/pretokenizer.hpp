#pragma once
// The pre-tokenizer: splits text into the pieces BPE works on, exactly as nanochat's pattern
//   '(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+
// does under fancy-regex (leftmost-first alternation). Hand-written because a regex engine is
// the bottleneck of both training and encoding; tests compare it with PCRE2 running the literal
// pattern. Every character matches some alternative, so pieces tile the text. An invalid UTF-8
// sequence is one character of no class, as U+FFFD would be.

#include <algorithm>
#include <array>
#include <cstddef>
#include <string_view>

#include "nanochat/core/utf8.hpp"
#include "nanochat/tokenizer/unicode_tables.hpp"

namespace nanochat::tokenizer {

// nanochat's SPLIT_PATTERN, kept for the tokenizer file and for tests.
inline constexpr std::string_view kSplitPattern =
    R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)";

inline CharClass classify(char32_t c) {
  static constexpr std::array<CharClass, 128> kAscii = [] {
    std::array<CharClass, 128> table{};
    for (char32_t ch = 0; ch < 128; ++ch) {
      if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
        table[ch] = CharClass::kLetter;
      } else if (ch >= '0' && ch <= '9') {
        table[ch] = CharClass::kNumber;
      } else if (ch == ' ' || (ch >= 0x09 && ch <= 0x0D)) {
        table[ch] = CharClass::kSpace;
      }
    }
    return table;
  }();
  if (c < 128) return kAscii[c];
  if (c == kInvalidChar) return CharClass::kOther;
  const auto it = std::upper_bound(kCharRanges.begin(), kCharRanges.end(), c,
                                   [](char32_t v, const CharRange& r) { return v < r.first; });
  if (it == kCharRanges.begin()) return CharClass::kOther;
  const CharRange& r = *(it - 1);
  return c <= r.last ? r.cls : CharClass::kOther;
}

// Calls emit(std::string_view piece) for each piece of text, in order.
template <class Emit>
void split_text(std::string_view text, Emit&& emit) {
  const std::size_t n = text.size();
  struct Char {
    char32_t code;
    CharClass cls;
    std::size_t size;
  };
  const auto at = [&](std::size_t pos) -> Char {
    const auto b = static_cast<unsigned char>(text[pos]);
    if (b < 0x80) return {b, classify(b), 1};
    const DecodedChar d = decode_utf8(text, pos);
    return {d.code, classify(d.code), d.size};
  };
  const auto is_newline = [](char32_t c) { return c == '\r' || c == '\n'; };
  // End of the run of characters of class cls starting at pos.
  const auto run_end = [&](std::size_t pos, CharClass cls) {
    while (pos < n) {
      const Char c = at(pos);
      if (c.cls != cls) break;
      pos += c.size;
    }
    return pos;
  };
  const auto lower = [](char32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; };

  std::size_t pos = 0;
  while (pos < n) {
    const Char c = at(pos);
    const std::size_t next = pos + c.size;
    std::size_t end = 0;
    if (c.code == '\'' && next < n) {  // '(?i:[sdmt]|ll|ve|re)
      const Char c1 = at(next);
      const char32_t l1 = lower(c1.code);
      if (l1 == 's' || l1 == 'd' || l1 == 'm' || l1 == 't' || c1.code == 0x17F) {  // U+017F folds to s
        end = next + c1.size;
      } else if ((l1 == 'l' || l1 == 'v' || l1 == 'r') && next + 1 < n) {
        const char32_t l2 = lower(at(next + 1).code);
        if ((l1 == 'l' && l2 == 'l') || (l1 == 'v' && l2 == 'e') || (l1 == 'r' && l2 == 'e')) {
          end = next + 2;
        }
      }
    }
    if (end == 0) {
      switch (c.cls) {
        case CharClass::kLetter:  // \p{L}+
          end = run_end(next, CharClass::kLetter);
          break;
        case CharClass::kNumber: {  // \p{N}{1,2}
          end = next;
          if (end < n) {
            const Char c1 = at(end);
            if (c1.cls == CharClass::kNumber) end += c1.size;
          }
          break;
        }
        case CharClass::kOther:
        case CharClass::kSpace: {
          // [^\r\n\p{L}\p{N}]?+\p{L}+ : one prefix character, then letters.
          if (!is_newline(c.code) && next < n && at(next).cls == CharClass::kLetter) {
            end = run_end(next, CharClass::kLetter);
            break;
          }
          // " ?[^\s\p{L}\p{N}]++[\r\n]*"
          std::size_t sym = c.cls == CharClass::kOther ? pos : (c.code == ' ' ? next : n);
          if (sym < n && (sym == pos || at(sym).cls == CharClass::kOther)) {
            end = run_end(sym, CharClass::kOther);
            while (end < n && is_newline(static_cast<unsigned char>(text[end]))) ++end;
            break;
          }
          // Whitespace run [pos, run): \s*[\r\n] | \s+(?!\S) | \s+
          const std::size_t run = run_end(pos, CharClass::kSpace);
          std::size_t last_newline = n;
          std::size_t last_start = pos;  // start of the run's last character
          for (std::size_t p = pos; p < run;) {
            const Char s = at(p);
            if (is_newline(s.code)) last_newline = p;
            last_start = p;
            p += s.size;
          }
          if (last_newline != n) {
            end = last_newline + 1;
          } else if (run == n || last_start == pos) {
            end = run;
          } else {
            end = last_start;
          }
          break;
        }
      }
    }
    emit(text.substr(pos, end - pos));
    pos = end;
  }
}

}  // namespace nanochat::tokenizer
