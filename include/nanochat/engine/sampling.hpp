#pragma once
// Next-token sampling (spec §7.2): temperature 0 is argmax (the first maximum, as torch.argmax);
// otherwise softmax(logits / temperature), over the k largest logits when top_k > 0, and one
// draw. Draws come from Philox: row r's i-th draw is philox_uniform(seed, r, i), so the same seed
// gives the same text and rows are independent streams. Scratch is sized once per vocabulary.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/philox.hpp"

namespace nanochat::engine {

struct SamplingOptions {
  float temperature = 1.0f;  // 0: greedy
  int top_k = 0;             // 0: the whole vocabulary
  std::uint64_t seed = 42;
};

class Sampler {
 public:
  explicit Sampler(std::int64_t vocab_size)
      : order_(static_cast<std::size_t>(vocab_size)), weights_(static_cast<std::size_t>(vocab_size)) {
    NANOCHAT_CHECK(vocab_size > 0, "Sampler: vocab size must be positive, got ", vocab_size);
  }

  // One token from one row's logits; `row` picks the Philox stream, `draw` the value in it.
  std::int32_t sample(std::span<const float> logits, const SamplingOptions& o, std::uint64_t row,
                      std::uint64_t draw) {
    const std::size_t v = logits.size();
    NANOCHAT_CHECK(v == order_.size(), "Sampler: ", v, " logits, the vocabulary has ", order_.size());
    NANOCHAT_CHECK(o.temperature >= 0.0f && std::isfinite(o.temperature), "Sampler: temperature ",
                   o.temperature, " must be finite and >= 0");
    NANOCHAT_CHECK(o.top_k >= 0, "Sampler: top_k ", o.top_k, " must be >= 0");
    if (o.temperature == 0.0f) {
      return static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    }
    std::size_t kept = v;
    std::iota(order_.begin(), order_.end(), 0);
    if (o.top_k > 0 && static_cast<std::size_t>(o.top_k) < v) {
      kept = static_cast<std::size_t>(o.top_k);
      // The k largest (ties to the lower id), in descending order like torch.topk.
      const auto greater = [&](std::int32_t a, std::int32_t b) {
        const float la = logits[static_cast<std::size_t>(a)], lb = logits[static_cast<std::size_t>(b)];
        return la > lb || (la == lb && a < b);
      };
      std::nth_element(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(kept) - 1, order_.end(), greater);
      std::sort(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(kept), greater);
    }
    double max = -INFINITY;
    for (std::size_t i = 0; i < kept; ++i) max = std::max(max, static_cast<double>(logits[static_cast<std::size_t>(order_[i])]));
    double total = 0.0;
    const double inv_t = 1.0 / static_cast<double>(o.temperature);
    for (std::size_t i = 0; i < kept; ++i) {
      weights_[i] = std::exp((static_cast<double>(logits[static_cast<std::size_t>(order_[i])]) - max) * inv_t);
      total += weights_[i];
    }
    const double u = static_cast<double>(philox_uniform(o.seed, row, draw)) * total;
    double cdf = 0.0;
    for (std::size_t i = 0; i < kept; ++i) {
      cdf += weights_[i];
      if (u < cdf) return order_[i];
    }
    // u * total rounded past the last bucket: the last token with weight.
    for (std::size_t i = kept; i-- > 0;)
      if (weights_[i] > 0.0) return order_[i];
    return order_[0];
  }

 private:
  std::vector<std::int32_t> order_;
  std::vector<double> weights_;
};

}  // namespace nanochat::engine
