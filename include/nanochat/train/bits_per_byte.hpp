#pragma once
// Validation bits per byte (spec §6.1): per-token cross-entropy in nats, counted only where the
// target token has bytes (special tokens and ignored targets have 0), over the bytes those
// targets stand for: bpb = total_nats / (ln 2 * total_bytes). Independent of the vocabulary.

#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "nanochat/dist/communicator.hpp"
#include "nanochat/model/gpt.hpp"

namespace nanochat {

struct BitsPerByteTotal {
  double nats = 0.0;
  std::int64_t bytes = 0;

  double bits_per_byte() const {
    return bytes > 0 ? nats / (std::log(2.0) * static_cast<double>(bytes)) : std::numeric_limits<double>::infinity();
  }
};

// Every rank's nats and bytes summed (spec §6.1's all-reduce SUM); one process's unchanged.
inline BitsPerByteTotal sum_over_ranks(dist::Communicator& comm, BitsPerByteTotal total) {
  if (comm.size() == 1) return total;
  double sums[2] = {total.nats, static_cast<double>(total.bytes)};
  comm.all_reduce(std::span<double>(sums), dist::ReduceOp::sum);
  return {sums[0], static_cast<std::int64_t>(sums[1])};
}

// Adds one batch: per-token losses (reduction "none") and the targets they were computed for.
inline void add_batch(BitsPerByteTotal& total, std::span<const float> losses,
                      std::span<const std::int32_t> targets, std::span<const std::int32_t> token_bytes) {
  for (std::size_t i = 0; i < targets.size(); ++i) {
    if (targets[i] < 0) continue;
    const std::int32_t nb = token_bytes[static_cast<std::size_t>(targets[i])];
    if (nb > 0) total.nats += losses[i];
    total.bytes += nb;
  }
}

// Runs `steps` batches from next(inputs, targets) through the model (no gradients).
template <Config C, Backend B, class NextBatch>
BitsPerByteTotal evaluate_bits_per_byte(B& backend, Gpt<C, B>& model, NextBatch&& next, std::int64_t steps,
                                        std::span<const std::int32_t> token_bytes) {
  const auto& acts = model.activations();
  Tensor<std::int32_t, B> ids(backend, {acts.batch(), acts.seq()}), tgt(backend, {acts.batch(), acts.seq()});
  std::vector<std::int32_t> inputs, targets;
  BitsPerByteTotal total;
  for (std::int64_t s = 0; s < steps; ++s) {
    next(inputs, targets);
    copy_from_host(backend, ids.view(), std::span<const std::int32_t>(inputs));
    copy_from_host(backend, tgt.view(), std::span<const std::int32_t>(targets));
    model.forward_loss(ids.view(), tgt.view(), LossReduction::sum);
    const std::vector<float> losses = to_host(backend, acts.losses);
    add_batch(total, losses, targets, token_bytes);
  }
  return total;
}

}  // namespace nanochat
