#pragma once
// A NaN or infinity poisons every later step and checkpoint: a training loop checks its loss,
// gradient norm and (before a save) its weights and optimizer state, and on the first value that
// is not finite the run ends there, before it updates or saves anything, so the last checkpoint
// stays the last good one. Shared by every training stage; each says what to try with the flags
// its program has (`advice`).

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "nanochat/core/error.hpp"
#include "nanochat/core/step_names.hpp"
#include "nanochat/model/weights.hpp"
#include "nanochat/optim/nanochat_optimizers.hpp"

namespace nanochat {

// What every training program can try: they all have these flags.
inline constexpr std::string_view lower_the_learning_rates =
    "lower the learning rates (--matrix-lr, --embedding-lr, --unembedding-lr)";

inline void stop_unless_finite(const std::filesystem::path& checkpoint_dir, std::int64_t step, const std::string& what,
                               double value, std::string_view advice = lower_the_learning_rates) {
  if (std::isfinite(value)) return;
  const std::int64_t last_good = latest_complete_step(checkpoint_dir);
  NANOCHAT_FAIL("step ", step, ": ", what, " is ", value, ", not finite; the run stops here (", advice, "?). ",
                last_good >= 0 ? cat("The last good checkpoint is step ", last_good, " in ", checkpoint_dir.string())
                               : std::string("No checkpoint was saved"));
}

// An update can overflow the weights or the optimizer's moments while the loss was still finite;
// such a checkpoint is not written (a sum of squares in double is finite iff every value is).
template <Config C, Backend B>
void stop_unless_saveable(B& backend, const std::filesystem::path& checkpoint_dir, std::int64_t step,
                          const GptWeights<C, B>& weights, NanochatOptimizers<C, B>& optimizers,
                          std::string_view advice = lower_the_learning_rates) {
  const auto sum = [&](TensorView<float, B> v) { return sum_of_squares(backend, TensorView<const float, B>(v)); };
  stop_unless_finite(checkpoint_dir, step, "the weights' sum of squares", sum(weights.flat()), advice);
  for (const auto& [name, view] : optimizers.adamw().state())
    stop_unless_finite(checkpoint_dir, step, "AdamW's " + name, sum(view), advice);
  for (const auto& [name, view] : optimizers.muon().state())
    stop_unless_finite(checkpoint_dir, step, "Muon's " + name, sum(view), advice);
}

}  // namespace nanochat
