#pragma once
// nanochat's optimizer setup for the GPT (spec §3.1): AdamW for lm_head (lr 0.004 s) and wte
// (lr 0.2 s), betas (0.8, 0.95), eps 1e-10, no weight decay, with s = (dim / 768)^-0.5; Muon
// (lr 0.02, Nesterov) for every block matrix. Plus global gradient-norm clipping (§3.5).
//
// Data-parallel through a communicator (dist/), a step is reduce_gradients(), then
// averaged_grad_norm() and clip() if clipping, then step(). The norm is that of the gradient
// averaged over the ranks, so every rank clips by the same factor. nanochat clipped each rank's
// own, not yet averaged gradient (spec §3.5 [BUG@f37]): its ranks scaled their gradients by
// different factors before averaging; ours is the clipping of one process with the whole batch.

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "nanochat/model/weights.hpp"
#include "nanochat/optim/adamw.hpp"
#include "nanochat/optim/muon.hpp"
#include "nanochat/optim/schedule.hpp"

namespace nanochat {

struct LearningRates {
  float unembedding = 0.004f, embedding = 0.2f, matrix = 0.02f, weight_decay = 0.0f;
};

template <Config C>
constexpr float adamw_lr_scale() {
  return static_cast<float>(1.0 / std::sqrt(static_cast<double>(C::model_dim) / 768.0));
}

template <Config C, Backend B>
class NanochatOptimizers {
 public:
  NanochatOptimizers(B& backend, const GptWeights<C, B>& weights, const GptWeights<C, B>& grads,
                     LearningRates lr = {}, dist::Communicator& comm = dist::single_process())
      : backend_(&backend), comm_(&comm),
        adamw_(backend, adamw_groups(weights, grads, lr), {.beta1 = 0.8f, .beta2 = 0.95f, .eps = 1e-10f}, comm),
        muon_(backend, muon_params(weights, grads), lr.matrix, true, comm),
        counted_once_(merged(adamw_.owned_gradients(true), muon_.owned_gradients())),
        updated_(merged(adamw_.owned_gradients(false), muon_.owned_gradients())) {}

  // Averages the gradients over the ranks onto the ranks that update them (nothing in one process).
  void reduce_gradients() {
    adamw_.reduce_gradients();
    muon_.reduce_gradients();
  }

  // The global L2 norm of the averaged gradient (grad_norm's in one process, bit for bit: the
  // owned gradients are then the one flat vector). Call after reduce_gradients().
  float averaged_grad_norm() {
    double local = 0.0;
    for (const auto& g : counted_once_) local += sum_of_squares(*backend_, TensorView<const float, B>(g));
    return norm_as_float(std::sqrt(dist::sum_over_ranks(*comm_, local)));
  }

  // Scales the averaged gradients by min(1, max_norm / (norm + 1e-6)), as clip_grads.
  void clip(float norm, float max_norm) {
    const float factor = max_norm / (norm + 1e-6f);
    if (factor < 1.0f)
      for (const auto& g : updated_) scale(*backend_, g, factor);
  }

  // One update of every parameter at iteration `it` of the schedule; every rank ends with the
  // same weights. Call after reduce_gradients().
  void step(float lr_multiplier, float muon_momentum) {
    adamw_.step(lr_multiplier);
    muon_.step(lr_multiplier, muon_momentum);
  }

  AdamW<B>& adamw() { return adamw_; }
  Muon<B>& muon() { return muon_; }
  dist::Communicator& communicator() { return *comm_; }

  // +inf for a norm past float's range (a cast of such a double to float is undefined).
  static float norm_as_float(double norm) {
    return norm > std::numeric_limits<float>::max() ? std::numeric_limits<float>::infinity() : static_cast<float>(norm);
  }

 private:
  // The views sorted by address with neighbours joined: fewer calls, and in one process the
  // whole flat gradient as one view, so norms sum in the order grad_norm's do.
  static std::vector<TensorView<float, B>> merged(std::vector<TensorView<float, B>> a,
                                                  const std::vector<TensorView<float, B>>& b) {
    a.insert(a.end(), b.begin(), b.end());
    std::sort(a.begin(), a.end(), [](const auto& x, const auto& y) { return x.data() < y.data(); });
    std::vector<TensorView<float, B>> out;
    for (const auto& v : a) {
      if (v.numel() == 0) continue;
      if (!out.empty() && out.back().data() + out.back().numel() == v.data()) {
        out.back() = TensorView<float, B>(out.back().data(), {out.back().numel() + v.numel()});
      } else {
        out.emplace_back(v.data(), Shape{v.numel()});
      }
    }
    return out;
  }

  static std::vector<typename AdamW<B>::Group> adamw_groups(const GptWeights<C, B>& w,
                                                            const GptWeights<C, B>& g, LearningRates lr) {
    const float s = adamw_lr_scale<C>();
    return {{{{"lm_head.weight", w.lm_head, g.lm_head}}, lr.unembedding * s, lr.weight_decay},
            {{{"transformer.wte.weight", w.wte, g.wte}}, lr.embedding * s, lr.weight_decay}};
  }

  static std::vector<typename Muon<B>::Param> muon_params(const GptWeights<C, B>& w, const GptWeights<C, B>& g) {
    std::vector<typename Muon<B>::Param> params;
    std::vector<TensorView<float, B>> grads;
    g.for_each([&](const std::string& name, TensorView<float, B> v) {
      if (name.starts_with("transformer.h.")) grads.push_back(v);
    });
    std::size_t i = 0;
    w.for_each([&](const std::string& name, TensorView<float, B> v) {
      if (name.starts_with("transformer.h.")) params.push_back({name, v, grads[i++]});
    });
    return params;
  }

  B* backend_;
  dist::Communicator* comm_;
  AdamW<B> adamw_;
  Muon<B> muon_;
  std::vector<TensorView<float, B>> counted_once_, updated_;  // this rank's averaged gradients, merged
};

// The global L2 norm of all gradients of one process (what clipping compares with max_norm);
// +inf when it is past float's range.
template <Config C, Backend B>
float grad_norm(B& backend, const GptWeights<C, B>& grads) {
  return NanochatOptimizers<C, B>::norm_as_float(
      std::sqrt(sum_of_squares(backend, TensorView<const float, B>(grads.flat()))));
}

// Scales all gradients by min(1, max_norm / (norm + 1e-6)), norm being grad_norm's.
template <Config C, Backend B>
void clip_grads(B& backend, const GptWeights<C, B>& grads, float norm, float max_norm) {
  const float factor = max_norm / (norm + 1e-6f);
  if (factor < 1.0f) scale(backend, grads.flat(), factor);
}

// Clips as torch.nn.utils.clip_grad_norm_ does and returns the norm before clipping.
template <Config C, Backend B>
float clip_grad_norm(B& backend, const GptWeights<C, B>& grads, float max_norm) {
  const float norm = grad_norm(backend, grads);
  clip_grads(backend, grads, norm, max_norm);
  return norm;
}

}  // namespace nanochat
