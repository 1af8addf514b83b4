#pragma once
// The GPT for continuous batching: GptDecoder's cached forward (spec §2.3-2.4, §7.1) over a pool
// of KV-cache slots, each holding one sequence at its own position. One step takes, for any
// subset of slots, each slot's new tokens (a prefill chunk, or the one token being decoded), runs
// them as one batch of tokens through the same ops, each token rotated at and attending up to its
// own slot's position, and returns each slot's last-token logits. A request leaves by freeing its
// slot, another takes it at the next step; a slot can start from another slot's cached prefix.
// Memory is planned: the pool (slots x max positions), the rotary table, one step's activations
// (step_tokens tokens) and the Linear weights packed for steps of many rows (packed_linears.hpp:
// a step of 32 decoding slots would otherwise pack every weight matrix again) are allocated at
// construction, nothing in a step. The weights must not change while the decoder lives.
// W, KV: the weights' and the cache's element types, as GptDecoder's.

#include <algorithm>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "nanochat/core/arena.hpp"
#include "nanochat/core/bf16.hpp"
#include "nanochat/model/kv_slot_pool.hpp"
#include "nanochat/model/packed_linears.hpp"
#include "nanochat/model/rotary_table.hpp"
#include "nanochat/model/weights.hpp"

namespace nanochat {

// One slot's share of a step: its new tokens, appended at its cached length.
struct SlotTokens {
  std::int64_t slot = 0;
  std::span<const std::int32_t> tokens;
};

template <Config C, Backend B, class W = float, class KV = W>
class SlotDecoder {
  static_assert(std::is_same_v<typename C::element_type, float>, "SlotDecoder computes in float");
  static_assert(std::is_same_v<KV, float> || std::is_same_v<KV, bf16>, "the KV cache holds float or bf16");

 public:
  using View = TensorView<float, B>;
  static constexpr float softcap = 15.0f;

  // max_positions: each slot's context (prompt + generated tokens); step_tokens: the most tokens
  // one step computes, at least one per slot so every slot can decode in one step.
  SlotDecoder(B& backend, const GptWeights<C, B, W>& weights, std::int64_t slots, std::int64_t max_positions,
              std::int64_t step_tokens = 256)
      : backend_(&backend),
        weights_(&weights),
        linears_(backend, weights),
        step_tokens_(std::max(step_tokens, slots)),
        pool_(backend, slots, max_positions),
        rotary_(backend, C::head_dim, max_positions),
        arena_(backend, [&](Arena<B>& a) { layout(a); }) {
    NANOCHAT_CHECK(step_tokens > 0, "SlotDecoder: step tokens must be positive, got ", step_tokens);
    const auto n = static_cast<std::size_t>(step_tokens_);
    staged_ids_.reserve(n);
    token_slots_.reserve(n);
    token_positions_.reserve(n);
    last_token_.reserve(static_cast<std::size_t>(slots));
    in_step_.assign(static_cast<std::size_t>(slots), 0);
    if constexpr (!B::host_accessible) host_logits_.resize(static_cast<std::size_t>(slots * vocab_size()));
  }
  SlotDecoder(const SlotDecoder&) = delete;
  SlotDecoder& operator=(const SlotDecoder&) = delete;

  std::int64_t vocab_size() const { return weights_->vocab_size(); }
  std::int64_t slots() const { return pool_.slots(); }
  std::int64_t max_positions() const { return pool_.capacity(); }
  std::int64_t step_tokens() const { return step_tokens_; }
  std::int64_t length(std::int64_t slot) const { return pool_.length(slot); }
  const KvSlotPool<C, B, KV>& pool() const { return pool_; }
  // Bytes this decoder holds (pool, rotary table, activations, packed weights), besides the
  // borrowed weights.
  std::size_t bytes() const { return pool_.bytes() + rotary_.bytes() + arena_.bytes() + linears_.bytes(); }
  // Of those, the packed weights' (0 where the backend multiplies the weights as they are).
  std::size_t packed_weight_bytes() const { return linears_.bytes(); }

  void free(std::int64_t slot) { pool_.set_length(slot, 0); }
  // Slot `to` starts from the first `positions` cached positions of slot `from` (from == to keeps
  // a slot's own prefix and drops the rest).
  void copy_prefix(std::int64_t from, std::int64_t to, std::int64_t positions) {
    pool_.copy_prefix(from, to, positions);
  }

