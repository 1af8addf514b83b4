// The vector exp and tanh against libm over the ranges the loss and the softcap use, and the
// array loops built on them, at lengths that leave partial vectors.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "nanochat/core/simd_math.hpp"

namespace {

// The largest relative error of f, applied by map_vec over [lo, hi) in steps, against exact.
template <class F>
double worst_relative_error(float lo, float hi, float step, F f, double (*exact)(double), double floor = 0.0) {
  double worst = 0;
  std::vector<float> xs;
  for (float x = lo; x < hi; x += step) xs.push_back(x);
  std::vector<float> ys = xs;
  nanochat::map_vec(ys.data(), static_cast<std::int64_t>(ys.size()), f);
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double e = exact(static_cast<double>(xs[i]));
    worst = std::max(worst, std::abs(ys[i] - e) / std::max(std::abs(e), floor));
  }
  return worst;
}

}  // namespace

TEST_CASE("simd_exp is within a few ulp of exp") {
  const double worst = worst_relative_error(-87.0f, 88.0f, 0.00137f, [](nanochat::FloatVec v) { return nanochat::simd_exp(v); },
                                            [](double x) { return std::exp(x); });
  CHECK(worst < 4e-7);
}

TEST_CASE("simd_tanh is within a few ulp of tanh, near zero too") {
  const double worst = worst_relative_error(-20.0f, 20.0f, 0.000731f, [](nanochat::FloatVec v) { return nanochat::simd_tanh(v); },
                                            [](double x) { return std::tanh(x); }, 1e-30);
  CHECK(worst < 5e-7);
  float tiny[2] = {1e-20f, -30.0f};
  nanochat::map_vec(tiny, 2, [](nanochat::FloatVec v) { return nanochat::simd_tanh(v); });
  CHECK(tiny[0] == 1e-20f);
  CHECK(tiny[1] == -1.0f);
}

TEST_CASE("NaN stays NaN through simd_exp, simd_tanh and the softmax") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  float x[3] = {nan, -nan, 0.5f};
  nanochat::map_vec(x, 3, [](nanochat::FloatVec v) { return nanochat::simd_tanh(v); });
  CHECK(std::isnan(x[0]));
  CHECK(std::isnan(x[1]));
  CHECK(x[2] == doctest::Approx(std::tanh(0.5)));
  float y[2] = {nan, 1.0f};
  nanochat::map_vec(y, 2, [](nanochat::FloatVec v) { return nanochat::simd_exp(v); });
  CHECK(std::isnan(y[0]));
  float row[4] = {0.0f, nan, 1.0f, 2.0f};
  nanochat::softmax_in_place(row, 4);
  for (float p : row) CHECK(std::isnan(p));
}

TEST_CASE("map_vec, max_of and sum_exp cover every element and nothing past the end") {
  for (std::int64_t n : {1, 3, 15, 16, 17, 33, 100}) {
    CAPTURE(n);
    std::vector<float> x(static_cast<std::size_t>(n) + 1);
    for (std::int64_t i = 0; i < n; ++i) x[static_cast<std::size_t>(i)] = 0.01f * static_cast<float>((i * 37) % 101) - 0.5f;
    x.back() = 1000.0f;  // a sentinel past the end: not read into the max, not written
    float max = -std::numeric_limits<float>::infinity();
    double sum = 0.0;
    for (std::int64_t i = 0; i < n; ++i) max = std::max(max, x[static_cast<std::size_t>(i)]);
    for (std::int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[static_cast<std::size_t>(i)] - max));
    CHECK(nanochat::max_of(x.data(), n) == max);
    CHECK(nanochat::sum_exp(x.data(), n, max) == doctest::Approx(sum).epsilon(1e-6));
    nanochat::map_vec(x.data(), n, [](nanochat::FloatVec v) { return v * 2.0f; });
    CHECK(x.back() == 1000.0f);
    CHECK(x[static_cast<std::size_t>(n) - 1] == 2.0f * (0.01f * static_cast<float>(((n - 1) * 37) % 101) - 0.5f));
  }
}

TEST_CASE("softmax_in_place matches the exact softmax and sums to one") {
  for (std::int64_t n : {1, 2, 16, 31, 257}) {
    CAPTURE(n);
    std::vector<float> x(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) x[static_cast<std::size_t>(i)] = 3.0f * std::sin(0.7f * static_cast<float>(i));
    std::vector<double> exact(x.begin(), x.end());
    const double max = *std::max_element(exact.begin(), exact.end());
    double sum = 0.0;
    for (double& e : exact) sum += (e = std::exp(e - max));
    nanochat::softmax_in_place(x.data(), n);
    double total = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
      CHECK(x[static_cast<std::size_t>(i)] == doctest::Approx(exact[static_cast<std::size_t>(i)] / sum).epsilon(1e-6));
      total += x[static_cast<std::size_t>(i)];
    }
    CHECK(total == doctest::Approx(1.0).epsilon(1e-6));
  }
}
