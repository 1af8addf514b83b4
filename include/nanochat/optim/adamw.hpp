#pragma once
// AdamW as PyTorch computes it, over groups of parameters with their own learning rates,
// data-parallel as nanochat's DistAdamW (spec §3.4, ZeRO-2): a large parameter whose rows split
// evenly over the ranks has its gradient reduce-scattered (averaged) by rows; each rank updates
// its slice of rows and keeps moments for that slice only, then the slices are all-gathered. A
// small parameter (under 1024 elements, as nanochat's later MuonAdamW) or one whose rows do not
// split is all-reduced and updated whole on every rank, with whole moments. In one process
// every parameter is its own single slice, so the update is the unsharded one, call for call.
// The moments live in one planned allocation; step() allocates nothing.

#include <cstdint>
#include <string>
#include <vector>

#include "nanochat/core/arena.hpp"
#include "nanochat/dist/single_process_communicator.hpp"

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
  static constexpr std::int64_t min_sharded_numel = 1024;

  AdamW(B& backend, std::vector<Group> groups, Hyper hyper, dist::Communicator& comm = dist::single_process())
      : backend_(&backend), comm_(&comm), groups_(std::move(groups)), hyper_(hyper),
        arena_(backend, [&](Arena<B>& a) { layout(a); }) {
    backend.fill_zero(exp_avg_.data(), exp_avg_.bytes());
    backend.fill_zero(exp_avg_sq_.data(), exp_avg_sq_.bytes());
  }
  AdamW(const AdamW&) = delete;
  AdamW& operator=(const AdamW&) = delete;

  // Averages the gradients over the ranks: each rank ends with the average of what it updates
  // (its slice of a sharded parameter, all of a replicated one).
  void reduce_gradients() {
    for (const Shard& s : shards_) {
      if (s.sharded) comm_->reduce_scatter(span(s.param->grad), dist::ReduceOp::average);
      else comm_->all_reduce(span(s.param->grad), dist::ReduceOp::average);
    }
  }

  // The averaged gradient this rank updates: for clipping (every rank scales what it updates)
  // or, with counted_once, for the global norm (a replicated parameter counts on rank 0 only).
  std::vector<TensorView<float, B>> owned_gradients(bool counted_once) const {
    std::vector<TensorView<float, B>> out;
    for (const Shard& s : shards_) {
      if (counted_once && !s.sharded && comm_->rank() != 0) continue;
      out.push_back(s.grad);
    }
    return out;
  }

  // One update of this rank's part of every parameter with lr = initial_lr * lr_multiplier,
  // then every rank gathers the others' slices. Call after reduce_gradients().
  void step(float lr_multiplier) {
    ++step_;
    std::size_t k = 0;
    for (const Group& g : groups_) {
      const float lr = g.initial_lr * lr_multiplier;
      for (std::size_t i = 0; i < g.params.size(); ++i, ++k) {
        const Shard& s = shards_[k];
        adamw_update(*backend_, s.value, s.grad, s.exp_avg, s.exp_avg_sq, lr, hyper_.beta1, hyper_.beta2, hyper_.eps,
                     g.weight_decay, step_);
      }
    }
    for (const Shard& s : shards_) {
      if (s.sharded) comm_->all_gather(span(s.param->value));
    }
  }

  const std::vector<Group>& groups() const { return groups_; }
  std::int64_t steps() const { return step_; }
  void set_steps(std::int64_t steps) { step_ = steps; }

  // This rank's optimizer state as named flat tensors (each rank's checkpoint file holds its own).
  std::vector<std::pair<std::string, TensorView<float, B>>> state() const {
    return {{"exp_avg", exp_avg_}, {"exp_avg_sq", exp_avg_sq_}};
  }

 private:
  // What this rank updates of one parameter: a slice of its rows (sharded) or all of it.
  struct Shard {
    const Param* param;
    bool sharded;
    TensorView<float, B> value, grad, exp_avg, exp_avg_sq;
  };

  static std::span<float> span(const TensorView<float, B>& v) {
    return {v.data(), static_cast<std::size_t>(v.numel())};
  }

  void layout(Arena<B>& a) {
    const std::int64_t world = comm_->size(), rank = comm_->rank();
    struct Plan {
      bool sharded;
      std::int64_t first_row, rows, row_numel;
    };
    std::vector<Plan> plans;
    std::int64_t total = 0;
    for (const Group& g : groups_)
      for (const Param& p : g.params) {
        const std::int64_t rows = p.value.rank() > 0 ? p.value.size(0) : 1;
        const bool sharded = rows % world == 0 && (world == 1 || p.value.numel() >= min_sharded_numel);
        const std::int64_t mine = sharded ? rows / world : rows;
        plans.push_back({sharded, sharded ? mine * rank : 0, mine, p.value.numel() / rows});
        total += mine * plans.back().row_numel;
      }
    exp_avg_ = a.template take<float>({total});
    exp_avg_sq_ = a.template take<float>({total});
    shards_.clear();
    std::int64_t offset = 0;
    std::size_t k = 0;
    for (const Group& g : groups_)
      for (const Param& p : g.params) {
        const Plan& plan = plans[k++];
        Shape shape = p.value.shape();
        if (shape.rank() > 0) shape[0] = plan.rows;
        auto rows_of = [&](const TensorView<float, B>& v) {
          return TensorView<float, B>(v.data() ? v.data() + plan.first_row * plan.row_numel : nullptr, shape);
        };
        auto piece = [&](const TensorView<float, B>& flat) {
          return TensorView<float, B>(flat.data() ? flat.data() + offset : nullptr, shape);
        };
        shards_.push_back({&p, plan.sharded, rows_of(p.value), rows_of(p.grad), piece(exp_avg_), piece(exp_avg_sq_)});
        offset += plan.rows * plan.row_numel;
      }
  }

  B* backend_;
  dist::Communicator* comm_;
  std::vector<Group> groups_;
  Hyper hyper_;
  TensorView<float, B> exp_avg_, exp_avg_sq_;
  std::vector<Shard> shards_;
  Arena<B> arena_;
  std::int64_t step_ = 0;
};

}  // namespace nanochat
