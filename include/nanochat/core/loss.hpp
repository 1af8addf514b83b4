#pragma once
// What every backend's cross-entropy shares: the ignored target and the loss total it returns.

#include <cstdint>

namespace nanochat {

// A target equal to this contributes nothing (nanochat pads and masks with -1).
inline constexpr std::int32_t ignore_index = -1;

// How per-token losses become one number: PyTorch's reduction= mean | sum (none keeps them all).
enum class LossReduction { mean, sum };

struct LossTotal {
  double sum;           // of per-token losses over non-ignored targets
  std::int64_t tokens;  // non-ignored targets
};

}  // namespace nanochat
