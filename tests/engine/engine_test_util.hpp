#pragma once
// Shared by the engine suites: a byte-level tokenizer (256 bytes + nanochat's specials, vocab
// 265) and GPTs with random weights over it.

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

}  // namespace engine_test
