#pragma once
// nanochat's MLP non-linearity, ReLU squared, on the Cpu backend.

#include <cstdint>

#include "nanochat/backend/cpu/cpu.hpp"

namespace nanochat::cpu {

inline void relu_squared_forward(Cpu&, CpuView<float> out, CpuView<const float> in) {
  check_shape(out.shape(), in.shape(), "relu_squared_forward: out");
  const std::int64_t n = in.numel();
  const float* x = in.data();
  float* y = out.data();
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const float r = x[i] > 0.0f ? x[i] : 0.0f;
    y[i] = r * r;
  }
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
