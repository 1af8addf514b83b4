#pragma once
// The GPT for inference: forward with a KV cache (spec §2.3-2.4, §7.1). It borrows the weights
// (a training Gpt, a loaded checkpoint: shared, never copied), owns its cache and one arena for
// the activations of a step of at most `step_tokens` tokens (rows x chunk). A prompt longer than
// a step is prefilled in chunks; each chunk sees the cached prefix and is causal inside itself,
// and rotary positions start at the cache's length. Memory follows the positions in use, not the
// context: the cache grows by 1024 positions when full and the rotary table doubles (up to
// max_positions) when the cache outgrows it, so a model whose context is a million positions
// costs little for a short conversation. Nothing is allocated per step except at such growth
// (reserve() ahead of time avoids it).
// W is the weights' element type: float, or bf16 for inference at half the bytes per token (the
// ops widen each weight to float as they read it; activations stay float). KV is the cache's,
// by default the weights': a bf16 decoder keeps K and V in bf16 too (rounded as they are written,
// widened as attention reads them), half the cache's memory and bytes per step, which is what
// batched decode reads most of. GptDecoder<C, B, bf16, float> keeps a float cache, and with it
// exactly the fp32 decoder's numbers on the rounded weights.

#include <algorithm>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "nanochat/core/arena.hpp"
#include "nanochat/core/bf16.hpp"
#include "nanochat/model/kv_cache.hpp"
#include "nanochat/model/rotary_table.hpp"
#include "nanochat/model/weights.hpp"

namespace nanochat {

template <Config C, Backend B, class W = float, class KV = W>
class GptDecoder {
  static_assert(std::is_same_v<typename C::element_type, float>,
                "GptDecoder computes in float on the Cpu backend");
  static_assert(std::is_same_v<KV, float> || std::is_same_v<KV, bf16>, "the KV cache holds float or bf16");

 public:
  using View = TensorView<float, B>;
  static constexpr float softcap = 15.0f;

  // max_positions bounds prompt + generated tokens (nanochat: 10 x sequence_len, the rotary
  // table's length); nothing is allocated for positions not yet used. step_tokens is the most
  // tokens one step computes (rows x chunk).
  GptDecoder(B& backend, const GptWeights<C, B, W>& weights, std::int64_t max_rows,
             std::int64_t max_positions, std::int64_t step_tokens = 256)
      : backend_(&backend),
        weights_(&weights),
        max_rows_(max_rows),
        max_positions_(max_positions),
        step_tokens_(std::max(step_tokens, max_rows)),
        cache_(backend, max_rows),
        rotary_(backend, C::head_dim, std::min(cache_.capacity(), std::max<std::int64_t>(max_positions, 1))),
        arena_(backend, [&](Arena<B>& a) { layout(a); }) {
    NANOCHAT_CHECK(max_rows > 0 && max_positions > 0 && step_tokens > 0,
                   "GptDecoder: rows, positions and step tokens must be positive, got ", max_rows,
                   ", ", max_positions, ", ", step_tokens);
    if constexpr (!B::host_accessible) host_logits_.resize(static_cast<std::size_t>(step_tokens_ * vocab_size()));
  }
  GptDecoder(const GptDecoder&) = delete;
  GptDecoder& operator=(const GptDecoder&) = delete;

  std::int64_t vocab_size() const { return weights_->vocab_size(); }
  std::int64_t max_rows() const { return max_rows_; }
  std::int64_t max_positions() const { return max_positions_; }
  std::int64_t position() const { return cache_.position(); }
  const KvCache<C, B, KV>& cache() const { return cache_; }
  // Bytes this decoder holds (cache, rotary table, activations), besides the borrowed weights.
  std::size_t bytes() const { return cache_.bytes() + rotary_.bytes() + arena_.bytes(); }

  void reset() { cache_.reset(); }
  // Grows the cache and rotary table now so that `positions` fit without growing during decode.
  void reserve(std::int64_t positions) {
    positions = std::min(positions, max_positions_);
    cache_.reserve(positions);
    grow_rotary(positions);
  }
  // After a batch-1 prefill: rows [1, rows) get row 0's cache.
  void broadcast_row0(std::int64_t rows) { cache_.broadcast_row0(rows); }

