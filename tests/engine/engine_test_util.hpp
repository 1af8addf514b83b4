#pragma once
// Shared by the engine suites: a byte-level tokenizer (256 bytes + nanochat's specials, vocab
// 265) and GPTs with random weights over it, and the argmax margin of greedy comparisons.

#include <algorithm>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/tokenizer/tokenizer.hpp"

namespace engine_test {

inline nanochat::tokenizer::Tokenizer byte_tokenizer() {
  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.emplace_back(1, static_cast<char>(b));
  std::vector<std::string> specials(nanochat::tokenizer::kSpecialTokens.begin(),
                                    nanochat::tokenizer::kSpecialTokens.end());
  return {std::move(bytes), std::move(specials)};
}

inline constexpr std::int64_t byte_vocab = 265;

// Top logit minus the runner-up: how far a greedy choice is from flipping when another summation
// order (a batch, packed weights) moves the logits by rounding.
inline double argmax_margin(std::span<const float> logits) {
  std::vector<float> v(logits.begin(), logits.end());
  std::partial_sort(v.begin(), v.begin() + 2, v.end(), std::greater<>());
  return static_cast<double>(v[0]) - v[1];
}

}  // namespace engine_test
