#pragma once
// A Linear layer for a few rows (decode: one token per sequence) on the Cpu backend:
// out[n, o] = beta * out[n, o] + sum_k in[n, k] w[o, k], with w [out, in] as PyTorch stores it.
// sgemm packs the whole weight matrix on every call, which for a handful of rows costs more than
// the product; here each weight row is read once from memory and reused from L1 for every input
// row, so decode runs at the speed of reading the weights.

#include <cstdint>

#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/backend/cpu/gemm.hpp"

namespace nanochat::cpu {

// Rows up to which linear_forward takes the weight-streaming path instead of sgemm.
inline constexpr std::int64_t linear_small_rows = 16;

inline void linear_forward(Cpu& cpu, CpuView<float> out, CpuView<const float> in, CpuView<const float> w,
                           float beta = 0.0f) {
  NANOCHAT_CHECK(in.rank() == 2 && w.rank() == 2 && out.rank() == 2, "linear_forward: out ", out.shape(),
                 ", in ", in.shape(), " and w ", w.shape(), " must be matrices");
  const std::int64_t rows = in.size(0), k = in.size(1), outs = w.size(0);
  NANOCHAT_CHECK(w.size(1) == k, "linear_forward: w ", w.shape(), " does not take inputs ", in.shape());
  check_shape(out.shape(), Shape{rows, outs}, "linear_forward: out");
  if (rows > linear_small_rows || !in.is_contiguous() || !w.is_contiguous() || !out.is_contiguous()) {
    gemm(cpu, out, in, w, Transpose::no, Transpose::yes, 1.0f, beta);
    return;
  }
  const float* x = in.data();
  const float* wd = w.data();
  float* y = out.data();
#pragma omp parallel for schedule(static)
  for (std::int64_t o = 0; o < outs; ++o) {
    const float* wr = wd + o * k;
    for (std::int64_t n = 0; n < rows; ++n) {
      const float* xr = x + n * k;
      float s = 0.0f;
#pragma omp simd reduction(+ : s)
      for (std::int64_t i = 0; i < k; ++i) s += wr[i] * xr[i];
      float& dst = y[n * outs + o];
      dst = beta == 0.0f ? s : beta * dst + s;
    }
  }
}

}  // namespace nanochat::cpu
