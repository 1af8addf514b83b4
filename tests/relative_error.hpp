#pragma once
// ||got - want|| / ||want|| in double: the per-tensor error measure every parity test uses.

#include <doctest/doctest.h>

#include <cmath>
#include <span>

namespace nanochat::testing {

inline double relative_error(std::span<const float> got, std::span<const float> want) {
  REQUIRE(got.size() == want.size());
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    diff += d * d;
    norm += static_cast<double>(want[i]) * want[i];
  }
  return norm == 0 ? std::sqrt(diff) : std::sqrt(diff / norm);
}

}  // namespace nanochat::testing
