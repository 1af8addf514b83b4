#pragma once
// exp and tanh on explicit vectors of floats as wide as the target's registers (GCC/Clang
// vector extensions: 16 lanes with AVX-512, 8 with AVX, else 4), and the loops that apply them
// over arrays. Written as vectors rather than left to the auto-vectoriser because its
// if-conversion gives up on any float comparison under the default -ftrapping-math, leaving
// the loss loops scalar. Accurate to a few ulp over the ranges the loss and the softcap use; not
// a general libm replacement (no NaN payloads, no denormals).

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "nanochat/core/bf16.hpp"

namespace nanochat {

#if defined(__AVX512F__)
inline constexpr std::int64_t vec_bytes = 64;
#elif defined(__AVX__)
inline constexpr std::int64_t vec_bytes = 32;
#else
inline constexpr std::int64_t vec_bytes = 16;  // wider vectors would change the calling ABI
#endif
using FloatVec = float __attribute__((vector_size(vec_bytes)));
using IntVec = std::int32_t __attribute__((vector_size(vec_bytes)));
inline constexpr std::int64_t vec_lanes = vec_bytes / 4;

inline FloatVec splat(float v) { return FloatVec{} + v; }

// Lanes [0, n) of p; the others hold `fill`.
inline FloatVec load_vec(const float* p, std::int64_t n = vec_lanes, float fill = 0.0f) {
  FloatVec v = splat(fill);
  std::memcpy(&v, p, static_cast<std::size_t>(n) * sizeof(float));
  return v;
}

// Lanes [0, n) of p widened from bf16 (exact: a bf16 is the top half of a float); the others 0.
// One zero-extension and one shift per vector.
inline FloatVec load_vec(const bf16* p, std::int64_t n = vec_lanes) {
  using Bits = std::uint16_t __attribute__((vector_size(vec_bytes / 2)));
  using Words = std::uint32_t __attribute__((vector_size(vec_bytes)));
  Bits bits{};
  std::memcpy(&bits, p, static_cast<std::size_t>(n) * sizeof(bf16));
  return std::bit_cast<FloatVec>(__builtin_convertvector(bits, Words) << 16);
}

inline void store_vec(float* p, FloatVec v, std::int64_t n = vec_lanes) {
  std::memcpy(p, &v, static_cast<std::size_t>(n) * sizeof(float));
}

inline float reduce_add(FloatVec v) {
  float total = 0.0f;
  for (std::int64_t i = 0; i < vec_lanes; ++i) total += v[i];
  return total;
}

inline float reduce_max(FloatVec v) {
  float m = v[0];
  for (std::int64_t i = 1; i < vec_lanes; ++i) m = v[i] > m ? v[i] : m;
  return m;
}

inline FloatVec vec_max(FloatVec a, FloatVec b) { return a > b ? a : b; }

// e^x for x in about [-87, 88]; arguments outside are clamped (results at the float limits).
inline FloatVec simd_exp(FloatVec x) {
  x = x < -87.0f ? splat(-87.0f) : x;
  x = x > 88.0f ? splat(88.0f) : x;
  // x = n ln2 + r with |r| <= ln2 / 2; ln2 split in two so n * ln2_hi is exact.
  const FloatVec t = x * 1.44269504f;
  const IntVec n = __builtin_convertvector(t + (t < 0.0f ? splat(-0.5f) : splat(0.5f)), IntVec);
  const FloatVec nf = __builtin_convertvector(n, FloatVec);
  const FloatVec r = (x - nf * 0x1.62e400p-1f) - nf * 0x1.7f7d1cp-20f;
  // Taylor to r^7 (remainder below 2e-8 relative for |r| <= 0.347).
  FloatVec p = splat(1.0f / 5040.0f);
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * std::bit_cast<FloatVec>((n + 127) << 23);
}

// tanh(x): an odd Taylor polynomial near 0 (where 1 - 2 / (e^2x + 1) would cancel), the
// exponential form elsewhere.
inline FloatVec simd_tanh(FloatVec x) {
  const IntVec bits = std::bit_cast<IntVec>(x);
  const IntVec sign = bits & std::numeric_limits<std::int32_t>::min();
  const FloatVec ax = std::bit_cast<FloatVec>(bits ^ sign);
  const FloatVec x2 = x * x;
  // tanh x = x - x^3/3 + 2x^5/15 - 17x^7/315 + 62x^9/2835 - 1382x^11/155925, for |x| < 0.3.
  FloatVec p = splat(-1382.0f / 155925.0f);
  p = p * x2 + 62.0f / 2835.0f;
  p = p * x2 - 17.0f / 315.0f;
  p = p * x2 + 2.0f / 15.0f;
  p = p * x2 - 1.0f / 3.0f;
  const FloatVec small = x + x * x2 * p;
  // tanh(10) is 1 in float. Written so that NaN is kept (it compares false) and comes out NaN:
  // a diverged logit must not be soft-capped into a finite one.
  const FloatVec e = simd_exp(2.0f * (ax > 10.0f ? splat(10.0f) : ax));
  const FloatVec large = std::bit_cast<FloatVec>(std::bit_cast<IntVec>(1.0f - 2.0f / (e + 1.0f)) | sign);
  return ax < 0.3f ? small : large;
}

// x[i] = f(x[i]) for i < n, a vector at a time; f maps a FloatVec to a FloatVec. The last partial
// vector's spare lanes hold 0 and are not stored.
template <class F>
void map_vec(float* x, std::int64_t n, F&& f) {
  std::int64_t i = 0;
  for (; i + vec_lanes <= n; i += vec_lanes) store_vec(x + i, f(load_vec(x + i)));
  if (i < n) store_vec(x + i, f(load_vec(x + i, n - i)), n - i);
}

// max over x[0, n), n >= 1.
inline float max_of(const float* x, std::int64_t n) {
  FloatVec m = splat(-std::numeric_limits<float>::infinity());
  std::int64_t i = 0;
  for (; i + vec_lanes <= n; i += vec_lanes) m = vec_max(m, load_vec(x + i));
  if (i < n) m = vec_max(m, load_vec(x + i, n - i, -std::numeric_limits<float>::infinity()));
  return reduce_max(m);
}

inline float sum_of(const float* x, std::int64_t n) {
  FloatVec total{};
  std::int64_t i = 0;
  for (; i + vec_lanes <= n; i += vec_lanes) total += load_vec(x + i);
  if (i < n) total += load_vec(x + i, n - i);
  return reduce_add(total);
}

// x[0, n) <- softmax(x[0, n)), n >= 1; returns log sum_i e^x[i] of the input.
inline float softmax_in_place(float* x, std::int64_t n) {
  const float max = max_of(x, n);
  map_vec(x, n, [&](FloatVec v) { return simd_exp(v - max); });
  const float sum = sum_of(x, n);
  const float inv_sum = 1.0f / sum;
  map_vec(x, n, [&](FloatVec v) { return v * inv_sum; });
  return max + std::log(sum);
}

// g[0, n) <- p * (g - sum_j p_j g_j): the gradient of softmax's input from that of its output g,
// where p = softmax's output.
inline void softmax_backward_in_place(float* g, const float* p, std::int64_t n) {
  FloatVec total{};
  std::int64_t i = 0;
  for (; i + vec_lanes <= n; i += vec_lanes) total += load_vec(p + i) * load_vec(g + i);
  if (i < n) total += load_vec(p + i, n - i) * load_vec(g + i, n - i);
  const float dot = reduce_add(total);
  for (i = 0; i + vec_lanes <= n; i += vec_lanes) store_vec(g + i, load_vec(p + i) * (load_vec(g + i) - dot));
  if (i < n) store_vec(g + i, load_vec(p + i, n - i) * (load_vec(g + i, n - i) - dot), n - i);
}

// sum of e^(x[i] - shift) over x[0, n); lanes past n contribute nothing.
inline float sum_exp(const float* x, std::int64_t n, float shift) {
  FloatVec total{};
  std::int64_t i = 0;
  for (; i + vec_lanes <= n; i += vec_lanes) total += simd_exp(load_vec(x + i) - shift);
  float sum = reduce_add(total);
  if (i < n) {
    const FloatVec tail = simd_exp(load_vec(x + i, n - i) - shift);
    for (std::int64_t j = 0; j < n - i; ++j) sum += tail[j];
  }
  return sum;
}

}  // namespace nanochat
