#pragma once
// nanochat's model family: one dial, the depth. dim = 64 * depth, heads = ceil(dim / 128),
// KV heads = heads, head dim = dim / heads (128 for every even depth).

#include "nanochat/core/config.hpp"

namespace nanochat {

constexpr int nanochat_dim(int depth) { return 64 * depth; }
constexpr int nanochat_heads(int depth) { return (nanochat_dim(depth) + 127) / 128; }

template <int Depth, class Element = float>
struct NanochatPreset {
  static_assert(Depth >= 1, "nanochat presets need depth >= 1");
  static_assert(nanochat_dim(Depth) % nanochat_heads(Depth) == 0,
                "nanochat's shape rule (dim = 64*depth, heads = ceil(dim/128)) needs dim to "
                "divide into equal heads; it does for every even depth");
  using type = GptConfig<Depth, nanochat_heads(Depth), nanochat_heads(Depth),
                         nanochat_dim(Depth) / nanochat_heads(Depth), Element>;
};

template <int Depth, class Element = float>
using NanochatConfig = typename NanochatPreset<Depth, Element>::type;

}  // namespace nanochat
