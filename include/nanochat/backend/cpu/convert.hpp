#pragma once
// Element-type conversion between Cpu tensors: float to bf16, rounded to nearest, ties to even
// (NaN stays NaN), as the bf16 KV cache stores the keys and values it is given.

#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/core/bf16.hpp"

namespace nanochat::cpu {

inline void convert(Cpu&, CpuView<bf16> dst, CpuView<const float> src) {
  NANOCHAT_CHECK(dst.is_contiguous() && src.is_contiguous(), "convert: dst and src must be contiguous");
  check_shape(dst.shape(), src.shape(), "convert: dst");
  bf16* out = dst.data();
  const float* in = src.data();
  const std::int64_t n = src.numel();
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) out[i] = bf16(in[i]);
}

}  // namespace nanochat::cpu
