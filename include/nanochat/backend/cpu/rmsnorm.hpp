#pragma once
// RMSNorm without weights on the Cpu backend: y = x * r, r = 1 / sqrt(mean(x^2) + eps).
// The forward saves r per row (its output may be bf16 for a float input); the backward uses dx = r * (dy - x * r^2 * mean(dy * x)).

#include <cmath>
#include <type_traits>

#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/core/rmsnorm_shape.hpp"

namespace nanochat::cpu {

namespace detail {
template <class TOut, class TIn>
void rmsnorm_rows(CpuView<TOut> out, CpuView<float> rstd, CpuView<const TIn> in, float eps) {
  const RmsNormShape s = rmsnorm_shape(out, in, rstd, "rmsnorm_forward");
  const TIn* x_all = in.data();
  TOut* y_all = out.data();
  float* r_all = rstd.data();
#pragma omp parallel for schedule(static)
  for (std::int64_t row = 0; row < s.rows; ++row) {
    const TIn* x = x_all + row * s.dim;
    TOut* y = y_all + row * s.dim;
    float sum_sq = 0.0f;
#pragma omp simd reduction(+ : sum_sq)
    for (int i = 0; i < s.dim; ++i) {
      const float v = static_cast<float>(x[i]);
      sum_sq += v * v;
    }
    const float r = 1.0f / std::sqrt(sum_sq / static_cast<float>(s.dim) + eps);
    r_all[row] = r;
#pragma omp simd
    for (int i = 0; i < s.dim; ++i) store_as(y[i], static_cast<float>(x[i]) * r);
  }
}
}  // namespace detail

template <class T>
void rmsnorm_forward(Cpu&, CpuView<T> out, CpuView<float> rstd,
                     std::type_identity_t<CpuView<const T>> in,
                     float eps = rmsnorm_default_eps<T>()) {
  detail::rmsnorm_rows<T, T>(out, rstd, in, eps);
}

// A float input normalised in fp32 and stored in bf16, rounded once: the operand of a bf16
// matmul, which would round the float output the same way (the eps is the input's, float's).
inline void rmsnorm_forward(Cpu&, CpuView<bf16> out, CpuView<float> rstd, CpuView<const float> in,
                            float eps = rmsnorm_default_eps<float>()) {
  detail::rmsnorm_rows<bf16, float>(out, rstd, in, eps);
}

// din = d(loss)/d(in), or din += it with accumulate (the residual stream adds each block's
// input gradient to the gradient flowing past the block). din may alias dout when not accumulating.
template <class T>
void rmsnorm_backward(Cpu&, CpuView<T> din,
                      std::type_identity_t<CpuView<const T>> dout,
                      std::type_identity_t<CpuView<const T>> in,
                      CpuView<const float> rstd, bool accumulate = false) {
  const RmsNormShape s = rmsnorm_shape(din, in, rstd, "rmsnorm_backward");
  check_shape(dout.shape(), in.shape(), "rmsnorm_backward: dout");
  NANOCHAT_CHECK(dout.is_contiguous(), "rmsnorm_backward: dout with shape ", dout.shape(),
                 " must be contiguous");
  const T* x_all = in.data();
  const T* dy_all = dout.data();
  T* dx_all = din.data();
  const float* r_all = rstd.data();
#pragma omp parallel for schedule(static)
  for (std::int64_t row = 0; row < s.rows; ++row) {
    const T* x = x_all + row * s.dim;
    const T* dy = dy_all + row * s.dim;
    T* dx = dx_all + row * s.dim;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int i = 0; i < s.dim; ++i) dot += static_cast<float>(dy[i]) * static_cast<float>(x[i]);
    const float r = r_all[row];
    const float coef = r * r * dot / static_cast<float>(s.dim);
#pragma omp simd
    for (int i = 0; i < s.dim; ++i) {
      const float base = accumulate ? static_cast<float>(dx[i]) : 0.0f;
      dx[i] = T(base + r * (static_cast<float>(dy[i]) - static_cast<float>(x[i]) * coef));
    }
  }
}

}  // namespace nanochat::cpu
