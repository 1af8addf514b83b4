#pragma once
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a
// counter-based generator, so value i of a stream is a pure function of (seed, stream, i). Any
// thread of any device computes the same numbers in any order; this is what makes a model
// initialised on the CPU bit-identical to one initialised on a GPU.
//
// The normal transform (Box-Muller) uses its own log/sin/cos in double precision built only from
// IEEE-exact operations (+, *, /, sqrt, and explicit fma), so host and device agree to the bit:
// no libm, no fast-math intrinsics, and no expression the compiler could contract differently.

#include <bit>
#include <cstdint>
#include <math.h>

#include "nanochat/core/macros.hpp"

namespace nanochat {

struct PhiloxBlock {
  std::uint32_t x[4];
};

NANOCHAT_HOST_DEVICE constexpr PhiloxBlock philox4x32_10(PhiloxBlock counter, std::uint32_t key0,
                                                         std::uint32_t key1) {
  constexpr std::uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;
  constexpr std::uint32_t w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;  // golden ratio, sqrt(3) - 1
  PhiloxBlock c = counter;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(m0) * c.x[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(m1) * c.x[2];
    c = PhiloxBlock{{static_cast<std::uint32_t>(p1 >> 32) ^ c.x[1] ^ key0,
                     static_cast<std::uint32_t>(p1),
                     static_cast<std::uint32_t>(p0 >> 32) ^ c.x[3] ^ key1,
                     static_cast<std::uint32_t>(p0)}};
    key0 += w0;
    key1 += w1;
  }
  return c;
}

// Block b of stream `stream` under `seed`: counter = (b, stream), key = seed.
NANOCHAT_HOST_DEVICE constexpr PhiloxBlock philox_block(std::uint64_t seed, std::uint64_t stream,
                                                        std::uint64_t block) {
  return philox4x32_10(PhiloxBlock{{static_cast<std::uint32_t>(block),
                                    static_cast<std::uint32_t>(block >> 32),
                                    static_cast<std::uint32_t>(stream),
                                    static_cast<std::uint32_t>(stream >> 32)}},
                       static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
}

namespace philox_detail {

// ln(x) for x in (0, 1]: x = m * 2^e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s),
// s = (m - 1) / (m + 1), |s| <= 0.172, so twelve odd terms reach double precision.
NANOCHAT_HOST_DEVICE inline double log_unit(double x) {
  const std::uint64_t bits = std::bit_cast<std::uint64_t>(x);
  int e = static_cast<int>((bits >> 52) & 0x7ff) - 1023;
  double m = std::bit_cast<double>((bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull);
  if (m > 0x1.6a09e667f3bcdp+0) {  // sqrt(2)
    m *= 0.5;
    e += 1;
  }
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
  double p = 0x1.47ae147ae147bp-5;  // 1/25, then Horner down to 1/3
  p = ::fma(p, s2, 0x1.642c8590b2164p-5);
  p = ::fma(p, s2, 0x1.8618618618618p-5);
  p = ::fma(p, s2, 0x1.af286bca1af28p-5);
  p = ::fma(p, s2, 0x1.e1e1e1e1e1e1ep-5);
  p = ::fma(p, s2, 0x1.1111111111111p-4);
  p = ::fma(p, s2, 0x1.3b13b13b13b14p-4);
  p = ::fma(p, s2, 0x1.745d1745d1746p-4);
  p = ::fma(p, s2, 0x1.c71c71c71c71cp-4);
  p = ::fma(p, s2, 0x1.2492492492492p-3);
  p = ::fma(p, s2, 0x1.999999999999ap-3);
  p = ::fma(p, s2, 0x1.5555555555555p-2);
  const double s3 = s2 * s;
  const double log_m = 2.0 * ::fma(p, s3, s);
  return ::fma(static_cast<double>(e), 0x1.62e42fefa39efp-1, log_m);  // + e * ln 2
}

// sin and cos of x in [0, pi/4] by Taylor series (the remainder is below 1e-16).
NANOCHAT_HOST_DEVICE inline void sincos_octant(double x, double& s, double& c) {
  const double x2 = x * x;
  double ps = 0x1.952c77030ad4ap-49;
  ps = ::fma(ps, x2, -0x1.ae7f3e733b81fp-41);
  ps = ::fma(ps, x2, 0x1.6124613a86d09p-33);
  ps = ::fma(ps, x2, -0x1.ae64567f544e4p-26);
  ps = ::fma(ps, x2, 0x1.71de3a556c734p-19);
  ps = ::fma(ps, x2, -0x1.a01a01a01a01ap-13);
  ps = ::fma(ps, x2, 0x1.1111111111111p-7);
  ps = ::fma(ps, x2, -0x1.5555555555555p-3);
  s = ::fma(ps * x2, x, x);
  double pc = 0x1.ae7f3e733b81fp-45;
  pc = ::fma(pc, x2, -0x1.93974a8c07c9dp-37);
  pc = ::fma(pc, x2, 0x1.1eed8eff8d898p-29);
  pc = ::fma(pc, x2, -0x1.27e4fb7789f5cp-22);
  pc = ::fma(pc, x2, 0x1.a01a01a01a01ap-16);
  pc = ::fma(pc, x2, -0x1.6c16c16c16c17p-10);
  pc = ::fma(pc, x2, 0x1.5555555555555p-5);
  pc = ::fma(pc, x2, -0x1.0000000000000p-1);
  c = ::fma(pc, x2, 1.0);
}

// sin and cos of 2*pi*k/2^24 for 0 <= k < 2^24: the turn splits exactly into a quadrant and a
// fraction of it, so all the approximation happens in [0, pi/4].
NANOCHAT_HOST_DEVICE inline void sincos_turn(std::uint32_t k, double& sin_out, double& cos_out) {
  const std::uint32_t quadrant = k >> 22;
  std::uint32_t f = k & 0x3fffffu;  // fraction of the quadrant, in units of 2^-22
  const bool upper = f > 0x200000u;  // past 45 degrees: use the complementary angle
  if (upper) f = 0x400000u - f;
  const double x = static_cast<double>(f) * 0x1p-22 * 0x1.921fb54442d18p+0;  // * pi/2
  double s, c;
  sincos_octant(x, s, c);
  if (upper) {
    const double t = s;
    s = c;
    c = t;
  }
  switch (quadrant) {
    case 0: sin_out = s; cos_out = c; break;
    case 1: sin_out = c; cos_out = -s; break;
    case 2: sin_out = -s; cos_out = -c; break;
    default: sin_out = -c; cos_out = s; break;
  }
}

}  // namespace philox_detail

// Uniform float in [0, 1) with 24 random bits: every value is exactly representable.
NANOCHAT_HOST_DEVICE inline float uniform_from_bits(std::uint32_t bits) {
  return static_cast<float>(bits >> 8) * 0x1p-24f;
}

// Two standard normals from two words (Box-Muller).
struct NormalPair {
  float z0, z1;
};
NANOCHAT_HOST_DEVICE inline NormalPair normals_from_bits(std::uint32_t a, std::uint32_t b) {
  const double u1 = static_cast<double>((a >> 8) + 1u) * 0x1p-24;  // (0, 1]: log is finite
  const double r = ::sqrt(-2.0 * philox_detail::log_unit(u1));
  double s, c;
  philox_detail::sincos_turn(b >> 8, s, c);
  return {static_cast<float>(r * c), static_cast<float>(r * s)};
}

// Element i of a stream: uniform in [0, 1), or standard normal. Four values per Philox block.
NANOCHAT_HOST_DEVICE inline float philox_uniform(std::uint64_t seed, std::uint64_t stream,
                                                 std::uint64_t i) {
  return uniform_from_bits(philox_block(seed, stream, i / 4).x[i % 4]);
}

NANOCHAT_HOST_DEVICE inline float philox_normal(std::uint64_t seed, std::uint64_t stream,
                                                std::uint64_t i) {
  const PhiloxBlock blk = philox_block(seed, stream, i / 4);
  const unsigned lane = static_cast<unsigned>(i % 4);
  const NormalPair pair = normals_from_bits(blk.x[lane & 2u], blk.x[(lane & 2u) + 1]);
  return (lane & 1u) ? pair.z1 : pair.z0;
}

}  // namespace nanochat
