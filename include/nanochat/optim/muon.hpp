#pragma once
// Muon (spec §3.2): momentum with Nesterov, then the update is orthogonalised by five quintic
// Newton-Schulz iterations, X <- a X + (b A + c A^2) X with A = X X^T and
// (a, b, c) = (3.4445, -4.7750, 2.0315), after normalising X by its Frobenius norm; the step is
// scaled by sqrt(max(1, rows / cols)). A tall matrix is orthogonalised through its transpose.
// All matrices' updates are orthogonalised in one backend call (newton_schulz), which may work
// on several at once; on the Cpu backend the iteration runs in fp32 (nanochat runs it in bf16 on
// GPUs).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "nanochat/core/arena.hpp"
#include "nanochat/core/tensor.hpp"

namespace nanochat {

template <Backend B>
class Muon {
 public:
  static constexpr float ns_a = 3.4445f, ns_b = -4.7750f, ns_c = 2.0315f;
  static constexpr int ns_steps = 5;

  struct Param {
    std::string name;
    TensorView<float, B> value, grad;  // 2-D
  };

  Muon(B& backend, std::vector<Param> params, float initial_lr, bool nesterov = true)
      : backend_(&backend), params_(std::move(params)), initial_lr_(initial_lr), nesterov_(nesterov),
        arena_(backend, [&](Arena<B>& a) { layout(a); }) {
    backend.fill_zero(momentum_buffers_.data(), momentum_buffers_.bytes());
  }
  Muon(const Muon&) = delete;
  Muon& operator=(const Muon&) = delete;

  void step(float lr_multiplier, float momentum) {
    ++step_;
    B& be = *backend_;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      muon_momentum(be, updates_[i], buffers_[i], params_[i].grad, momentum, nesterov_);
    }
    newton_schulz(be, std::span<const TensorView<float, B>>(updates_), ns_steps, ns_a, ns_b, ns_c);
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const Param& p = params_[i];
      const float rows = static_cast<float>(p.value.size(0)), cols = static_cast<float>(p.value.size(1));
      const float aspect = std::sqrt(std::max(1.0f, rows / cols));
      axpby(be, p.value, -initial_lr_ * lr_multiplier * aspect, updates_[i], 1.0f);
    }
  }

  const std::vector<Param>& params() const { return params_; }
  float initial_lr() const { return initial_lr_; }
  std::int64_t steps() const { return step_; }
  void set_steps(std::int64_t steps) { step_ = steps; }

  std::vector<std::pair<std::string, TensorView<float, B>>> state() const {
    return {{"momentum_buffer", momentum_buffers_}};
  }

 private:
  void layout(Arena<B>& a) {
    std::int64_t total = 0;
    for (const Param& p : params_) {
      NANOCHAT_CHECK(p.value.rank() == 2, "Muon: parameter ", p.name, " has shape ", p.value.shape(),
                     "; Muon updates matrices only");
      total += p.value.numel();
    }
    momentum_buffers_ = a.template take<float>({total});
    update_storage_ = a.template take<float>({total});
    buffers_.clear();
    updates_.clear();
    std::int64_t offset = 0;
    for (const Param& p : params_) {
      auto at = [&](const TensorView<float, B>& storage) { return storage.data() ? storage.data() + offset : nullptr; };
      buffers_.emplace_back(at(momentum_buffers_), p.value.shape());
      updates_.emplace_back(at(update_storage_), p.value.shape());
      offset += p.value.numel();
    }
  }

  B* backend_;
  std::vector<Param> params_;
  float initial_lr_;
  bool nesterov_;
  TensorView<float, B> momentum_buffers_, update_storage_;  // one slice per parameter each
  std::vector<TensorView<float, B>> buffers_, updates_;
  Arena<B> arena_;
  std::int64_t step_ = 0;
};

}  // namespace nanochat
