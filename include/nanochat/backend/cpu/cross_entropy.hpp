#pragma once
// nanochat's output layer loss on the Cpu backend: logits are soft-capped, s = c tanh(z / c),
// then cross-entropy against targets, where a target of -1 is ignored. The forward caps the
// logits in place (inference reads them); the backward turns them, in place, into the gradient
// with respect to the raw logits z.

#include <cmath>
#include <cstdint>

#include "nanochat/backend/cpu/cpu.hpp"

namespace nanochat::cpu {

inline constexpr std::int32_t ignore_index = -1;

// Soft-caps logits [N, V] in place.
inline void softcap_forward(Cpu&, CpuView<float> logits, float cap) {
  const std::int64_t n = logits.numel();
  float* z = logits.data();
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) z[i] = cap * std::tanh(z[i] / cap);
}

struct LossTotal {
  double sum;           // of per-token losses over non-ignored targets
  std::int64_t tokens;  // non-ignored targets
};

// losses[i] = logsumexp(s_i) - s_i[target_i] (0 where ignored), from soft-capped logits s.
inline LossTotal cross_entropy_forward(Cpu&, CpuView<float> losses, CpuView<const float> logits,
                                       CpuView<const std::int32_t> targets) {
  const std::int64_t n = logits.size(0), vocab = logits.size(1);
  NANOCHAT_CHECK(targets.numel() == n && losses.numel() == n, "cross_entropy_forward: ", n,
                 " rows of logits but targets ", targets.shape(), " and losses ", losses.shape());
  const std::int32_t* tgt = targets.data();
  for (std::int64_t i = 0; i < n; ++i) {
    NANOCHAT_CHECK(tgt[i] == ignore_index || (tgt[i] >= 0 && tgt[i] < vocab),
                   "cross_entropy_forward: target ", tgt[i], " at position ", i,
                   " is outside the vocabulary of ", vocab, " (and is not the ignore index -1)");
  }
  double sum = 0.0;
  std::int64_t tokens = 0;
#pragma omp parallel for schedule(static) reduction(+ : sum, tokens)
  for (std::int64_t i = 0; i < n; ++i) {
    if (tgt[i] == ignore_index) {
      losses.data()[i] = 0.0f;
      continue;
    }
    const float* s = logits.data() + i * vocab;
    float max = s[0];
    for (std::int64_t j = 1; j < vocab; ++j) max = std::fmax(max, s[j]);
    double total = 0.0;
    for (std::int64_t j = 0; j < vocab; ++j) total += std::exp(static_cast<double>(s[j] - max));
    const float loss = static_cast<float>(std::log(total) + max - s[tgt[i]]);
    losses.data()[i] = loss;
    sum += loss;
    tokens += 1;
  }
  return {sum, tokens};
}

// In place: soft-capped logits s -> d(scale * sum of losses)/dz, through the softcap's
// derivative 1 - (s / c)^2. Rows with an ignored target get zeros.
inline void cross_entropy_backward(Cpu&, CpuView<float> logits, CpuView<const std::int32_t> targets,
                                   float cap, float scale) {
  const std::int64_t n = logits.size(0), vocab = logits.size(1);
  const std::int32_t* tgt = targets.data();
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    float* s = logits.data() + i * vocab;
    if (tgt[i] == ignore_index) {
      for (std::int64_t j = 0; j < vocab; ++j) s[j] = 0.0f;
      continue;
    }
    float max = s[0];
    for (std::int64_t j = 1; j < vocab; ++j) max = std::fmax(max, s[j]);
    double total = 0.0;
    for (std::int64_t j = 0; j < vocab; ++j) total += std::exp(static_cast<double>(s[j] - max));
    const float inv_total = static_cast<float>(1.0 / total);
    for (std::int64_t j = 0; j < vocab; ++j) {
      const float softmax = std::exp(s[j] - max) * inv_total;
      const float g = (softmax - (j == tgt[i] ? 1.0f : 0.0f)) * scale;
      const float capped = s[j] / cap;
      s[j] = g * (1.0f - capped * capped);
    }
  }
}

}  // namespace nanochat::cpu
