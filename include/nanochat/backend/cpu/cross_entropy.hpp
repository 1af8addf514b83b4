#pragma once
// nanochat's output layer loss on the Cpu backend: logits are soft-capped, s = c tanh(z / c),
// then cross-entropy against targets, where a target of -1 (ignore_index) is ignored. The
// forward caps the logits in place (inference reads them) and keeps each row's log-sum-exp; the
// backward then turns the logits, in place, into the gradient with respect to the raw logits z
// with a single exp per element, for a uniform scale of the losses or a weight per token.

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/core/loss.hpp"
#include "nanochat/core/simd_math.hpp"

namespace nanochat::cpu {

namespace detail {
// Every target names a column of logits [n, vocab] or is the ignore index.
inline void check_targets(CpuView<const std::int32_t> targets, std::int64_t vocab, const char* op) {
  const std::int32_t* tgt = targets.data();
  for (std::int64_t i = 0; i < targets.numel(); ++i) {
    NANOCHAT_CHECK(tgt[i] == ignore_index || (tgt[i] >= 0 && tgt[i] < vocab), op, ": target ", tgt[i],
                   " at position ", i, " is outside the vocabulary of ", vocab, " (and is not the ignore index -1)");
  }
}

inline void check_rows(CpuView<const float> logits, std::int64_t rows, const char* op) {
  NANOCHAT_CHECK(logits.rank() == 2 && logits.is_contiguous() && logits.size(0) == rows, op,
                 ": logits must be a contiguous [", rows, ", V] tensor, got shape ", logits.shape());
}
}  // namespace detail

// Soft-caps logits [N, V] in place.
inline void softcap_forward(Cpu&, CpuView<float> logits, float cap) {
  NANOCHAT_CHECK(logits.is_contiguous(), "softcap_forward: logits must be contiguous, got shape ", logits.shape());
  const std::int64_t n = logits.numel();
  float* z = logits.data();
  const float inv_cap = 1.0f / cap;
  constexpr std::int64_t chunk = 4096;  // floats per task: long vector runs, even thread shares
#pragma omp parallel for schedule(static)
  for (std::int64_t start = 0; start < n; start += chunk) {
    map_vec(z + start, std::min(chunk, n - start), [&](FloatVec v) { return cap * simd_tanh(v * inv_cap); });
  }
}

// losses[i] = lse_i - s_i[target_i] (0 where ignored) with lse_i = log sum_j exp(s_ij), kept in
// `lse` for the backward; from soft-capped logits s.
inline LossTotal cross_entropy_forward(Cpu&, CpuView<float> losses, CpuView<float> lse,
                                       CpuView<const float> logits,
                                       CpuView<const std::int32_t> targets) {
  const std::int64_t n = targets.numel(), vocab = logits.size(-1);
  detail::check_rows(logits, n, "cross_entropy_forward");
  NANOCHAT_CHECK(losses.numel() == n && lse.numel() == n, "cross_entropy_forward: ", n,
                 " targets but losses ", losses.shape(), " and lse ", lse.shape());
  detail::check_targets(targets, vocab, "cross_entropy_forward");
  const std::int32_t* tgt = targets.data();
  double sum = 0.0;
  std::int64_t tokens = 0;
#pragma omp parallel for schedule(static) reduction(+ : sum, tokens)
  for (std::int64_t i = 0; i < n; ++i) {
    const float* s = logits.data() + i * vocab;
    const float max = max_of(s, vocab);
    lse.data()[i] = max + std::log(sum_exp(s, vocab, max));
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

namespace detail {
// In place: soft-capped logits s -> d(sum_i scale_of(i) * loss_i)/dz, through the softcap's
// derivative 1 - (s / c)^2. Rows with an ignored target get zeros.
template <class ScaleOf>
void cross_entropy_backward_rows(CpuView<float> logits, CpuView<const float> lse, CpuView<const std::int32_t> targets,
                                 float cap, ScaleOf scale_of, const char* op) {
  const std::int64_t n = targets.numel(), vocab = logits.size(-1);
  check_rows(logits, n, op);
  NANOCHAT_CHECK(lse.numel() == n, op, ": ", n, " targets but lse ", lse.shape());
  check_targets(targets, vocab, op);
  const std::int32_t* tgt = targets.data();
  const float inv_cap = 1.0f / cap;
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    float* s = logits.data() + i * vocab;
    if (tgt[i] == ignore_index) {
      for (std::int64_t j = 0; j < vocab; ++j) s[j] = 0.0f;
      continue;
    }
    const float scale = scale_of(i);
    const float row_lse = lse.data()[i];
    const float at_target = s[tgt[i]];
    map_vec(s, vocab, [&](FloatVec v) {
      const FloatVec capped = v * inv_cap;
      return simd_exp(v - row_lse) * scale * (1.0f - capped * capped);
    });
    const float capped = at_target * inv_cap;
    s[tgt[i]] -= scale * (1.0f - capped * capped);
  }
}
}  // namespace detail

// In place: soft-capped logits s -> d(scale * sum of losses)/dz. Rows with an ignored target get
// zeros.
inline void cross_entropy_backward(Cpu&, CpuView<float> logits, CpuView<const float> lse,
                                   CpuView<const std::int32_t> targets, float cap, float scale) {
  detail::cross_entropy_backward_rows(logits, lse, targets, cap, [scale](std::int64_t) { return scale; },
                                      "cross_entropy_backward");
}

// The same with a weight per token: -> d(sum_i weights[i] * loss_i)/dz (RL's advantage-weighted
// log-likelihood).
inline void cross_entropy_backward(Cpu&, CpuView<float> logits, CpuView<const float> lse,
                                   CpuView<const std::int32_t> targets, float cap, CpuView<const float> weights) {
  NANOCHAT_CHECK(weights.numel() == targets.numel() && weights.is_contiguous(), "cross_entropy_backward: ",
                 targets.numel(), " targets but token weights of shape ", weights.shape());
  const float* w = weights.data();
  detail::cross_entropy_backward_rows(logits, lse, targets, cap, [w](std::int64_t i) { return w[i]; },
                                      "cross_entropy_backward");
}

}  // namespace nanochat::cpu
