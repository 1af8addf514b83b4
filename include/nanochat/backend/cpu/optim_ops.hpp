#pragma once
// The element-wise and reduction ops the optimizers need, on the Cpu backend.

#include <cmath>
#include <cstdint>

#include "nanochat/backend/cpu/cpu.hpp"

namespace nanochat::cpu {

// sum(x^2) in double: gradient norms for clipping and Newton-Schulz's Frobenius normalisation.
inline double sum_of_squares(Cpu&, CpuView<const float> x) {
  NANOCHAT_CHECK(x.is_contiguous(), "sum_of_squares: view with shape ", x.shape(), " is not contiguous");
  const float* p = x.data();
  const std::int64_t n = x.numel();
  double total = 0.0;
#pragma omp parallel for simd schedule(static) reduction(+ : total)
  for (std::int64_t i = 0; i < n; ++i) total += static_cast<double>(p[i]) * p[i];
  return total;
}

// y = a * x + b * y.
inline void axpby(Cpu&, CpuView<float> y, float a, CpuView<const float> x, float b) {
  check_shape(x.shape(), y.shape(), "axpby: x");
  const float* xs = x.data();
  float* ys = y.data();
  const std::int64_t n = y.numel();
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) ys[i] = a * xs[i] + b * ys[i];
}

inline void scale(Cpu&, CpuView<float> x, float s) {
  float* p = x.data();
  const std::int64_t n = x.numel();
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) p[i] *= s;
}

// PyTorch's AdamW step for one parameter at step t (counting from 1):
//   p *= 1 - lr wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
inline void adamw_update(Cpu&, CpuView<float> param, CpuView<const float> grad, CpuView<float> m,
                         CpuView<float> v, float lr, float beta1, float beta2, float eps,
                         float weight_decay, std::int64_t t) {
  check_shape(grad.shape(), param.shape(), "adamw_update: grad");
  check_shape(m.shape(), param.shape(), "adamw_update: exp_avg");
  check_shape(v.shape(), param.shape(), "adamw_update: exp_avg_sq");
  const double steps = static_cast<double>(t);
  const float bias1 = static_cast<float>(1.0 - std::pow(static_cast<double>(beta1), steps));
  const float bias2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(static_cast<double>(beta2), steps)));
  const float step_size = lr / bias1, decay = 1.0f - lr * weight_decay;
  float* p = param.data();
  const float* g = grad.data();
  float* ms = m.data();
  float* vs = v.data();
  const std::int64_t n = param.numel();
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const float mi = beta1 * ms[i] + (1.0f - beta1) * g[i];
    const float vi = beta2 * vs[i] + (1.0f - beta2) * g[i] * g[i];
    ms[i] = mi;
    vs[i] = vi;
    p[i] = p[i] * decay - step_size * mi / (std::sqrt(vi) / bias2_sqrt + eps);
  }
}

// Muon's momentum: buf = mu buf + (1 - mu) g; u = (1 - mu) g + mu buf with Nesterov, else buf.
inline void muon_momentum(Cpu&, CpuView<float> update, CpuView<float> buffer, CpuView<const float> grad,
                          float momentum, bool nesterov) {
  check_shape(buffer.shape(), grad.shape(), "muon_momentum: buffer");
  check_shape(update.shape(), grad.shape(), "muon_momentum: update");
  const float* g = grad.data();
  float* b = buffer.data();
  float* u = update.data();
  const std::int64_t n = grad.numel();
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const float bi = momentum * b[i] + (1.0f - momentum) * g[i];
    b[i] = bi;
    u[i] = nesterov ? (1.0f - momentum) * g[i] + momentum * bi : bi;
  }
}

}  // namespace nanochat::cpu