  // ids: rows x T tokens, row-major. Appends them to the cache and returns the soft-capped
  // logits of each row's last token, [rows, V] row-major, valid until the next call.
  std::span<const float> forward(std::span<const std::int32_t> ids, std::int64_t rows) {
    const std::int64_t t = check_ids(ids, rows);
    const std::int64_t chunk = std::max<std::int64_t>(1, step_tokens_ / rows);
    for (std::int64_t begin = 0; begin < t; begin += chunk) {
      const std::int64_t len = std::min(chunk, t - begin);
      // Rows of a chunk are strided in ids; gather them into the step's id buffer.
      for (std::int64_t r = 0; r < rows; ++r)
        staged_.insert(staged_.end(), ids.begin() + r * t + begin, ids.begin() + r * t + begin + len);
      step(rows, len, /*all_logits=*/false);
      staged_.clear();
    }
    return host(logits_.reshape({step_tokens_ * vocab_size()}).slice(0, 0, rows * vocab_size()));
  }

  // Like forward, but one step (rows x T <= step tokens) and the logits of every position,
  // [rows x T, V] (checking against full recomputation and PyTorch).
  std::span<const float> forward_all(std::span<const std::int32_t> ids, std::int64_t rows) {
    const std::int64_t t = check_ids(ids, rows);
    NANOCHAT_CHECK(rows * t <= step_tokens_, "GptDecoder::forward_all: ", rows, " x ", t,
                   " tokens exceed the step's ", step_tokens_);
    staged_.assign(ids.begin(), ids.end());
    step(rows, t, /*all_logits=*/true);
    staged_.clear();
    return host(logits_.reshape({step_tokens_ * vocab_size()}).slice(0, 0, rows * t * vocab_size()));
  }

 private:
  std::int64_t check_ids(std::span<const std::int32_t> ids, std::int64_t rows) {
    NANOCHAT_CHECK(rows >= 1 && rows <= max_rows_, "GptDecoder: ", rows, " rows, at most ", max_rows_);
    const auto n = static_cast<std::int64_t>(ids.size());
    NANOCHAT_CHECK(n > 0 && n % rows == 0, "GptDecoder: ", n, " ids do not make ", rows, " equal rows");
    const std::int64_t t = n / rows;
    NANOCHAT_CHECK(position() + t <= max_positions_, "GptDecoder: ", position(), " cached + ", t,
                   " new positions exceed the context of ", max_positions_, " positions");
    for (std::int32_t id : ids)
      NANOCHAT_CHECK(id >= 0 && id < vocab_size(), "GptDecoder: token id ", id,
                     " is outside the vocabulary of ", vocab_size());
    staged_.reserve(static_cast<std::size_t>(step_tokens_));
    return t;
  }

  // Doubling keeps the rebuilds' total work linear in the positions reached.
  void grow_rotary(std::int64_t positions) {
    if (positions <= rotary_.positions()) return;
    const std::int64_t grown = std::min(max_positions_, std::max(positions, 2 * rotary_.positions()));
    rotary_ = RotaryTable<B>(*backend_, C::head_dim, grown);
  }

  std::span<const float> host(TensorView<float, B> v) {
    if constexpr (B::host_accessible) {
      return {v.data(), static_cast<std::size_t>(v.numel())};
    } else {
      backend_->copy_to_host(host_logits_.data(), v.data(), v.bytes());
      return {host_logits_.data(), static_cast<std::size_t>(v.numel())};
    }
  }

