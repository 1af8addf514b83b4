#pragma once
// nanochat's GPT (spec §2.3), forward and hand-written backward, generated from a Config and run
// on any backend that provides the ops (found by argument-dependent lookup on the backend type):
//
//   x = rmsnorm(wte[ids])
//   per block: x += c_proj(attention(qk_norm(rotary(c_q x')), qk_norm(rotary(c_k x')), c_v x'))
//              with x' = rmsnorm(x);  x += mlp_proj(relu(c_fc rmsnorm(x))^2)
//   logits = 15 tanh(lm_head(rmsnorm(x)) / 15);  loss = cross_entropy(logits, targets), -1 ignored
//
// The Config's element type is the matmuls' compute type: with bf16 every product, forward and
// backward, of the Linear layers and of attention (scores, probabilities times values) rounds its
// operands to bf16 and sums in fp32 (nanochat's autocast on a GPU; AMX on a recent Xeon). The
// activations only Linear layers read are then stored in bf16, rounded once where they are made
// (activations.hpp), which gives the same products; weights, the other activations, the norms,
// the softmax and the loss stay fp32 either way.
//
// All memory — weights, gradients, activations, scratch — is planned at construction; a step
// allocates nothing. A step may be shorter than planned: ids [B, t] with t <= the planned
// sequence run at t positions in the same memory (activations.hpp). Gradients accumulate across
// backward calls until zero_grad().

#include <cstdint>
#include <type_traits>

#include "nanochat/core/gemm_shape.hpp"
#include "nanochat/core/loss.hpp"
#include "nanochat/model/activations.hpp"
#include "nanochat/model/init.hpp"
#include "nanochat/model/rotary_table.hpp"
#include "nanochat/model/step_profile.hpp"
#include "nanochat/model/weights.hpp"

namespace nanochat {

inline constexpr float logit_softcap = 15.0f;

template <Config C, Backend B>
class Gpt {
 public:
  using Ids = TensorView<const std::int32_t, B>;

  // Sized for batches of `batch` rows of up to `seq_len` tokens; rotary tables cover 10 x seq_len
  // positions, as nanochat's do.
  Gpt(B& backend, std::int64_t vocab_size, std::int64_t batch, std::int64_t seq_len)
      : backend_(&backend),
        weights_(backend, vocab_size),
        grads_(backend, vocab_size),
        acts_(backend, batch, seq_len, vocab_size),
        rotary_(backend, C::head_dim, 10 * seq_len) {
    NANOCHAT_CHECK(batch > 0 && seq_len > 0, "Gpt: batch and sequence length must be positive, got ",
                   batch, " and ", seq_len);
    zero_grad();
  }

  GptWeights<C, B>& weights() { return weights_; }
  const GptWeights<C, B>& grads() const { return grads_; }
  const GptActivations<C, B>& activations() const { return acts_; }
  std::int64_t vocab_size() const { return weights_.vocab_size(); }

  void init(std::uint64_t seed) { init_weights(*backend_, weights_, seed); }

  // Time every following step by layer type into *profile (nullptr stops it).
  void set_profile(StepProfile* profile) { profile_ = profile; }
  void zero_grad() {
    backend_->fill_zero(grads_.flat().data(), grads_.flat().bytes());
  }

  // Soft-capped logits [B * t, V] for ids [B, t], t at most the planned sequence length.
  TensorView<const float, B> forward(Ids ids) {
    NANOCHAT_CHECK(ids.rank() == 2 && ids.size(1) >= 1 && ids.size(1) <= acts_.seq(), "Gpt: ids has shape ",
                   ids.shape(), " but the model is planned for [", acts_.batch(), ", 1..", acts_.seq(), "]");
    acts_.set_run_seq(ids.size(1));
    check_ids(ids, "ids");
    B& be = *backend_;
    auto& a = acts_;
    timed(StepSection::embedding, [&] { embedding_forward(be, a.emb, weights_.wte, flat(ids)); });
    timed(StepSection::norms, [&] { rmsnorm_forward(be, a.resid[0], a.rstd0, a.emb); });
    for (int l = 0; l < C::depth; ++l) block_forward(l);
    timed(StepSection::norms, [&] { rmsnorm_forward(be, a.xf, a.rstd_f, a.resid[C::depth]); });
    timed(StepSection::lm_head, [&] { linear(a.logits, a.xf, weights_.lm_head, Transpose::no, Transpose::yes, 0.0f); });
    timed(StepSection::loss, [&] { softcap_forward(be, a.logits, logit_softcap); });
    return a.logits;
  }

  // Forward and the cross-entropy over targets that are not -1: their mean or their sum. The
  // per-token losses (reduction "none", 0 where ignored) are in activations().losses either way.
  float forward_loss(Ids ids, Ids targets, LossReduction reduction = LossReduction::mean) {
    forward(ids);
    check_ids(targets, "targets");
    LossTotal total{};
    timed(StepSection::loss, [&] {
      total = cross_entropy_forward(*backend_, acts_.losses, acts_.lse, acts_.logits, flat(targets));
    });
    tokens_ = total.tokens;
    reduction_ = reduction;
    if (reduction == LossReduction::sum) return static_cast<float>(total.sum);
    return tokens_ > 0 ? static_cast<float>(total.sum / static_cast<double>(tokens_)) : 0.0f;
  }

