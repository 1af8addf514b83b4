#pragma once
// Bounds on what users may ask of the programs, and arithmetic on user-given sizes that cannot
// overflow quietly: a product that does not fit is an Error naming what was multiplied, where a
// wrapped value would have become a division by zero (SIGFPE) or a tiny allocation.

#include <concepts>
#include <cstdint>
#include <string_view>

#include "nanochat/core/error.hpp"

namespace nanochat {

// The most threads a program starts for one pool (tokenizing workers, BPE counting, downloads):
// far beyond any machine's cores, far below what makes thread creation fail.
inline constexpr std::int64_t max_threads = 1024;
// A model's depth (n_layer): far past any compiled Config (nanochat's largest is 32).
inline constexpr std::int64_t max_layers = 999;
// A model's context (sequence_len): 512x nanochat's 2048.
inline constexpr std::int64_t max_sequence_len = std::int64_t{1} << 20;
// Rows of one forward (a device batch).
inline constexpr std::int64_t max_batch_rows = std::int64_t{1} << 16;
// A tokenizer's vocabulary, special tokens included (nanochat's is 65536).
inline constexpr std::int64_t max_vocab_size = std::int64_t{1} << 21;
// Steps, tokens and characters a run may ask for. With the bounds above, rows x
// positions x vocabulary stays below 2^63, so tensor sizes built from flags cannot wrap.
inline constexpr std::int64_t max_count = std::int64_t{1} << 50;

// a x b, or an Error "<what>: a x b overflows" (what names the factors: "--device-batch-size x
// --max-seq-len").
template <std::integral T>
T checked_mul(T a, T b, std::string_view what) {
  T product{};
  NANOCHAT_CHECK(!__builtin_mul_overflow(a, b, &product), what, ": ", a, " x ", b, " overflows");
  return product;
}

}  // namespace nanochat
