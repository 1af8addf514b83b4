#pragma once
// nanochat's initialisation (spec §2.5), drawn from Philox so that every backend produces the
// same weights: wte ~ N(0, 1); c_q, c_k, c_v, c_fc ~ N(0, s^2) with
// s = min(1, sqrt(fan_out / fan_in)) / sqrt(fan_in); lm_head and both c_proj start at zero.
// Parameter i (in state_dict order) uses Philox stream i under the seed.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "nanochat/model/weights.hpp"

namespace nanochat {

inline float nanochat_linear_std(std::int64_t fan_out, std::int64_t fan_in) {
  const double ratio = static_cast<double>(fan_out) / static_cast<double>(fan_in);
  return static_cast<float>(std::min(1.0, std::sqrt(ratio)) / std::sqrt(static_cast<double>(fan_in)));
}

template <Config C, Backend B>
void init_weights(B& backend, GptWeights<C, B>& w, std::uint64_t seed) {
  std::uint64_t stream = 0;
  w.for_each([&](const std::string& name, TensorView<float, B> v) {
    const bool zero = name == "lm_head.weight" || name.ends_with("c_proj.weight");
    if (zero) {
      backend.fill_zero(v.data(), v.bytes());
    } else if (name == "transformer.wte.weight") {
      fill_normal(backend, v, seed, stream, 0.0f, 1.0f);
    } else {
      fill_normal(backend, v, seed, stream, 0.0f, nanochat_linear_std(v.size(0), v.size(1)));
    }
    ++stream;
  });
}

}  // namespace nanochat
