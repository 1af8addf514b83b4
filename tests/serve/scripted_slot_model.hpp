#pragma once
// A stand-in for SlotDecoder (serve::SlotModel) without weights, whose logits for a slot depend
// only on that slot's own cached tokens, never on what else is in the step: the batched
// generator's scheduling (admission, chunked prefill, per-request sampling, tool state, slot
// reuse, prefix copies) can then be checked for exact equality with each request run alone.
// With a script, the slot's k-th token after its last <|assistant_start|> (the end of a chat
// prompt) gets all the weight on script[k] (token 0 past the end); without one, every logit is a
// hash of the slot's whole sequence and the token id, in [-2, 2). It records every step's work.

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/model/slot_decoder.hpp"

namespace serve_test {

class ScriptedSlotModel {
 public:
  ScriptedSlotModel(std::int64_t slots, std::int64_t max_positions, std::int64_t step_tokens, std::int64_t vocab,
                    std::vector<std::int32_t> script = {}, std::int32_t marker = -1)
      : slots_(slots), max_positions_(max_positions), step_tokens_(step_tokens), vocab_(vocab),
        script_(std::move(script)), marker_(marker), seqs_(static_cast<std::size_t>(slots)) {}

  std::span<const float> step(std::span<const nanochat::SlotTokens> work) {
    std::int64_t total = 0;
    logits_.assign(work.size() * static_cast<std::size_t>(vocab_), 0.0f);
    std::vector<std::pair<std::int64_t, std::int64_t>> items;
    for (std::size_t i = 0; i < work.size(); ++i) {
      auto& seq = seqs_.at(static_cast<std::size_t>(work[i].slot));
      seq.insert(seq.end(), work[i].tokens.begin(), work[i].tokens.end());
      NANOCHAT_CHECK(static_cast<std::int64_t>(seq.size()) <= max_positions_, "ScriptedSlotModel: slot ", work[i].slot,
                     " is past its context");
      total += static_cast<std::int64_t>(work[i].tokens.size());
      items.emplace_back(work[i].slot, static_cast<std::int64_t>(work[i].tokens.size()));
      fill(seq, std::span<float>(logits_).subspan(i * static_cast<std::size_t>(vocab_), static_cast<std::size_t>(vocab_)));
    }
    NANOCHAT_CHECK(total <= step_tokens_, "ScriptedSlotModel: ", total, " tokens exceed the step's ", step_tokens_);
    steps.push_back(std::move(items));
    return logits_;
  }
  void free(std::int64_t slot) { seqs_.at(static_cast<std::size_t>(slot)).clear(); }
  void copy_prefix(std::int64_t from, std::int64_t to, std::int64_t positions) {
    const auto& src = seqs_.at(static_cast<std::size_t>(from));
    NANOCHAT_CHECK(positions >= 0 && positions <= static_cast<std::int64_t>(src.size()), "ScriptedSlotModel: slot ", from,
                   " has ", src.size(), " positions, asked for ", positions);
    std::vector<std::int32_t> prefix(src.begin(), src.begin() + positions);
    seqs_.at(static_cast<std::size_t>(to)) = std::move(prefix);
  }
  std::int64_t slots() const { return slots_; }
  std::int64_t max_positions() const { return max_positions_; }
  std::int64_t step_tokens() const { return step_tokens_; }
  std::int64_t vocab_size() const { return vocab_; }
  std::int64_t length(std::int64_t slot) const { return static_cast<std::int64_t>(seqs_.at(static_cast<std::size_t>(slot)).size()); }

  // Each step's (slot, tokens fed) items, in order.
  std::vector<std::vector<std::pair<std::int64_t, std::int64_t>>> steps;

 private:
  void fill(const std::vector<std::int32_t>& seq, std::span<float> out) const {
    if (!script_.empty()) {
      std::size_t k = seq.size();
      for (std::size_t i = seq.size(); i-- > 0;)
        if (seq[i] == marker_) {
          k = seq.size() - 1 - i;
          break;
        }
      out[static_cast<std::size_t>(k < script_.size() ? script_[k] : 0)] = 100.0f;
      return;
    }
    std::uint64_t h = 1469598103934665603ull;  // FNV-1a over the sequence
    for (std::int32_t t : seq) h = (h ^ static_cast<std::uint32_t>(t)) * 1099511628211ull;
    for (std::size_t v = 0; v < out.size(); ++v) {
      std::uint64_t x = (h ^ (v * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
      x ^= x >> 31;
      out[v] = static_cast<float>(x % 4096) / 1024.0f - 2.0f;
    }
  }

  std::int64_t slots_, max_positions_, step_tokens_, vocab_;
  std::vector<std::int32_t> script_;
  std::int32_t marker_;
  std::vector<std::vector<std::int32_t>> seqs_;
  std::vector<float> logits_;
};

}  // namespace serve_test