  // One step: rows x t tokens staged in staged_, appended to the cache at its position.
  void step(std::int64_t rows, std::int64_t t, bool all_logits) {
    B& be = *backend_;
    const GptWeights<C, B, W>& w = *weights_;
    const std::int64_t n = rows * t, pos0 = cache_.position();
    cache_.reserve(pos0 + t);  // no-ops unless the cache or the table is full
    grow_rotary(pos0 + t);
    auto ids = ids_.slice(0, 0, n);
    backend_->copy_from_host(ids.data(), staged_.data(), ids.bytes());
    auto x = x_.slice(0, 0, n), xn = xn_.slice(0, 0, n), y = y_.slice(0, 0, n), h = h_.slice(0, 0, n);
    auto q = q_.slice(0, 0, n), k = k_.slice(0, 0, n), v = v_.slice(0, 0, n);
    const Shape q4{rows, t, C::n_head, C::head_dim}, kv4{rows, t, C::n_kv_head, C::head_dim};
    embedding_forward(be, xn, w.wte, TensorView<const std::int32_t, B>(ids));
    rmsnorm_forward(be, x, rstd_.slice(0, 0, n), xn);
    for (int l = 0; l < C::depth; ++l) {
      const auto& b = w.blocks[static_cast<std::size_t>(l)];
      rmsnorm_forward(be, xn, rstd_.slice(0, 0, n), x);
      linear_forward(be, q, xn, b.c_q);
      linear_forward(be, k, xn, b.c_k);
      linear_forward(be, v, xn, b.c_v);
      rotary_forward(be, q.reshape(q4), rotary_.cos.view(), rotary_.sin.view(), pos0);
      rotary_forward(be, k.reshape(kv4), rotary_.cos.view(), rotary_.sin.view(), pos0);
      // QK-norm over the head dim, in place (each row is read before it is written).
      rmsnorm_forward(be, q.reshape({n * C::n_head, C::head_dim}), rstd_.slice(0, 0, n * C::n_head),
                      q.reshape({n * C::n_head, C::head_dim}));
      rmsnorm_forward(be, k.reshape({n * C::n_kv_head, C::head_dim}),
                      rstd_.slice(0, 0, n * C::n_kv_head), k.reshape({n * C::n_kv_head, C::head_dim}));
      cache_.insert(l, k.reshape(kv4), v.reshape(kv4));
      attention_cached_forward(be, y.reshape(q4), q.reshape(q4), cache_.keys(l), cache_.values(l),
                               pos0 + t, C::attention_scale());
      linear_forward(be, x, y, b.attn_proj, 1.0f);
      rmsnorm_forward(be, xn, rstd_.slice(0, 0, n), x);
      linear_forward(be, h, xn, b.c_fc);
      relu_squared_forward(be, h, h);
      linear_forward(be, x, h, b.mlp_proj, 1.0f);
    }
    cache_.advance(t);
    // Final norm and lm_head over every position, or only over each row's last one.
    std::int64_t out_rows = n;
    if (!all_logits && t > 1) {
      constexpr std::size_t row_bytes = C::model_dim * sizeof(float);
      for (std::int64_t r = 0; r < rows; ++r)
        backend_->copy_on_device(y.data() + r * C::model_dim, x.data() + ((r + 1) * t - 1) * C::model_dim, row_bytes);
      out_rows = rows;
      x = y.slice(0, 0, rows);
    }
    xn = xn_.slice(0, 0, out_rows);
    rmsnorm_forward(be, xn, rstd_.slice(0, 0, out_rows), x.slice(0, 0, out_rows));
    auto logits = logits_.slice(0, 0, out_rows);
    linear_forward(be, logits, xn, w.lm_head);
    softcap_forward(be, logits, softcap);
  }

  void layout(Arena<B>& a) {
    const std::int64_t n = step_tokens_;
    ids_ = a.template take<std::int32_t>({n});
    x_ = a.template take<float>({n, C::model_dim});
    xn_ = a.template take<float>({n, C::model_dim});
    y_ = a.template take<float>({n, C::model_dim});
    q_ = a.template take<float>({n, C::model_dim});
    k_ = a.template take<float>({n, C::kv_dim});
    v_ = a.template take<float>({n, C::kv_dim});
    h_ = a.template take<float>({n, C::mlp_dim});
    rstd_ = a.template take<float>({n * C::n_head});
    logits_ = a.template take<float>({n, vocab_size()});
  }

  B* backend_;
  const GptWeights<C, B, W>* weights_;
  std::int64_t max_rows_, max_positions_, step_tokens_;
  KvCache<C, B, KV> cache_;
  RotaryTable<B> rotary_;
  TensorView<std::int32_t, B> ids_;
  View x_, xn_, y_, q_, k_, v_, h_, rstd_, logits_;
  Arena<B> arena_;
  std::vector<std::int32_t> staged_;
  std::vector<float> host_logits_;
};

}  // namespace nanochat