  // Adds the gradient of loss_scale * (the loss of the last forward_loss, reduced as it was) to
  // grads(); the same ids and targets must be passed. loss_scale = 1 / accumulation steps
  // averages micro-batches.
  void backward(Ids ids, Ids targets, float loss_scale = 1.0f) {
    check_ids(ids, "ids");
    check_ids(targets, "targets");
    const float per_token = reduction_ == LossReduction::sum ? loss_scale
                            : tokens_ > 0 ? loss_scale / static_cast<float>(tokens_)
                                          : 0.0f;
    timed(StepSection::loss, [&] {
      cross_entropy_backward(*backend_, acts_.logits, acts_.lse, flat(targets), logit_softcap, per_token);
    });
    backward_from_logits(ids);
  }

  // Adds the gradient of sum_i token_weights[i] * loss_i, over the per-token losses of the last
  // forward_loss (its reduction aside), to grads(): a weight per token, [batch * seq], e.g. RL's
  // advantage of the token's row over the pass's valid targets.
  void backward(Ids ids, Ids targets, TensorView<const float, B> token_weights) {
    check_ids(ids, "ids");
    check_ids(targets, "targets");
    timed(StepSection::loss, [&] {
      cross_entropy_backward(*backend_, acts_.logits, acts_.lse, flat(targets), logit_softcap, token_weights);
    });
    backward_from_logits(ids);
  }

 private:
  // From d(loss)/d(logits), in acts_.logits, down to the embedding.
  void backward_from_logits(Ids ids) {
    B& be = *backend_;
    auto& a = acts_;
    auto& g = grads_;
    timed(StepSection::lm_head, [&] {
      linear(g.lm_head, a.logits, a.xf, Transpose::yes, Transpose::no, 1.0f);
      linear(a.dxn, a.logits, weights_.lm_head, Transpose::no, Transpose::no, 0.0f);
    });
    timed(StepSection::norms, [&] { rmsnorm_backward(be, a.dx, a.dxn, a.resid[C::depth], a.rstd_f); });
    for (int l = C::depth - 1; l >= 0; --l) block_backward(l);
    timed(StepSection::norms, [&] { rmsnorm_backward(be, a.dxn, a.dx, a.emb, a.rstd0); });
    timed(StepSection::embedding, [&] { embedding_backward(be, g.wte, a.dxn, flat(ids)); });
  }

  // [B, T, heads, D] as [B * T * heads, D] rows (QK-norm) and [B * T, heads * D] (projections).
  static TensorView<float, B> rows(TensorView<float, B> x) { return x.reshape({x.numel() / C::head_dim, C::head_dim}); }
  static TensorView<float, B> tokens(TensorView<float, B> x) {
    return x.reshape({x.size(0) * x.size(1), x.size(2) * x.size(3)});
  }
  static Ids flat(Ids ids) { return ids.reshape({ids.numel()}); }

  // The shape of the step the activations are laid out for: the last forward's.
  void check_ids(const Ids& ids, const char* what) const {
    check_shape(ids.shape(), Shape{acts_.batch(), acts_.run_seq()}, cat("Gpt: ", what));
  }

  void block_forward(int l) {
    B& be = *backend_;
    auto& a = acts_;
    auto& s = a.layers[static_cast<std::size_t>(l)];
    const auto& w = weights_.blocks[static_cast<std::size_t>(l)];
    const auto x = a.resid[static_cast<std::size_t>(l)];
    auto& out = a.resid[static_cast<std::size_t>(l) + 1];

    timed(StepSection::norms, [&] { rmsnorm_forward(be, s.xn1, s.rstd1, x); });
    timed(StepSection::linears, [&] {
      linear(tokens(s.q), s.xn1, w.c_q, Transpose::no, Transpose::yes, 0.0f);
      linear(tokens(s.k), s.xn1, w.c_k, Transpose::no, Transpose::yes, 0.0f);
      linear(tokens(s.v), s.xn1, w.c_v, Transpose::no, Transpose::yes, 0.0f);
    });
    timed(StepSection::rotary, [&] {
      rotary_forward(be, s.q, rotary_.cos.view(), rotary_.sin.view());
      rotary_forward(be, s.k, rotary_.cos.view(), rotary_.sin.view());
    });
    timed(StepSection::norms, [&] {
      rmsnorm_forward(be, rows(s.qn), s.rstd_q, rows(s.q));
      rmsnorm_forward(be, rows(s.kn), s.rstd_k, rows(s.k));
    });
    timed(StepSection::attention, [&] {
      attention_forward(be, s.y.reshape(s.q.shape()), s.score_lse, s.qn, s.kn, s.v, C::attention_scale(),
                        matmul_options.compute);
    });
    timed(StepSection::linears, [&] {
      be.copy_on_device(s.mid.data(), x.data(), x.bytes());
      linear(s.mid, s.y, w.attn_proj, Transpose::no, Transpose::yes, 1.0f);
    });
    timed(StepSection::norms, [&] { rmsnorm_forward(be, s.xn2, s.rstd2, s.mid); });
    timed(StepSection::linears, [&] { linear(s.h, s.xn2, w.c_fc, Transpose::no, Transpose::yes, 0.0f); });
    timed(StepSection::activation, [&] { relu_squared_forward(be, s.a, s.h); });
    timed(StepSection::linears, [&] {
      be.copy_on_device(out.data(), s.mid.data(), s.mid.bytes());
      linear(out, s.a, w.mlp_proj, Transpose::no, Transpose::yes, 1.0f);
    });
  }

