#pragma once
// Muon (spec §3.2): momentum with Nesterov, then the update is orthogonalised by five quintic
// Newton-Schulz iterations, X <- a X + (b A + c A^2) X with A = X X^T and
// (a, b, c) = (3.4445, -4.7750, 2.0315), after normalising X by its Frobenius norm; the step is
// scaled by sqrt(max(1, rows / cols)). A tall matrix is orthogonalised through its transpose,
// which here means A = X^T X and X <- a X + X (b A + c A^2): no transposed copy is made.
// On the Cpu backend the iteration runs in fp32 (nanochat runs it in bf16 on GPUs).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "nanochat/core/arena.hpp"
#include "nanochat/core/gemm_shape.hpp"

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
      const Param& p = params_[i];
      const std::int64_t rows = p.value.size(0), cols = p.value.size(1);
      const std::int64_t m = std::min(rows, cols);
      TensorView<float, B> x(x_.data(), {rows, cols}), next(next_.data(), {rows, cols});
      TensorView<float, B> a(a_.data(), {m, m}), poly(poly_.data(), {m, m});
      muon_momentum(be, x, buffers_[i], p.grad, momentum, nesterov_);
      const double norm = std::sqrt(sum_of_squares(be, x));
      scale(be, x, static_cast<float>(1.0 / (norm + 1e-7)));
      const bool tall = rows > cols;
      for (int s = 0; s < ns_steps; ++s) {
        if (tall) gemm(be, a, x, x, Transpose::yes, Transpose::no);
        else gemm(be, a, x, x, Transpose::no, Transpose::yes);
        gemm(be, poly, a, a, Transpose::no, Transpose::no, ns_c, 0.0f);
        axpby(be, poly, ns_b, a, 1.0f);
        if (tall) gemm(be, next, x, poly);
        else gemm(be, next, poly, x);
        axpby(be, next, ns_a, x, 1.0f);
        std::swap(x, next);
      }
      const float aspect = std::sqrt(std::max(1.0f, static_cast<float>(rows) / static_cast<float>(cols)));
      axpby(be, p.value, -initial_lr_ * lr_multiplier * aspect, x, 1.0f);
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
    std::int64_t total = 0, largest = 0, largest_square = 0;
    for (const Param& p : params_) {
      NANOCHAT_CHECK(p.value.rank() == 2, "Muon: parameter ", p.name, " has shape ", p.value.shape(),
                     "; Muon updates matrices only");
      total += p.value.numel();
      largest = std::max(largest, p.value.numel());
      const std::int64_t m = std::min(p.value.size(0), p.value.size(1));
      largest_square = std::max(largest_square, m * m);
    }
    momentum_buffers_ = a.template take<float>({total});
    x_ = a.template take<float>({largest});
    next_ = a.template take<float>({largest});
    a_ = a.template take<float>({largest_square});
    poly_ = a.template take<float>({largest_square});
    buffers_.clear();
    std::int64_t offset = 0;
    for (const Param& p : params_) {
      buffers_.emplace_back(momentum_buffers_.data() ? momentum_buffers_.data() + offset : nullptr,
                            p.value.shape());
      offset += p.value.numel();
    }
  }

  B* backend_;
  std::vector<Param> params_;
  float initial_lr_;
  bool nesterov_;
  TensorView<float, B> momentum_buffers_, x_, next_, a_, poly_;
  std::vector<TensorView<float, B>> buffers_;
  Arena<B> arena_;
  std::int64_t step_ = 0;
};

}  // namespace nanochat
