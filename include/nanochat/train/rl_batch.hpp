#pragma once
// chat_rl's objective on one example's rollout (spec §5.6, nanochat's scripts/chat_rl.py): the
// samples' sequences (prompt + completion, the terminal <|assistant_end|>/<|bos|> excluded) with
// the Engine's masks (0 for the prompt and for forced tool-output tokens) become rows of inputs
// and targets padded with <|assistant_end|>; a target is -1 wherever mask[1:] is 0 or in the
// padding, so the loss reads only sampled tokens. The advantage of a sample is its reward minus
// the mean reward of the example's samples (no std normalisation). The loss of a pass of rows is
//   -sum_i logp_i * advantage_row(i) / (valid targets in the pass * passes * examples per rank),
// the gradient of which is the per-token weighted cross-entropy with weight_i = advantage_row(i)
// / (that denominator) on valid targets: pass_token_weights() computes them for
// Gpt::backward(ids, targets, weights), and policy_gradient_loss() the loss from the per-token
// losses.
//
// Rows are padded to a fixed width (the training model's, planned once) rather than to the
// longest sample as nanochat does: the extra columns hold padding with target -1, which the
// causal model's earlier positions never see and the loss skips, so the loss and gradient are
// the same.

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/loss.hpp"

namespace nanochat {

// One example's samples as the Engine returned them, and their rewards.
struct Rollout {
  std::vector<std::vector<std::int32_t>> sequences;
  std::vector<std::vector<std::uint8_t>> masks;
  std::vector<float> rewards;
};

// advantage = reward - mean reward, in float as nanochat's float32 tensors.
inline void compute_advantages(std::span<const float> rewards, std::span<float> advantages) {
  NANOCHAT_CHECK(!rewards.empty() && advantages.size() == rewards.size(), "compute_advantages: ", rewards.size(),
                 " rewards for ", advantages.size(), " advantages");
  float sum = 0.0f;
  for (const float r : rewards) sum += r;
  const float mean = sum / static_cast<float>(rewards.size());
  for (std::size_t i = 0; i < rewards.size(); ++i) advantages[i] = rewards[i] - mean;
}

// A rollout as training rows: inputs and targets [rows, width] row-major, the rows' advantages.
// Buffers keep their capacity from one example to the next.
struct RlBatch {
  std::int64_t rows = 0, width = 0;
  std::vector<std::int32_t> inputs, targets;
  std::vector<float> advantages;
};

// The longest sequence of the rollout, in tokens.
inline std::int64_t longest_sequence(const Rollout& r) {
  std::size_t longest = 0;
  for (const auto& s : r.sequences) longest = std::max(longest, s.size());
  return static_cast<std::int64_t>(longest);
}

// Fills out from the rollout: row r is sequences[r] padded with pad to width + 1 tokens, inputs
// its first width tokens, targets its last width with -1 where the mask of the target token is 0
// or the token is padding.
inline void build_rl_batch(const Rollout& r, std::int32_t pad, std::int64_t width, RlBatch& out) {
  const std::size_t rows = r.sequences.size();
  NANOCHAT_CHECK(rows > 0 && r.masks.size() == rows && r.rewards.size() == rows, "build_rl_batch: ", rows,
                 " sequences, ", r.masks.size(), " masks and ", r.rewards.size(), " rewards");
  NANOCHAT_CHECK(longest_sequence(r) <= width + 1, "build_rl_batch: a sequence of ", longest_sequence(r),
                 " tokens does not fit rows of ", width, " inputs");
  out.rows = static_cast<std::int64_t>(rows);
  out.width = width;
  const auto cells = rows * static_cast<std::size_t>(width);
  out.inputs.assign(cells, pad);
  out.targets.assign(cells, ignore_index);
  out.advantages.resize(rows);
  compute_advantages(r.rewards, out.advantages);
  for (std::size_t row = 0; row < rows; ++row) {
    const auto& seq = r.sequences[row];
    const auto& mask = r.masks[row];
    NANOCHAT_CHECK(mask.size() == seq.size() && !seq.empty(), "build_rl_batch: sample ", row, " has ", seq.size(),
                   " tokens and ", mask.size(), " mask values");
    std::int32_t* in = out.inputs.data() + row * static_cast<std::size_t>(width);
    std::int32_t* tgt = out.targets.data() + row * static_cast<std::size_t>(width);
    for (std::size_t t = 0; t + 1 < seq.size(); ++t) {
      in[t] = seq[t];
      if (mask[t + 1] != 0) tgt[t] = seq[t + 1];
    }
    // The row's last token is an input with padding after it (target -1).
    if (seq.size() <= static_cast<std::size_t>(width)) in[seq.size() - 1] = seq.back();
  }
}

// Token weights of the pass over rows [first_row, first_row + rows) of batch, [rows * width]:
// advantage_row / (max(1, valid targets in the pass) * passes * examples_per_rank) where the
// target is valid, else 0. Returns the pass's valid targets.
inline std::int64_t pass_token_weights(const RlBatch& batch, std::int64_t first_row, std::int64_t rows,
                                       std::int64_t passes, std::int64_t examples_per_rank, std::span<float> weights) {
  NANOCHAT_CHECK(first_row >= 0 && rows > 0 && first_row + rows <= batch.rows, "pass_token_weights: rows [",
                 first_row, ", ", first_row + rows, ") of a batch of ", batch.rows);
  NANOCHAT_CHECK(passes > 0 && examples_per_rank > 0, "pass_token_weights: passes ", passes,
                 " and examples per rank ", examples_per_rank, " must be positive");
  const std::size_t w = static_cast<std::size_t>(batch.width);
  NANOCHAT_CHECK(weights.size() == static_cast<std::size_t>(rows) * w, "pass_token_weights: ", weights.size(),
                 " weights for ", rows, " rows of ", w);
  const std::int32_t* tgt = batch.targets.data() + static_cast<std::size_t>(first_row) * w;
  std::int64_t valid = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) valid += tgt[i] != ignore_index;
  // nanochat's (targets >= 0).sum().clamp(min=1): a pass with nothing to learn contributes 0.
  const float denominator = static_cast<float>(std::max<std::int64_t>(valid, 1) * passes * examples_per_rank);
  for (std::int64_t r = 0; r < rows; ++r) {
    const float weight = batch.advantages[static_cast<std::size_t>(first_row + r)] / denominator;
    for (std::size_t t = 0; t < w; ++t) {
      const std::size_t i = static_cast<std::size_t>(r) * w + t;
      weights[i] = tgt[i] != ignore_index ? weight : 0.0f;
    }
  }
  return valid;
}

// The pass's loss, -(policy-gradient objective) = sum_i weights_i * (-logp_i), from the per-token
// cross-entropies (0 where ignored).
inline double policy_gradient_loss(std::span<const float> losses, std::span<const float> weights) {
  NANOCHAT_CHECK(losses.size() == weights.size(), "policy_gradient_loss: ", losses.size(), " losses for ",
                 weights.size(), " weights");
  double sum = 0.0;
  for (std::size_t i = 0; i < losses.size(); ++i) sum += static_cast<double>(losses[i]) * weights[i];
  return sum;
}

}  // namespace nanochat
