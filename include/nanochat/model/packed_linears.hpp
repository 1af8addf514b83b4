#pragma once
// The GPT's Linear weights (every block's six and lm_head) packed once by the backend for its
// product of many rows (pack_linear: on the Cpu, the GEMM's panels, which a step of more than the
// streaming kernel's rows would otherwise pack on every call). Built from weights that must not
// change while it lives: a served model's, not a model in training. It borrows the weights and
// costs about their bytes again.

#include <array>
#include <cstddef>
#include <utility>

#include "nanochat/core/config.hpp"
#include "nanochat/model/weights.hpp"

namespace nanochat {

template <Config C, Backend B, class W>
class PackedLinears {
 public:
  using Packed = decltype(pack_linear(std::declval<B&>(), std::declval<TensorView<const W, B>>()));
  struct Block {
    Packed c_q, c_k, c_v, attn_proj, c_fc, mlp_proj;
  };

  PackedLinears(B& backend, const GptWeights<C, B, W>& weights) {
    const auto pack = [&](TensorView<const W, B> w) { return pack_linear(backend, w); };
    for (int l = 0; l < C::depth; ++l) {
      const auto& from = weights.blocks[static_cast<std::size_t>(l)];
      Block& to = blocks[static_cast<std::size_t>(l)];
      to = {pack(from.c_q), pack(from.c_k), pack(from.c_v), pack(from.attn_proj), pack(from.c_fc), pack(from.mlp_proj)};
    }
    lm_head = pack(weights.lm_head);
  }
  PackedLinears(const PackedLinears&) = delete;
  PackedLinears& operator=(const PackedLinears&) = delete;

  // Bytes of the packed copies (the borrowed weights not counted).
  std::size_t bytes() const {
    std::size_t total = lm_head.bytes();
    for (const Block& b : blocks)
      for (const Packed* p : {&b.c_q, &b.c_k, &b.c_v, &b.attn_proj, &b.c_fc, &b.mlp_proj}) total += p->bytes();
    return total;
  }

  std::array<Block, C::depth> blocks;
  Packed lm_head;
};

}  // namespace nanochat
