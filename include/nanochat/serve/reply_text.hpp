#pragma once
// A reply's text as it streams, token by token: only whole UTF-8 characters go out (a character
// split over tokens waits for its last byte, as nanochat's chat_web waits while the decoded text
// ends in U+FFFD), and with stop strings, text that may be the start of one is held back until
// it is known not to be, so a client never sees part of a stop string. A stop string found in
// the text ends the reply just before it.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nanochat/core/utf8.hpp"
#include "nanochat/tokenizer/tokenizer.hpp"

namespace nanochat::serve {

class ReplyText {
 public:
  ReplyText(const tokenizer::Tokenizer& tok, std::vector<std::string> stops) : tok_(&tok), stops_(std::move(stops)) {}

  // Adds a token; returns the text now safe to send (often empty). Nothing after a stop.
  std::string push(std::int32_t id) {
    if (stopped_) return {};
    const auto token = static_cast<tokenizer::TokenId>(id);
    bytes_ += tok_->decode_bytes(std::span<const tokenizer::TokenId>(&token, 1));
    const std::size_t whole = complete_prefix(bytes_);
    held_ += to_valid_utf8(std::string_view(bytes_).substr(0, whole));
    bytes_.erase(0, whole);
    return release(false);
  }

  // The end of the reply: what was held back (an unfinished character becomes U+FFFD).
  std::string finish() {
    if (stopped_) return {};
    held_ += to_valid_utf8(bytes_);
    bytes_.clear();
    return release(true);
  }

  bool stopped() const { return stopped_; }

 private:
  // Bytes of `b` up to an unfinished character at its end (a lead byte short of its continuations).
  static std::size_t complete_prefix(std::string_view b) {
    for (std::size_t back = 1; back <= std::min<std::size_t>(4, b.size()); ++back) {
      const auto c = static_cast<unsigned char>(b[b.size() - back]);
      if ((c & 0xC0) == 0x80) continue;  // a continuation byte: its lead is further back
      const std::size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
      return need > back ? b.size() - back : b.size();
    }
    return b.size();
  }

  std::string release(bool all) {
    std::size_t cut = std::string::npos;
    for (const std::string& s : stops_) cut = std::min(cut, held_.find(s));
    if (cut != std::string::npos) {
      stopped_ = true;
      std::string out = held_.substr(0, cut);
      held_.clear();
      bytes_.clear();
      return out;
    }
    std::size_t keep = 0;  // the longest end of held_ that a stop string starts with
    if (!all) {
      for (const std::string& s : stops_) {
        for (std::size_t n = std::min(s.size() - 1, held_.size()); n > keep; --n) {
          if (std::string_view(held_).substr(held_.size() - n) == std::string_view(s).substr(0, n)) {
            keep = n;
            break;
          }
        }
      }
    }
    std::string out = held_.substr(0, held_.size() - keep);
    held_.erase(0, held_.size() - keep);
    return out;
  }

  const tokenizer::Tokenizer* tok_;
  std::vector<std::string> stops_;
  std::string bytes_;  // an unfinished character
  std::string held_;   // whole characters that may begin a stop string
  bool stopped_ = false;
};

}  // namespace nanochat::serve
