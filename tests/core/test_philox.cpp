// Philox4x32-10 against the known-answer vectors of its authors (Random123's kat_vectors), the
// deterministic log/sin/cos against libm, and the distributions' moments.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "nanochat/core/philox.hpp"

using namespace nanochat;

TEST_CASE("Philox4x32-10 reproduces Random123's known-answer vectors") {
  struct Kat {
    PhiloxBlock counter;
    std::uint32_t key0, key1;
    PhiloxBlock expected;
  };
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}},
       0xffffffff,
       0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}},
       0xa4093822,
       0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const Kat& k : kats) {
    const PhiloxBlock out = philox4x32_10(k.counter, k.key0, k.key1);
    for (int i = 0; i < 4; ++i) CHECK(out.x[i] == k.expected.x[i]);
  }
}

TEST_CASE("the libm-free log, sin and cos are accurate to double precision") {
  double worst_log = 0.0;
  for (std::uint32_t k = 1; k <= (1u << 24); k += 997) {
    const double x = k * 0x1p-24;
    const double exact = std::log(x);
    worst_log = std::max(worst_log, std::abs(philox_detail::log_unit(x) - exact) / std::max(1.0, std::abs(exact)));
  }
  CHECK(worst_log < 4e-16);  // relative, a couple of ulps
  double worst_trig = 0.0;
  for (std::uint32_t k = 0; k < (1u << 24); k += 331) {
    double s, c;
    philox_detail::sincos_turn(k, s, c);
    const double angle = 2.0 * std::numbers::pi * k * 0x1p-24;
    worst_trig = std::max({worst_trig, std::abs(s - std::sin(angle)), std::abs(c - std::cos(angle))});
  }
  CHECK(worst_trig < 1e-15);
}

TEST_CASE("uniform and normal streams have the right moments and differ by seed and stream") {
  const int n = 1 << 20;
  double sum = 0, sum_sq = 0, below_one = 0, u_sum = 0;
  float u_min = 1, u_max = 0;
  for (int i = 0; i < n; ++i) {
    const double z = philox_normal(42, 7, static_cast<std::uint64_t>(i));
    sum += z;
    sum_sq += z * z;
    below_one += z < 1.0;
    const float u = philox_uniform(42, 7, static_cast<std::uint64_t>(i));
    u_sum += u;
    u_min = std::min(u_min, u);
    u_max = std::max(u_max, u);
  }
  const double mean = sum / n, var = sum_sq / n - mean * mean;
  CHECK(std::abs(mean) < 0.005);
  CHECK(std::abs(var - 1.0) < 0.005);
  CHECK(std::abs(below_one / n - 0.841344746) < 0.002);  // Phi(1)
  CHECK(std::abs(u_sum / n - 0.5) < 0.002);
  CHECK(u_min >= 0.0f);
  CHECK(u_max < 1.0f);

  int same_seed = 0, same_stream = 0;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    same_seed += philox_normal(1, 0, i) == philox_normal(2, 0, i);
    same_stream += philox_normal(1, 0, i) == philox_normal(1, 1, i);
  }
  CHECK(same_seed == 0);
  CHECK(same_stream == 0);
}
