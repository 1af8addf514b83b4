#pragma once
// nanochat's calculator tool inside a generated stream (spec §7.3), one state machine per
// sequence, shared by the Engine and the chat server's batched generator so both treat tool
// tokens alike: <|python_start|> opens a block and clears the expression; tokens inside the
// block collect into it; <|python_end|> closes it and, when the expression is non-empty and the
// calculator has a result, queues <|output_start|> result-tokens <|output_end|> as forced
// tokens. A forced token replaces the sampled one and has mask 0 (sampled tokens have mask 1).
// The sequence completes at <|assistant_end|> or <|bos|>.

#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

#include "nanochat/engine/calculator.hpp"
#include "nanochat/tokenizer/tokenizer.hpp"

namespace nanochat::engine {

// The special tokens the state machine reacts to.
struct ToolTokens {
  std::int32_t bos, assistant_end, python_start, python_end, output_start, output_end;

  static ToolTokens from(const tokenizer::Tokenizer& tok) {
    const auto id = [&](const char* name) { return static_cast<std::int32_t>(tok.encode_special(name)); };
    return {id("<|bos|>"),          id("<|assistant_end|>"), id("<|python_start|>"),
            id("<|python_end|>"),   id("<|output_start|>"),  id("<|output_end|>")};
  }
};

// One row's tool state; advance() applies a sampled token (or a forced one) and returns the
// token that goes out with its mask.
class ToolState {
 public:
  ToolState(const ToolTokens& tokens, const tokenizer::Tokenizer& tok) : t_(&tokens), tok_(&tok) {}

  bool has_forced() const { return !forced_.empty(); }
  bool completed() const { return completed_; }

  std::pair<std::int32_t, std::uint8_t> advance(std::int32_t sampled) {
    std::int32_t token = sampled;
    std::uint8_t mask = 1;
    if (!forced_.empty()) {
      token = forced_.front();
      forced_.pop_front();
      mask = 0;
    }
    if (token == t_->assistant_end || token == t_->bos) completed_ = true;
    if (token == t_->python_start) {
      in_python_ = true;
      expr_.clear();
    } else if (token == t_->python_end && in_python_) {
      in_python_ = false;
      if (!expr_.empty()) {
        const auto result = use_calculator(tok_->decode(expr_));
        if (result) {
          forced_.push_back(t_->output_start);
          for (tokenizer::TokenId id : tok_->encode(*result)) forced_.push_back(static_cast<std::int32_t>(id));
          forced_.push_back(t_->output_end);
        }
      }
      expr_.clear();
    } else if (in_python_) {
      expr_.push_back(static_cast<tokenizer::TokenId>(token));
    }
    return {token, mask};
  }

 private:
  const ToolTokens* t_;
  const tokenizer::Tokenizer* tok_;
  std::deque<std::int32_t> forced_;
  std::vector<tokenizer::TokenId> expr_;
  bool in_python_ = false;
  bool completed_ = false;
};

}  // namespace nanochat::engine
