#pragma once
// nanochat's naive GPT.generate (spec §2.7): batch 1, the whole prefix recomputed for every new
// token, greedy at temperature 0. The reference the Engine is checked against, and what training
// uses for its periodic samples. The model given must be sized for batch 1; its sequence length
// bounds prompt + continuation (positions after the text are filled and ignored: attention is
// causal, so they cannot change the logits read).

#include <algorithm>
#include <cstdint>
#include <vector>

#include "nanochat/model/gpt.hpp"

namespace nanochat {

template <Config C, Backend B>
std::vector<std::int32_t> greedy_continue(B& backend, Gpt<C, B>& model, std::vector<std::int32_t> tokens,
                                          int max_new_tokens) {
  const std::int64_t seq = model.activations().seq();
  NANOCHAT_CHECK(model.activations().batch() == 1, "greedy_continue: the model must be sized for batch 1");
  NANOCHAT_CHECK(!tokens.empty() && static_cast<std::int64_t>(tokens.size()) + max_new_tokens <= seq,
                 "greedy_continue: prompt of ", tokens.size(), " tokens + ", max_new_tokens,
                 " new ones exceeds the model's ", seq, " positions");
  Tensor<std::int32_t, B> ids(backend, {1, seq});
  std::vector<std::int32_t> window(static_cast<std::size_t>(seq), 0);
  const std::int64_t vocab = model.vocab_size();
  for (int n = 0; n < max_new_tokens; ++n) {
    std::copy(tokens.begin(), tokens.end(), window.begin());
    copy_from_host(backend, ids.view(), std::span<const std::int32_t>(window));
    const auto logits = model.forward(ids.view());
    const auto last = static_cast<std::int64_t>(tokens.size()) - 1;
    const std::vector<float> row = to_host(backend, logits.slice(0, last, last + 1));
    tokens.push_back(static_cast<std::int32_t>(std::max_element(row.begin(), row.begin() + vocab) - row.begin()));
  }
  return tokens;
}

}  // namespace nanochat
