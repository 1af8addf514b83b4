#pragma once
// nanochat's optimizer setup for the GPT (spec §3.1): AdamW for lm_head (lr 0.004 s) and wte
// (lr 0.2 s), betas (0.8, 0.95), eps 1e-10, no weight decay, with s = (dim / 768)^-0.5; Muon
// (lr 0.02, Nesterov) for every block matrix. Plus global gradient-norm clipping (§3.5).

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
                     LearningRates lr = {})
      : adamw_(backend, adamw_groups(weights, grads, lr),
               {.beta1 = 0.8f, .beta2 = 0.95f, .eps = 1e-10f}),
        muon_(backend, muon_params(weights, grads), lr.matrix) {}

  // One update of every parameter at iteration `it` of the schedule.
  void step(float lr_multiplier, float muon_momentum) {
    adamw_.step(lr_multiplier);
    muon_.step(lr_multiplier, muon_momentum);
  }

  AdamW<B>& adamw() { return adamw_; }
  Muon<B>& muon() { return muon_; }

 private:
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

  AdamW<B> adamw_;
  Muon<B> muon_;
};

// The global L2 norm of all gradients (what clipping compares with max_norm); +inf when it is
// past float's range (a cast of such a double to float is undefined).
template <Config C, Backend B>
float grad_norm(B& backend, const GptWeights<C, B>& grads) {
  const double norm = std::sqrt(sum_of_squares(backend, TensorView<const float, B>(grads.flat())));
  return norm > std::numeric_limits<float>::max() ? std::numeric_limits<float>::infinity() : static_cast<float>(norm);
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
