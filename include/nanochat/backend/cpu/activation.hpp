#pragma once
// nanochat's MLP non-linearity, ReLU squared, on the Cpu backend.

#include <cstdint>

#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/core/bf16.hpp"

namespace nanochat::cpu {

namespace detail {
template <class TOut>
void relu_squared_rows(CpuView<TOut> out, CpuView<const float> in) {
  check_shape(out.shape(), in.shape(), "relu_squared_forward: out");
  const std::int64_t n = in.numel();
  const float* x = in.data();
  TOut* y = out.data();
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const float r = x[i] > 0.0f ? x[i] : 0.0f;
    store_as(y[i], r * r);
  }
}
}  // namespace detail

inline void relu_squared_forward(Cpu&, CpuView<float> out, CpuView<const float> in) {
  detail::relu_squared_rows<float>(out, in);
}

// relu(x)^2 computed in fp32 and stored in bf16, rounded once: the operand of a bf16 matmul (the
// backward reads x, not this).
inline void relu_squared_forward(Cpu&, CpuView<bf16> out, CpuView<const float> in) {
  detail::relu_squared_rows<bf16>(out, in);
}

// d relu(x)^2 / dx = 2 relu(x); din may alias dout.
inline void relu_squared_backward(Cpu&, CpuView<float> din, CpuView<const float> dout,
                                  CpuView<const float> in) {
  check_shape(din.shape(), in.shape(), "relu_squared_backward: din");
  check_shape(dout.shape(), in.shape(), "relu_squared_backward: dout");
  const std::int64_t n = in.numel();
  const float* x = in.data();
  const float* dy = dout.data();
  float* dx = din.data();
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) dx[i] = x[i] > 0.0f ? 2.0f * x[i] * dy[i] : 0.0f;
}

}  // namespace nanochat::cpu
