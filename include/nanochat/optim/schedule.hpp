#pragma once
// nanochat's base_train schedules (spec §3.6): the learning-rate multiplier (linear warmup, flat,
// linear warmdown to final_lr_frac) and Muon's momentum ramp 0.85 -> 0.95 over 300 steps.

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "nanochat/core/error.hpp"

namespace nanochat {

struct LrSchedule {
  std::int64_t num_iterations;
  double warmup_ratio = 0.0, warmdown_ratio = 0.2, final_lr_frac = 0.0;

  // Defined for the steps of the run, 0 to num_iterations; past the end it would go negative.
  double multiplier(std::int64_t it) const {
    NANOCHAT_CHECK(it >= 0 && it <= num_iterations, "LrSchedule: step ", it, " is outside the run's 0..",
                   num_iterations);
    const auto warmup = static_cast<std::int64_t>(std::llround(warmup_ratio * static_cast<double>(num_iterations)));
    const auto warmdown = static_cast<std::int64_t>(std::llround(warmdown_ratio * static_cast<double>(num_iterations)));
    if (it < warmup) return static_cast<double>(it + 1) / static_cast<double>(warmup);
    if (it <= num_iterations - warmdown) return 1.0;
    const double progress = static_cast<double>(num_iterations - it) / static_cast<double>(warmdown);
    return progress + (1.0 - progress) * final_lr_frac;
  }
};

inline double muon_momentum_at(std::int64_t it) {
  const double frac = std::min(static_cast<double>(it) / 300.0, 1.0);
  return (1.0 - frac) * 0.85 + frac * 0.95;
}

}  // namespace nanochat
