#pragma once
// Every buffer one forward + backward step of the GPT touches, planned once from the Config,
// batch, sequence length and vocabulary in a single arena. The forward keeps what the backward
// needs per layer; the backward's scratch is shared by all layers (one layer at a time).
//
// A step may run at a shorter sequence than planned (chat_sft pads each batch only to its
// longest row): set_run_seq(t) lays the same buffers out for t positions inside the planned
// memory, so the views are [B * t, .] and the ops, which take their sizes from the views, do
// t positions' work. Every buffer shrinks with t, so any t <= seq() fits; nothing is allocated.
//
// The tensors that only Linear layers read — the normalised inputs of the attention projections,
// the MLP and lm_head, and relu(h)^2 — are stored in the Config's element type: a bf16 Config's
// matmuls round their operands to bf16 anyway, so their producers round once and the products are
// the same, at half the bytes (autocast keeps these in bf16 too). Everything an fp32 op reads (the
// residual stream, h, q/k/v, the statistics, the logits) stays fp32. The attention output y, which
// only attn_proj reads, is fp32 still: the attention op writes fp32.

#include <array>
#include <cstdint>

#include "nanochat/core/arena.hpp"
#include "nanochat/core/config.hpp"
#include "nanochat/core/error.hpp"

namespace nanochat {

template <Config C, Backend B>
struct GptActivations {
  using View = TensorView<float, B>;
  using LinearInput = TensorView<typename C::element_type, B>;  // read only by Linear layers

  // Saved by the forward for the backward, per block. q, k, v are [B, T, heads, D] views of the
  // projections' [N, heads * D] outputs (N = B * T).
  struct Layer {
    LinearInput xn1;          // pre-attention norm
    View rstd1;
    View q, k, v;             // projections; q and k after rotary
    View rstd_q, rstd_k;      // QK-norm, one per (token, head)
    View qn, kn;              // normalised q and k, the attention's inputs
    View score_lse;           // [B, H, T] log-sum-exp of each attention row's scores
    View y;                   // [N, C] attention output before c_proj
    View mid;                 // residual stream after attention
    LinearInput xn2;          // pre-MLP norm
    View rstd2;
    View h;                   // [N, 4C] c_fc output
    LinearInput a;            // relu(h)^2
  };

  GptActivations(B& backend, std::int64_t batch, std::int64_t seq, std::int64_t vocab)
      : batch_(batch), seq_(seq), run_seq_(seq), vocab_(vocab), arena_(backend, [&](Arena<B>& a) { layout(a); }) {}
  GptActivations(const GptActivations&) = delete;
  GptActivations& operator=(const GptActivations&) = delete;

  std::int64_t batch() const { return batch_; }
  // The planned sequence length, the longest a step can run.
  std::int64_t seq() const { return seq_; }
  // The sequence length the views are laid out for now (the last step's).
  std::int64_t run_seq() const { return run_seq_; }
  std::int64_t tokens() const { return batch_ * run_seq_; }
  std::size_t bytes() const { return arena_.bytes(); }

  // Lays the views out for steps of t positions, 1 <= t <= seq().
  void set_run_seq(std::int64_t t) {
    NANOCHAT_CHECK(t >= 1 && t <= seq_, "GptActivations: a step of ", t, " positions; the model is planned for 1 to ",
                   seq_);
    if (t == run_seq_) return;
    run_seq_ = t;
    arena_.relayout([&](Arena<B>& a) { layout(a); });
  }

  View emb, rstd0;                            // wte rows, and their norm
  std::array<View, C::depth + 1> resid;       // resid[l] enters block l; resid[depth] leaves
  std::array<Layer, C::depth> layers;
  LinearInput xf;                             // final norm
  View rstd_f;
  View logits;                                // [N, V]: soft-capped; the backward's dlogits
  View losses, lse;                           // [N]: per-token loss, log-sum-exp of each row
  // Backward scratch.
  View dx, dxn, dy;                           // [N, C]
  View dq, dk, dv;                            // like q, k, v
  View dh;                                    // [N, 4C]

 private:
  void layout(Arena<B>& a) {
    const std::int64_t n = tokens(), c = C::model_dim, d = C::head_dim;
    auto take = [&](Shape s) { return a.template take<float>(s); };
    auto take_linear_input = [&](Shape s) { return a.template take<typename C::element_type>(s); };
    const Shape q4{batch_, run_seq_, C::n_head, d}, kv4{batch_, run_seq_, C::n_kv_head, d};
    emb = take({n, c});
    rstd0 = take({n});
    for (View& r : resid) r = take({n, c});
    for (Layer& l : layers) {
      l.xn1 = take_linear_input({n, c});
      l.rstd1 = take({n});
      l.q = take(q4);
      l.k = take(kv4);
      l.v = take(kv4);
      l.rstd_q = take({n * C::n_head});
      l.rstd_k = take({n * C::n_kv_head});
      l.qn = take(q4);
      l.kn = take(kv4);
      l.score_lse = take({batch_, C::n_head, run_seq_});
      l.y = take({n, c});
      l.mid = take({n, c});
      l.xn2 = take_linear_input({n, c});
      l.rstd2 = take({n});
      l.h = take({n, C::mlp_dim});
      l.a = take_linear_input({n, C::mlp_dim});
    }
    xf = take_linear_input({n, c});
    rstd_f = take({n});
    logits = take({n, vocab_});
    losses = take({n});
    lse = take({n});
    dx = take({n, c});
    dxn = take({n, c});
    dy = take({n, c});
    dq = take(q4);
    dk = take(kv4);
    dv = take(kv4);
    dh = take({n, C::mlp_dim});
  }

  std::int64_t batch_, seq_, run_seq_, vocab_;
  Arena<B> arena_;
};

}  // namespace nanochat
