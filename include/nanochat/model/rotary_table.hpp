#pragma once
// Rotary tables as nanochat builds them: inv_freq[i] = 10000^(-2i/D), angle = t * inv_freq[i]
// in fp32, cos and sin rounded to bf16 (nanochat stores them in bf16), kept here as floats so
// fp32 math sees exactly nanochat's values. Rows are positions, columns the D/2 frequencies.

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "nanochat/core/bf16.hpp"
#include "nanochat/core/tensor.hpp"

namespace nanochat {

template <Backend B>
struct RotaryTable {
  static constexpr float base = 10000.0f;

  RotaryTable(B& backend, int head_dim, std::int64_t positions)
      : cos(backend, {positions, head_dim / 2}), sin(backend, {positions, head_dim / 2}) {
    NANOCHAT_CHECK(head_dim > 0 && head_dim % 2 == 0, "RotaryTable: head dim ", head_dim,
                   " must be even");
    const std::int64_t half = head_dim / 2;
    std::vector<float> c(static_cast<std::size_t>(positions * half)), s(c.size());
    for (std::int64_t i = 0; i < half; ++i) {
      const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
      const float inv_freq = 1.0f / std::pow(base, exponent);
      for (std::int64_t t = 0; t < positions; ++t) {
        const float angle = static_cast<float>(t) * inv_freq;
        c[static_cast<std::size_t>(t * half + i)] = round_to_bf16(std::cos(angle));
        s[static_cast<std::size_t>(t * half + i)] = round_to_bf16(std::sin(angle));
      }
    }
    copy_from_host(backend, cos.view(), std::span<const float>(c));
    copy_from_host(backend, sin.view(), std::span<const float>(s));
  }

  std::int64_t positions() const { return cos.shape()[0]; }
  std::size_t bytes() const { return cos.bytes() + sin.bytes(); }

  Tensor<float, B> cos, sin;
};

}  // namespace nanochat
