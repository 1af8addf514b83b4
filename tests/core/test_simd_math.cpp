// The vectorisable exp and tanh against libm over the ranges the loss and the softcap use.

#include <doctest/doctest.h>

#include <cmath>

#include "nanochat/core/simd_math.hpp"

TEST_CASE("simd_exp is within a few ulp of exp") {
  double worst = 0;
  for (float x = -87.0f; x < 88.0f; x += 0.00137f) {
    const double exact = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(nanochat::simd_exp(x) - exact) / exact);
  }
  CHECK(worst < 4e-7);
}

TEST_CASE("simd_tanh is within a few ulp of tanh, near zero too") {
  double worst = 0;
  for (float x = -20.0f; x < 20.0f; x += 0.000731f) {
    const double exact = std::tanh(static_cast<double>(x));
    worst = std::max(worst, std::abs(nanochat::simd_tanh(x) - exact) / std::max(std::abs(exact), 1e-30));
  }
  CHECK(worst < 5e-7);
  CHECK(nanochat::simd_tanh(1e-20f) == 1e-20f);
  CHECK(nanochat::simd_tanh(-30.0f) == -1.0f);
}