  // Appends each item's tokens to its slot and returns the soft-capped logits of each item's last
  // token, [work.size(), V] row-major in the order of `work`, valid until the next call.
  std::span<const float> step(std::span<const SlotTokens> work) {
    const std::int64_t n = stage(work);
    const auto items = static_cast<std::int64_t>(work.size());
    forward(n, items);
    for (const SlotTokens& w : work)
      pool_.set_length(w.slot, pool_.length(w.slot) + static_cast<std::int64_t>(w.tokens.size()));
    return host(logits_.slice(0, 0, items));
  }

 private:
  // Checks the work and lays its tokens out for the step: ids, each token's slot and position,
  // each item's last token. Returns the number of tokens.
  std::int64_t stage(std::span<const SlotTokens> work) {
    staged_ids_.clear();
    token_slots_.clear();
    token_positions_.clear();
    last_token_.clear();
    NANOCHAT_CHECK(!work.empty(), "SlotDecoder::step: no slot has tokens");
    std::int64_t total = 0;
    for (const SlotTokens& w : work) total += static_cast<std::int64_t>(w.tokens.size());
    NANOCHAT_CHECK(total <= step_tokens_, "SlotDecoder::step: ", total, " tokens exceed the step's ", step_tokens_);
    std::fill(in_step_.begin(), in_step_.end(), 0);
    for (const SlotTokens& w : work) {
      NANOCHAT_CHECK(w.slot >= 0 && w.slot < slots(), "SlotDecoder::step: slot ", w.slot, " outside [0, ", slots(), ")");
      auto& seen = in_step_[static_cast<std::size_t>(w.slot)];
      NANOCHAT_CHECK(!seen, "SlotDecoder::step: slot ", w.slot, " appears twice in one step");
      seen = 1;
      const auto len = static_cast<std::int64_t>(w.tokens.size());
      const std::int64_t pos0 = pool_.length(w.slot);
      NANOCHAT_CHECK(len > 0, "SlotDecoder::step: slot ", w.slot, " has no tokens");
      NANOCHAT_CHECK(pos0 + len <= max_positions(), "SlotDecoder::step: slot ", w.slot, ": ", pos0, " cached + ", len,
                     " new positions exceed the context of ", max_positions(), " positions");
      for (std::int64_t t = 0; t < len; ++t) {
        const std::int32_t id = w.tokens[static_cast<std::size_t>(t)];
        NANOCHAT_CHECK(id >= 0 && id < vocab_size(), "SlotDecoder::step: token id ", id,
                       " is outside the vocabulary of ", vocab_size());
        staged_ids_.push_back(id);
        token_slots_.push_back(static_cast<std::int32_t>(w.slot));
        token_positions_.push_back(static_cast<std::int32_t>(pos0 + t));
      }
      last_token_.push_back(static_cast<std::int64_t>(staged_ids_.size()) - 1);
    }
    return total;
  }

  std::span<const float> host(TensorView<float, B> v) {
    if constexpr (B::host_accessible) {
      return {v.data(), static_cast<std::size_t>(v.numel())};
    } else {
      backend_->copy_to_host(host_logits_.data(), v.data(), v.bytes());
      return {host_logits_.data(), static_cast<std::size_t>(v.numel())};
    }
  }

