#pragma once
// The GPT's parameters (or their gradients: the same structure), laid out in one allocation and
// named as nanochat's state_dict names them. Linear weights are [out, in], as PyTorch stores them.
// W is the element type of every parameter: float for training, float or bf16 for inference (the
// decoder widens bf16 to float as it reads it; see convert_weights and load_weights).

#include <array>
#include <cstdint>
#include <string>
#include <type_traits>

#include "nanochat/core/arena.hpp"
#include "nanochat/core/config.hpp"

namespace nanochat {

template <Config C, Backend B, class W = float>
class GptWeights {
  static_assert(std::is_same_v<W, float> || std::is_same_v<W, bf16>, "GptWeights: parameters are float or bf16");

 public:
  struct Block {
    TensorView<W, B> c_q, c_k, c_v, attn_proj, c_fc, mlp_proj;
  };

  GptWeights(B& backend, std::int64_t vocab_size)
      : vocab_size_(vocab_size), arena_(backend, [&](Arena<B>& a) { layout(a); }) {
    NANOCHAT_CHECK(vocab_size > 0, "GptWeights: vocab size must be positive, got ", vocab_size);
  }
  GptWeights(const GptWeights&) = delete;
  GptWeights& operator=(const GptWeights&) = delete;

  std::int64_t vocab_size() const { return vocab_size_; }

  // Every parameter as one flat vector, in state_dict order (zeroing, norms, optimizer state).
  TensorView<W, B> flat() const { return all_; }

  // f(name, view) for every parameter, in nanochat's state_dict order.
  template <class F>
  void for_each(F&& f) const {
    f(std::string("transformer.wte.weight"), wte);
    for (int i = 0; i < C::depth; ++i) {
      const std::string p = "transformer.h." + std::to_string(i) + ".";
      const Block& b = blocks[static_cast<std::size_t>(i)];
      f(p + "attn.c_q.weight", b.c_q);
      f(p + "attn.c_k.weight", b.c_k);
      f(p + "attn.c_v.weight", b.c_v);
      f(p + "attn.c_proj.weight", b.attn_proj);
      f(p + "mlp.c_fc.weight", b.c_fc);
      f(p + "mlp.c_proj.weight", b.mlp_proj);
    }
    f(std::string("lm_head.weight"), lm_head);
  }

  TensorView<W, B> wte, lm_head;
  std::array<Block, C::depth> blocks;

 private:
  void layout(Arena<B>& a) {
    const std::int64_t total = C::total_params(vocab_size_);
    all_ = a.template take<W>({total});
    W* p = all_.data();
    auto next = [&](MatrixShape m) {
      TensorView<W, B> v(p, Shape{m.out, m.in});
      if (p != nullptr) p += m.numel();
      return v;
    };
    wte = next({vocab_size_, C::model_dim});
    for (Block& b : blocks) {
      b.c_q = next(C::c_q);
      b.c_k = next(C::c_k);
      b.c_v = next(C::c_v);
      b.attn_proj = next(C::attn_proj);
      b.c_fc = next(C::c_fc);
      b.mlp_proj = next(C::mlp_proj);
    }
    lm_head = next({vocab_size_, C::model_dim});
  }

  std::int64_t vocab_size_;
  TensorView<W, B> all_;
  Arena<B> arena_;
};

}  // namespace nanochat
