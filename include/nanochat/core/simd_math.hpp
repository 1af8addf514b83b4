#pragma once
// exp and tanh in float written as straight-line arithmetic, so `#pragma omp simd` loops
// vectorise them (libm calls stop vectorisation). Accurate to a few ulp over the ranges the
// loss and the softcap use; not a general libm replacement (no NaN payloads, no denormals).

#include <bit>
#include <cmath>
#include <cstdint>

namespace nanochat {

// e^x for x in about [-87, 88]; arguments outside are clamped (results at the float limits).
inline float simd_exp(float x) {
  // fmin/fmax and copysign rather than branches, so loops calling it vectorise.
  x = std::fmin(std::fmax(x, -87.0f), 88.0f);
  // x = n ln2 + r with |r| <= ln2 / 2; ln2 split in two so n * ln2_hi is exact.
  const float t = x * 1.44269504f;
  const float n = static_cast<float>(static_cast<std::int32_t>(t + std::copysign(0.5f, t)));
  const float r = (x - n * 0x1.62e400p-1f) - n * 0x1.7f7d1cp-20f;
  // Taylor to r^7 (remainder below 2e-8 relative for |r| <= 0.347).
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const std::int32_t e = static_cast<std::int32_t>(n) + 127;
  return p * std::bit_cast<float>(static_cast<std::uint32_t>(e) << 23);
}

// tanh(x): an odd Taylor polynomial near 0 (where 1 - 2 / (e^2x + 1) would cancel), the
// exponential form elsewhere.
inline float simd_tanh(float x) {
  const float ax = std::fabs(x);
  const float x2 = x * x;
  // tanh x = x - x^3/3 + 2x^5/15 - 17x^7/315 + 62x^9/2835 - 1382x^11/155925, for |x| < 0.3.
  float p = -1382.0f / 155925.0f;
  p = p * x2 + 62.0f / 2835.0f;
  p = p * x2 - 17.0f / 315.0f;
  p = p * x2 + 2.0f / 15.0f;
  p = p * x2 - 1.0f / 3.0f;
  const float small = x + x * x2 * p;
  const float e = simd_exp(2.0f * std::fmin(ax, 10.0f));  // tanh(10) rounds to 1 in float
  const float large = std::copysign(1.0f - 2.0f / (e + 1.0f), x);
  return ax < 0.3f ? small : large;
}

}  // namespace nanochat
