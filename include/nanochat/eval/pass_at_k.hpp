#pragma once
// pass@k as nanochat's chat_rl reports it: for k = 1..samples, the share of problems that have a
// correct answer among their first k samples (not the unbiased estimator of the Codex paper: the
// samples are taken in order, as drawn).

#include <cstddef>
#include <span>
#include <vector>

#include "nanochat/dist/communicator.hpp"

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

// Problems strided over the ranks (rank r answered r, r+W, ..., the others' rows left empty):
// afterwards every rank holds every problem's outcomes, as one process would have them, so that
// pass@k and the counts come out exactly the same. `samples` per answered problem.
inline void share_outcomes(dist::Communicator& comm, std::vector<std::vector<bool>>& outcomes, std::size_t samples) {
  if (comm.size() == 1) return;
  // 1 right, -1 wrong, 0 not answered here: a sum over the ranks keeps each problem's owner's.
  std::vector<double> flat(outcomes.size() * samples, 0.0);
  for (std::size_t i = 0; i < outcomes.size(); ++i)
    for (std::size_t k = 0; k < outcomes[i].size() && k < samples; ++k) flat[i * samples + k] = outcomes[i][k] ? 1.0 : -1.0;
  comm.all_reduce(std::span<double>(flat), dist::ReduceOp::sum);
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    outcomes[i].clear();
    for (std::size_t k = 0; k < samples && flat[i * samples + k] != 0.0; ++k) outcomes[i].push_back(flat[i * samples + k] > 0.0);
  }
}

}  // namespace nanochat::eval
