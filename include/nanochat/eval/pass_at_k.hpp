#pragma once
// pass@k as nanochat's chat_rl reports it: for k = 1..samples, the share of problems that have a
// correct answer among their first k samples (not the unbiased estimator of the Codex paper: the
// samples are taken in order, as drawn).

#include <cstddef>
#include <vector>

namespace nanochat::eval {

// outcomes[problem][sample]; a problem with fewer samples counts only those it has.
inline std::vector<double> pass_at_k(const std::vector<std::vector<bool>>& outcomes, std::size_t samples) {
  std::vector<double> pass(samples, 0.0);
  for (const auto& problem : outcomes) {
    bool any = false;
    for (std::size_t k = 0; k < samples; ++k) {
      any = any || (k < problem.size() && problem[k]);
      pass[k] += any ? 1.0 : 0.0;
    }
  }
  for (double& p : pass) p /= outcomes.empty() ? 1.0 : static_cast<double>(outcomes.size());
  return pass;
}

}  // namespace nanochat::eval
