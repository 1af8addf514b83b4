#pragma once
// GptConfig: the model's shape as types. Everything that follows from depth, heads, KV heads,
// head dim and the compute element type is a constexpr member, so layer code sizes its loops
// and buffers at compile time. Vocab size, sequence length and batch stay runtime values: they
// come from the tokenizer and the command line.

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "nanochat/core/bf16.hpp"
#include "nanochat/core/error.hpp"

namespace nanochat {

// A Linear weight's shape as PyTorch stores it: [out, in].
struct MatrixShape {
  std::int64_t out, in;
  constexpr std::int64_t numel() const { return out * in; }
};

template <int Depth, int Heads, int KvHeads, int HeadDim, class Element = float>
struct GptConfig {
  static_assert(Depth >= 1, "GptConfig: depth (the number of transformer blocks) must be >= 1");
  static_assert(Heads >= 1, "GptConfig: the number of attention heads must be >= 1");
  static_assert(KvHeads >= 1 && KvHeads <= Heads,
                "GptConfig: KV heads must be between 1 and the number of query heads");
  static_assert(Heads % KvHeads == 0,
                "GptConfig: heads must be a multiple of KV heads, so that each KV head serves a "
                "whole group of query heads (GQA)");
  static_assert(HeadDim >= 2 && HeadDim % 2 == 0,
                "GptConfig: head dim must be even: rotary embeddings rotate the pairs "
                "(x[i], x[i + head_dim/2])");
  static_assert(std::is_same_v<Element, float> || std::is_same_v<Element, bf16>,
                "GptConfig: the compute element type must be float or bf16");

  using element_type = Element;

  static constexpr int depth = Depth;
  static constexpr int n_head = Heads;
  static constexpr int n_kv_head = KvHeads;
  static constexpr int head_dim = HeadDim;
  static constexpr int gqa_group = Heads / KvHeads;  // query heads per KV head
  static constexpr int model_dim = Heads * HeadDim;
  static constexpr int kv_dim = KvHeads * HeadDim;
  static constexpr int mlp_dim = 4 * model_dim;
  // Attention's softmax(q k^T * scale): SDPA's default, 1 / sqrt(head_dim).
  static float attention_scale() { return 1.0f / std::sqrt(static_cast<float>(HeadDim)); }

  // Per-block weights, in nanochat's state_dict order.
  static constexpr MatrixShape c_q{model_dim, model_dim};
  static constexpr MatrixShape c_k{kv_dim, model_dim};
  static constexpr MatrixShape c_v{kv_dim, model_dim};
  static constexpr MatrixShape attn_proj{model_dim, model_dim};
  static constexpr MatrixShape c_fc{mlp_dim, model_dim};
  static constexpr MatrixShape mlp_proj{model_dim, mlp_dim};

  static constexpr std::int64_t block_params = c_q.numel() + c_k.numel() + c_v.numel() +
                                               attn_proj.numel() + c_fc.numel() + mlp_proj.numel();
  static constexpr std::int64_t matrix_params = std::int64_t{Depth} * block_params;

  // wte and lm_head are each [vocab, model_dim] (untied).
  static constexpr std::int64_t embedding_params(std::int64_t vocab_size) {
    return vocab_size * model_dim;
  }
  static constexpr std::int64_t total_params(std::int64_t vocab_size) {
    return matrix_params + 2 * embedding_params(vocab_size);
  }

  // nanochat's estimate of training FLOPs per token (forward + backward): 6 per parameter that
  // takes part in a matmul (all but the wte lookup) plus attention's 12 * L * H * D * T.
  static constexpr double flops_per_token(std::int64_t vocab_size, std::int64_t seq_len) {
    const double matmul_params = static_cast<double>(total_params(vocab_size) -
                                                     embedding_params(vocab_size));
    return 6.0 * matmul_params + 12.0 * Depth * Heads * HeadDim * static_cast<double>(seq_len);
  }

  static std::string name() {
    return cat("depth ", Depth, ", dim ", model_dim, ", ", Heads, " heads, ", KvHeads,
               " KV heads, head dim ", HeadDim, ", ",
               std::is_same_v<Element, float> ? "f32" : "bf16");
  }
};

template <class T>
struct is_gpt_config : std::false_type {};
template <int L, int H, int K, int D, class E>
struct is_gpt_config<GptConfig<L, H, K, D, E>> : std::true_type {};
template <class T>
concept Config = is_gpt_config<T>::value;

}  // namespace nanochat