  // On entry a.dx holds d(loss)/d(block output); on exit d(loss)/d(block input).
  void block_backward(int l) {
    B& be = *backend_;
    auto& a = acts_;
    auto& s = a.layers[static_cast<std::size_t>(l)];
    const auto& w = weights_.blocks[static_cast<std::size_t>(l)];
    const auto& g = grads_.blocks[static_cast<std::size_t>(l)];
    const auto x = a.resid[static_cast<std::size_t>(l)];
    constexpr auto no = Transpose::no, yes = Transpose::yes;

    // MLP: out = mid + relu(c_fc xn2)^2 mlp_proj^T.
    timed(StepSection::linears, [&] {
      linear(g.mlp_proj, a.dx, s.a, yes, no, 1.0f);
      linear(a.dh, a.dx, w.mlp_proj, no, no, 0.0f);
    });
    timed(StepSection::activation, [&] { relu_squared_backward(be, a.dh, a.dh, s.h); });
    timed(StepSection::linears, [&] {
      linear(g.c_fc, a.dh, s.xn2, yes, no, 1.0f);
      linear(a.dxn, a.dh, w.c_fc, no, no, 0.0f);
    });
    timed(StepSection::norms, [&] { rmsnorm_backward(be, a.dx, a.dxn, s.mid, s.rstd2, true); });

    // Attention: mid = x + y attn_proj^T.
    timed(StepSection::linears, [&] {
      linear(g.attn_proj, a.dx, s.y, yes, no, 1.0f);
      linear(a.dy, a.dx, w.attn_proj, no, no, 0.0f);
    });
    timed(StepSection::attention, [&] {
      attention_backward(be, a.dq, a.dk, a.dv, a.dy.reshape(s.q.shape()), s.score_lse, s.qn, s.kn, s.v,
                         C::attention_scale(), matmul_options.compute);
    });
    timed(StepSection::norms, [&] {
      rmsnorm_backward(be, rows(a.dq), rows(a.dq), rows(s.q), s.rstd_q);
      rmsnorm_backward(be, rows(a.dk), rows(a.dk), rows(s.k), s.rstd_k);
    });
    timed(StepSection::rotary, [&] {
      rotary_backward(be, a.dq, rotary_.cos.view(), rotary_.sin.view());
      rotary_backward(be, a.dk, rotary_.cos.view(), rotary_.sin.view());
    });
    timed(StepSection::linears, [&] {
      linear(g.c_q, tokens(a.dq), s.xn1, yes, no, 1.0f);
      linear(g.c_k, tokens(a.dk), s.xn1, yes, no, 1.0f);
      linear(g.c_v, tokens(a.dv), s.xn1, yes, no, 1.0f);
      linear(a.dxn, tokens(a.dq), w.c_q, no, no, 0.0f);
      linear(a.dxn, tokens(a.dk), w.c_k, no, no, 1.0f);
      linear(a.dxn, tokens(a.dv), w.c_v, no, no, 1.0f);
    });
    timed(StepSection::norms, [&] { rmsnorm_backward(be, a.dx, a.dxn, x, s.rstd1, true); });
  }

  // Every matmul's compute type, the Config's element type.
  static constexpr GemmOptions matmul_options{
      .compute = std::is_same_v<typename C::element_type, bf16> ? GemmCompute::bf16 : GemmCompute::fp32};
  // A Linear layer's product, forward or backward: c = op(a) op(b) + beta c; an operand is a
  // float weight or gradient, or an activation of the Config's element type.
  template <class TA, class TB>
  void linear(TensorView<float, B> c, TensorView<TA, B> a, TensorView<TB, B> b, Transpose ta, Transpose tb,
              float beta) {
    gemm(*backend_, c, a, b, ta, tb, 1.0f, beta, matmul_options);
  }

  template <class F>
  void timed(StepSection section, F&& f) {
    SectionTimer timer(profile_, section);
    f();
  }

  B* backend_;
  GptWeights<C, B> weights_;
  GptWeights<C, B> grads_;
  GptActivations<C, B> acts_;
  RotaryTable<B> rotary_;
  std::int64_t tokens_ = 0;  // non-ignored targets of the last forward_loss
  LossReduction reduction_ = LossReduction::mean;
  StepProfile* profile_ = nullptr;
};

}  // namespace nanochat
