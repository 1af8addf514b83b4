#pragma once
// AdamW as PyTorch computes it, over groups of parameters with their own learning rates. The
// moments live in one planned allocation; step() allocates nothing.

#include <cstdint>
#include <string>
#include <vector>

#include "nanochat/core/arena.hpp"

namespace nanochat {

template <Backend B>
class AdamW {
 public:
  struct Param {
    std::string name;
    TensorView<float, B> value, grad;
  };
  struct Group {
    std::vector<Param> params;
    float initial_lr;
    float weight_decay = 0.0f;
  };
  struct Hyper {
    float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  };

  AdamW(B& backend, std::vector<Group> groups, Hyper hyper)
      : backend_(&backend), groups_(std::move(groups)), hyper_(hyper),
        arena_(backend, [&](Arena<B>& a) { layout(a); }) {
    backend.fill_zero(exp_avg_.data(), exp_avg_.bytes());
    backend.fill_zero(exp_avg_sq_.data(), exp_avg_sq_.bytes());
  }
  AdamW(const AdamW&) = delete;
  AdamW& operator=(const AdamW&) = delete;

  // One update of every parameter with lr = initial_lr * lr_multiplier.
  void step(float lr_multiplier) {
    ++step_;
    std::size_t k = 0;
    for (const Group& g : groups_) {
      const float lr = g.initial_lr * lr_multiplier;
      for (const Param& p : g.params) {
        adamw_update(*backend_, p.value, p.grad, moments_[k].first, moments_[k].second, lr,
                     hyper_.beta1, hyper_.beta2, hyper_.eps, g.weight_decay, step_);
        ++k;
      }
    }
  }

  const std::vector<Group>& groups() const { return groups_; }
  std::int64_t steps() const { return step_; }
  void set_steps(std::int64_t steps) { step_ = steps; }

  // The optimizer's state as named flat tensors (checkpoints save and restore these).
  std::vector<std::pair<std::string, TensorView<float, B>>> state() const {
    return {{"exp_avg", exp_avg_}, {"exp_avg_sq", exp_avg_sq_}};
  }

 private:
  void layout(Arena<B>& a) {
    std::int64_t total = 0;
    for (const Group& g : groups_)
      for (const Param& p : g.params) total += p.value.numel();
    exp_avg_ = a.template take<float>({total});
    exp_avg_sq_ = a.template take<float>({total});
    moments_.clear();
    std::int64_t offset = 0;
    for (const Group& g : groups_)
      for (const Param& p : g.params) {
        auto piece = [&](TensorView<float, B> flat) {
          return TensorView<float, B>(flat.data() ? flat.data() + offset : nullptr, p.value.shape());
        };
        moments_.emplace_back(piece(exp_avg_), piece(exp_avg_sq_));
        offset += p.value.numel();
      }
  }

  B* backend_;
  std::vector<Group> groups_;
  Hyper hyper_;
  TensorView<float, B> exp_avg_, exp_avg_sq_;
  std::vector<std::pair<TensorView<float, B>, TensorView<float, B>>> moments_;
  Arena<B> arena_;
  std::int64_t step_ = 0;
};

}  // namespace nanochat
