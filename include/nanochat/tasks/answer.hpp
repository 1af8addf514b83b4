#pragma once
// The "#### <number>" final-answer convention of GSM8K, which SpellingBee and the offline tasks
// share: nanochat's extract_answer, the first match of the regex `#### (-?[0-9.,]+)` with its
// commas removed.

#include <optional>
#include <string>
#include <string_view>

namespace nanochat::tasks {

inline std::optional<std::string> extract_answer(std::string_view text) {
  const auto is_number_char = [](char c) { return (c >= '0' && c <= '9') || c == '.' || c == ','; };
  for (std::size_t at = text.find("#### "); at != std::string_view::npos; at = text.find("#### ", at + 1)) {
    std::size_t pos = at + 5;
    std::string number;
    if (pos < text.size() && text[pos] == '-' && pos + 1 < text.size() && is_number_char(text[pos + 1])) {
      number += '-';
      ++pos;
    }
    const std::size_t digits = pos;
    for (; pos < text.size() && is_number_char(text[pos]); ++pos) {
      if (text[pos] != ',') number += text[pos];
    }
    if (pos > digits) return number;
  }
  return std::nullopt;
}

// nanochat's scoring of a "####" task: the extracted answers are equal (both missing counts).
inline bool same_final_answer(std::string_view reference, std::string_view completion) {
  return extract_answer(reference) == extract_answer(completion);
}

}  // namespace nanochat::tasks
