#pragma once
// Shared by the engine suite and its fuzz target: a CachedModel without weights, for checking
// what the Engine does with a prompt and with the tokens a model proposes.

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace engine_test {

// A model that plays a script: at step s it puts all weight on script[s] (every row alike) and
// records what it was fed, so the Engine's tool handling can be checked token by token.
class ScriptedModel {
 public:
  ScriptedModel(std::vector<std::int32_t> script, std::int64_t vocab, std::int64_t max_positions = 1000)
      : script_(std::move(script)), vocab_(vocab), max_positions_(max_positions) {}

  std::span<const float> forward(std::span<const std::int32_t> ids, std::int64_t rows) {
    fed_.emplace_back(ids.begin(), ids.end());
    pos_ += static_cast<std::int64_t>(ids.size()) / rows;
    logits_.assign(static_cast<std::size_t>(rows * vocab_), 0.0f);
    const std::int32_t next = step_ < script_.size() ? script_[step_] : 0;
    ++step_;
    for (std::int64_t r = 0; r < rows; ++r) logits_[static_cast<std::size_t>(r * vocab_ + next)] = 100.0f;
    return logits_;
  }
  void reset() { pos_ = 0; step_ = 0; fed_.clear(); }
  void reserve(std::int64_t) {}
  void broadcast_row0(std::int64_t rows) { broadcast_rows_ = rows; }
  std::int64_t vocab_size() const { return vocab_; }
  std::int64_t max_rows() const { return 4; }
  std::int64_t max_positions() const { return max_positions_; }
  std::int64_t position() const { return pos_; }

  std::vector<std::vector<std::int32_t>> fed_;
  std::int64_t broadcast_rows_ = 0;

 private:
  std::vector<std::int32_t> script_;
  std::int64_t vocab_, max_positions_, pos_ = 0;
  std::size_t step_ = 0;
  std::vector<float> logits_;
};

}  // namespace engine_test
