#pragma once
// nanochat's output layer loss on the Cpu backend: logits are soft-capped, s = c tanh(z / c),
// then cross-entropy against targets, where a target of -1 (ignore_index) is ignored. The
// forward caps the logits in place (inference reads them) and keeps each row's log-sum-exp; the
// backward then turns the logits, in place, into the gradient with respect to the raw logits z
// with a single exp per element.

#include <cmath>
#include <cstdint>

#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/core/loss.hpp"
#include "nanochat/core/simd_math.hpp"

namespace nanochat::cpu {

// Soft-caps logits [N, V] in place.
inline void softcap_forward(Cpu&, CpuView<float> logits, float cap) {
  const std::int64_t n = logits.numel();
  float* z = logits.data();
  const float inv_cap = 1.0f / cap;
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) z[i] = cap * simd_tanh(z[i] * inv_cap);
}

// losses[i] = lse_i - s_i[target_i] (0 where ignored) with lse_i = log sum_j exp(s_ij), kept in
// `lse` for the backward; from soft-capped logits s.
inline LossTotal cross_entropy_forward(Cpu&, CpuView<float> losses, CpuView<float> lse,
                                       CpuView<const float> logits,
                                       CpuView<const std::int32_t> targets) {
  const std::int64_t n = logits.size(0), vocab = logits.size(1);
  NANOCHAT_CHECK(targets.numel() == n && losses.numel() == n && lse.numel() == n,
                 "cross_entropy_forward: ", n, " rows of logits but targets ", targets.shape(),
                 ", losses ", losses.shape(), " and lse ", lse.shape());
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
    const float* s = logits.data() + i * vocab;
    float max = s[0];
#pragma omp simd reduction(max : max)
    for (std::int64_t j = 0; j < vocab; ++j) max = s[j] > max ? s[j] : max;
    float total = 0.0f;
#pragma omp simd reduction(+ : total)
    for (std::int64_t j = 0; j < vocab; ++j) total += simd_exp(s[j] - max);
    lse.data()[i] = max + std::log(total);
    if (tgt[i] == ignore_index) {
      losses.data()[i] = 0.0f;
      continue;
    }
    const float loss = lse.data()[i] - s[tgt[i]];
    losses.data()[i] = loss;
    sum += loss;
    tokens += 1;
  }
  return {sum, tokens};
}

// In place: soft-capped logits s -> d(scale * sum of losses)/dz, through the softcap's
// derivative 1 - (s / c)^2. Rows with an ignored target get zeros.
inline void cross_entropy_backward(Cpu&, CpuView<float> logits, CpuView<const float> lse,
                                   CpuView<const std::int32_t> targets, float cap, float scale) {
  const std::int64_t n = logits.size(0), vocab = logits.size(1);
  const std::int32_t* tgt = targets.data();
  const float inv_cap = 1.0f / cap;
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    float* s = logits.data() + i * vocab;
    if (tgt[i] == ignore_index) {
      for (std::int64_t j = 0; j < vocab; ++j) s[j] = 0.0f;
      continue;
    }
    const float row_lse = lse.data()[i];
    const float at_target = s[tgt[i]];
#pragma omp simd
    for (std::int64_t j = 0; j < vocab; ++j) {
      const float capped = s[j] * inv_cap;
      s[j] = simd_exp(s[j] - row_lse) * scale * (1.0f - capped * capped);
    }
    const float capped = at_target * inv_cap;
    s[tgt[i]] -= scale * (1.0f - capped * capped);
  }
}

}  // namespace nanochat::cpu
