#pragma once
// Muon (spec §3.2): momentum with Nesterov, then the update is orthogonalised by five quintic
// Newton-Schulz iterations, X <- a X + (b A + c A^2) X with A = X X^T and
// (a, b, c) = (3.4445, -4.7750, 2.0315), after normalising X by its Frobenius norm; the step is
// scaled by sqrt(max(1, rows / cols)). A tall matrix is orthogonalised through its transpose.
// All matrices' updates are orthogonalised in one backend call (newton_schulz), which may work
// on several at once; on the Cpu backend the iteration runs in fp32 (nanochat runs it in bf16 on
// GPUs).
//
// Data-parallel as nanochat's DistMuon (spec §3.3): each matrix is owned whole by one rank,
// assigned block-cyclically within its shape (the matrices of one shape, in order, go to ranks
// 0, 1, ..., W-1, 0, ...). Its gradient is averaged onto the owner, which alone keeps its
// momentum buffer and orthogonalises its update, then broadcasts the new value. In one process
// the one rank owns everything and the update is the unsharded one, call for call.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "nanochat/core/arena.hpp"
#include "nanochat/core/tensor.hpp"
#include "nanochat/dist/single_process_communicator.hpp"

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

  Muon(B& backend, std::vector<Param> params, float initial_lr, bool nesterov = true,
       dist::Communicator& comm = dist::single_process())
      : backend_(&backend), comm_(&comm), params_(std::move(params)), owners_(block_cyclic_owners(params_, comm.size())),
        initial_lr_(initial_lr), nesterov_(nesterov), arena_(backend, [&](Arena<B>& a) { layout(a); }) {
    backend.fill_zero(momentum_buffers_.data(), momentum_buffers_.bytes());
  }
  Muon(const Muon&) = delete;
  Muon& operator=(const Muon&) = delete;

  // Averages every matrix's gradient onto its owner.
  void reduce_gradients() {
    for (std::size_t i = 0; i < params_.size(); ++i) comm_->reduce(span(params_[i].grad), dist::ReduceOp::average, owners_[i]);
  }

  // The averaged gradients of the matrices this rank owns (clipping scales them; the global
  // norm sums them over the ranks).
  std::vector<TensorView<float, B>> owned_gradients() const {
    std::vector<TensorView<float, B>> out;
    for (std::size_t i : owned_) out.push_back(params_[i].grad);
    return out;
  }

  // Updates the owned matrices, then every owner broadcasts its new values. Call after
  // reduce_gradients().
  void step(float lr_multiplier, float momentum) {
    ++step_;
    B& be = *backend_;
    for (std::size_t k = 0; k < owned_.size(); ++k) {
      muon_momentum(be, updates_[k], buffers_[k], params_[owned_[k]].grad, momentum, nesterov_);
    }
    newton_schulz(be, std::span<const TensorView<float, B>>(updates_), ns_steps, ns_a, ns_b, ns_c);
    for (std::size_t k = 0; k < owned_.size(); ++k) {
      const Param& p = params_[owned_[k]];
      const float rows = static_cast<float>(p.value.size(0)), cols = static_cast<float>(p.value.size(1));
      const float aspect = std::sqrt(std::max(1.0f, rows / cols));
      axpby(be, p.value, -initial_lr_ * lr_multiplier * aspect, updates_[k], 1.0f);
    }
    for (std::size_t i = 0; i < params_.size(); ++i) comm_->broadcast(span(params_[i].value), owners_[i]);
  }

  // Which rank owns each parameter.
  const std::vector<int>& owners() const { return owners_; }

  const std::vector<Param>& params() const { return params_; }
  float initial_lr() const { return initial_lr_; }
  std::int64_t steps() const { return step_; }
  void set_steps(std::int64_t steps) { step_ = steps; }

  // This rank's momentum buffers (those of the matrices it owns, in order).
  std::vector<std::pair<std::string, TensorView<float, B>>> state() const {
    return {{"momentum_buffer", momentum_buffers_}};
  }

 private:
  static std::span<float> span(const TensorView<float, B>& v) {
    return {v.data(), static_cast<std::size_t>(v.numel())};
  }

  // nanochat's DistMuon assignment: within each shape, the i-th matrix goes to rank i mod W.
  static std::vector<int> block_cyclic_owners(const std::vector<Param>& params, int world) {
    std::vector<int> owners(params.size());
    std::vector<std::pair<Shape, int>> seen;  // shape, matrices of it so far
    for (std::size_t i = 0; i < params.size(); ++i) {
      auto it = std::find_if(seen.begin(), seen.end(), [&](const auto& s) { return s.first == params[i].value.shape(); });
      if (it == seen.end()) it = seen.insert(seen.end(), {params[i].value.shape(), 0});
      owners[i] = it->second++ % world;
    }
    return owners;
  }

  void layout(Arena<B>& a) {
    std::int64_t total = 0;
    owned_.clear();
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const Param& p = params_[i];
      NANOCHAT_CHECK(p.value.rank() == 2, "Muon: parameter ", p.name, " has shape ", p.value.shape(),
                     "; Muon updates matrices only");
      if (owners_[i] != comm_->rank()) continue;
      owned_.push_back(i);
      total += p.value.numel();
    }
    momentum_buffers_ = a.template take<float>({total});
    update_storage_ = a.template take<float>({total});
    buffers_.clear();
    updates_.clear();
    std::int64_t offset = 0;
    for (std::size_t i : owned_) {
      const Param& p = params_[i];
      auto at = [&](const TensorView<float, B>& storage) { return storage.data() ? storage.data() + offset : nullptr; };
      buffers_.emplace_back(at(momentum_buffers_), p.value.shape());
      updates_.emplace_back(at(update_storage_), p.value.shape());
      offset += p.value.numel();
    }
  }

  B* backend_;
  dist::Communicator* comm_;
  std::vector<Param> params_;
  std::vector<int> owners_;
  std::vector<std::size_t> owned_;  // indices of the matrices this rank owns
  float initial_lr_;
  bool nesterov_;
  TensorView<float, B> momentum_buffers_, update_storage_;  // one slice per owned matrix each
  std::vector<TensorView<float, B>> buffers_, updates_;
  Arena<B> arena_;
  std::int64_t step_ = 0;
};

}  // namespace nanochat