  // The staged n tokens through the model; logits of the `items` last tokens.
  void forward(std::int64_t n, std::int64_t items) {
    B& be = *backend_;
    const GptWeights<C, B, W>& w = *weights_;
    auto ids = ids_.slice(0, 0, n), slots = slots_.slice(0, 0, n), positions = positions_.slice(0, 0, n);
    backend_->copy_from_host(ids.data(), staged_ids_.data(), ids.bytes());
    backend_->copy_from_host(slots.data(), token_slots_.data(), slots.bytes());
    backend_->copy_from_host(positions.data(), token_positions_.data(), positions.bytes());
    const TensorView<const std::int32_t, B> slots_c(slots), positions_c(positions);
    auto x = x_.slice(0, 0, n), xn = xn_.slice(0, 0, n), y = y_.slice(0, 0, n), h = h_.slice(0, 0, n);
    auto q = q_.slice(0, 0, n), k = k_.slice(0, 0, n), v = v_.slice(0, 0, n);
    // Rotary sees the tokens as one row of n; attention and the cache as n tokens.
    const Shape q_row{1, n, C::n_head, C::head_dim}, kv_row{1, n, C::n_kv_head, C::head_dim};
    const Shape q3{n, C::n_head, C::head_dim}, kv3{n, C::n_kv_head, C::head_dim};
    embedding_forward(be, xn, w.wte, TensorView<const std::int32_t, B>(ids));
    rmsnorm_forward(be, x, rstd_.slice(0, 0, n), xn);
    for (int l = 0; l < C::depth; ++l) {
      const auto& b = linears_.blocks[static_cast<std::size_t>(l)];
      rmsnorm_forward(be, xn, rstd_.slice(0, 0, n), x);
      linear_forward(be, q, xn, b.c_q);
      linear_forward(be, k, xn, b.c_k);
      linear_forward(be, v, xn, b.c_v);
      rotary_forward(be, q.reshape(q_row), rotary_.cos.view(), rotary_.sin.view(), positions_c);
      rotary_forward(be, k.reshape(kv_row), rotary_.cos.view(), rotary_.sin.view(), positions_c);
      // QK-norm over the head dim, in place (each row is read before it is written).
      rmsnorm_forward(be, q.reshape({n * C::n_head, C::head_dim}), rstd_.slice(0, 0, n * C::n_head),
                      q.reshape({n * C::n_head, C::head_dim}));
      rmsnorm_forward(be, k.reshape({n * C::n_kv_head, C::head_dim}),
                      rstd_.slice(0, 0, n * C::n_kv_head), k.reshape({n * C::n_kv_head, C::head_dim}));
      pool_.insert(l, k.reshape(kv3), v.reshape(kv3), token_slots_, token_positions_);
      attention_cached_forward(be, y.reshape(q3), q.reshape(q3), pool_.keys(l), pool_.values(l), slots_c,
                               positions_c, C::attention_scale());
      linear_forward(be, x, y, b.attn_proj, 1.0f);
      rmsnorm_forward(be, xn, rstd_.slice(0, 0, n), x);
      linear_forward(be, h, xn, b.c_fc);
      relu_squared_forward(be, h, h);
      linear_forward(be, x, h, b.mlp_proj, 1.0f);
    }
    // Final norm and lm_head only over each item's last token.
    if (items < n) {
      constexpr std::size_t row_bytes = C::model_dim * sizeof(float);
      for (std::int64_t i = 0; i < items; ++i)
        backend_->copy_on_device(y.data() + i * C::model_dim,
                                 x.data() + last_token_[static_cast<std::size_t>(i)] * C::model_dim, row_bytes);
      x = y.slice(0, 0, items);
    }
    xn = xn_.slice(0, 0, items);
    rmsnorm_forward(be, xn, rstd_.slice(0, 0, items), x.slice(0, 0, items));
    auto logits = logits_.slice(0, 0, items);
    linear_forward(be, logits, xn, linears_.lm_head);
    softcap_forward(be, logits, softcap);
  }

  void layout(Arena<B>& a) {
    const std::int64_t n = step_tokens_;
    ids_ = a.template take<std::int32_t>({n});
    slots_ = a.template take<std::int32_t>({n});
    positions_ = a.template take<std::int32_t>({n});
    x_ = a.template take<float>({n, C::model_dim});
    xn_ = a.template take<float>({n, C::model_dim});
    y_ = a.template take<float>({n, C::model_dim});
    q_ = a.template take<float>({n, C::model_dim});
    k_ = a.template take<float>({n, C::kv_dim});
    v_ = a.template take<float>({n, C::kv_dim});
    h_ = a.template take<float>({n, C::mlp_dim});
    rstd_ = a.template take<float>({n * C::n_head});
    logits_ = a.template take<float>({pool_.slots(), vocab_size()});
  }

  B* backend_;
  const GptWeights<C, B, W>* weights_;
  PackedLinears<C, B, W> linears_;
  std::int64_t step_tokens_;
  KvSlotPool<C, B, KV> pool_;
  RotaryTable<B> rotary_;
  TensorView<std::int32_t, B> ids_, slots_, positions_;
  View x_, xn_, y_, q_, k_, v_, h_, rstd_, logits_;
  Arena<B> arena_;
  // Host staging of a step, reserved at construction.
  std::vector<std::int32_t> staged_ids_, token_slots_, token_positions_;
  std::vector<std::int64_t> last_token_;
  std::vector<std::uint8_t> in_step_;
  std::vector<float> host_logits_;
};

}  // namespace nanochat
