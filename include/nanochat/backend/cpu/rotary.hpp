#pragma once
// Rotary position embedding on the Cpu backend, nanochat's half-split convention:
// y1 = x1 cos + x2 sin, y2 = -x1 sin + x2 cos with x1 = x[:D/2], x2 = x[D/2:]. The backward is
// the transposed rotation, i.e. the same with sin negated. Applied in place.

#include <cstdint>

#include "nanochat/backend/cpu/cpu.hpp"

namespace nanochat::cpu {

namespace detail {
// x: [B, T, heads, D]; token t of row b sits at position position_of(b, t) of the [positions, D/2]
// tables (the caller has checked that every position is in the table).
template <class PositionOf>
void rotate_at(CpuView<float> x, CpuView<const float> cos, CpuView<const float> sin, PositionOf position_of,
               float sin_sign) {
  const std::int64_t batch = x.size(0), seq = x.size(1), heads = x.size(2), dim = x.size(3);
  const std::int64_t half = dim / 2;
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t t = 0; t < seq; ++t) {
      const std::int64_t pos = position_of(b, t);
      const float* c = cos.data() + pos * half;
      const float* s = sin.data() + pos * half;
      for (std::int64_t h = 0; h < heads; ++h) {
        float* v = x.data() + ((b * seq + t) * heads + h) * dim;
#pragma omp simd
        for (std::int64_t i = 0; i < half; ++i) {
          const float x1 = v[i], x2 = v[i + half], si = sin_sign * s[i];
          v[i] = x1 * c[i] + x2 * si;
          v[i + half] = x2 * c[i] - x1 * si;
        }
      }
    }
}

inline void check_rotary(CpuView<float> x, CpuView<const float> cos, CpuView<const float> sin, const char* op) {
  NANOCHAT_CHECK(x.rank() == 4 && x.is_contiguous(), op, ": x must be a contiguous [B, T, heads, D] ",
                 "tensor, got shape ", x.shape());
  const std::int64_t dim = x.size(3);
  NANOCHAT_CHECK(dim % 2 == 0 && cos.size(1) == dim / 2 && sin.shape() == cos.shape(), op,
                 ": tables of shape ", cos.shape(), " do not fit head dim ", dim);
}

// Every row's token t at position pos0 + t.
inline void rotate(CpuView<float> x, CpuView<const float> cos, CpuView<const float> sin,
                   std::int64_t pos0, float sin_sign, const char* op) {
  check_rotary(x, cos, sin, op);
  const std::int64_t seq = x.size(1);
  NANOCHAT_CHECK(pos0 >= 0 && pos0 + seq <= cos.size(0), op, ": positions [", pos0, ", ", pos0 + seq,
                 ") exceed the rotary table's ", cos.size(0), " positions");
  rotate_at(x, cos, sin, [pos0](std::int64_t, std::int64_t t) { return pos0 + t; }, sin_sign);
}
}  // namespace detail

inline void rotary_forward(Cpu&, CpuView<float> x, CpuView<const float> cos,
                           CpuView<const float> sin, std::int64_t pos0 = 0) {
  detail::rotate(x, cos, sin, pos0, 1.0f, "rotary_forward");
}

// x [1, N, heads, D]: token i at its own position positions[i] (tokens of KV-cache slots at
// different positions, decoded in one step).
inline void rotary_forward(Cpu&, CpuView<float> x, CpuView<const float> cos, CpuView<const float> sin,
                           CpuView<const std::int32_t> positions) {
  detail::check_rotary(x, cos, sin, "rotary_forward");
  NANOCHAT_CHECK(x.size(0) == 1, "rotary_forward: per-token positions take x [1, N, heads, D], got ", x.shape());
  check_shape(positions.shape(), Shape{x.size(1)}, "rotary_forward: positions");
  for (std::int64_t i = 0; i < x.size(1); ++i)
    NANOCHAT_CHECK(positions.data()[i] >= 0 && positions.data()[i] < cos.size(0), "rotary_forward: position ",
                   positions.data()[i], " of token ", i, " is outside the rotary table's ", cos.size(0), " positions");
  const std::int32_t* pos = positions.data();
  detail::rotate_at(x, cos, sin, [pos](std::int64_t, std::int64_t t) -> std::int64_t { return pos[t]; }, 1.0f);
}

// dx from dy, in place: the inverse (transposed) rotation.
inline void rotary_backward(Cpu&, CpuView<float> dx, CpuView<const float> cos,
                            CpuView<const float> sin, std::int64_t pos0 = 0) {
  detail::rotate(dx, cos, sin, pos0, -1.0f, "rotary_backward");
}

}  // namespace nanochat::cpu
