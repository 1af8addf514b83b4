#pragma once
// The inference Engine (spec §7.3): prefill a prompt once, broadcast its cache to N rows, decode
// the rows in parallel with seeded sampling, and run nanochat's calculator tool inside the
// stream. Generic over any model with a cached forward (the CachedModel concept), e.g.
// GptDecoder; the tokenizer turns tool expressions into text and results into tokens.
//
// Each row runs the calculator tool state machine (engine/tool_state.hpp); a row completes at
// <|assistant_end|> or <|bos|> and is still fed afterwards, as nanochat does. Unlike nanochat at
// f37d45c (which broadcasts one first token to every row) each row samples its own first token,
// as nanochat's later versions do.

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <span>
#include <vector>

#include "nanochat/engine/sampling.hpp"
#include "nanochat/engine/tool_state.hpp"
#include "nanochat/tokenizer/tokenizer.hpp"

namespace nanochat::engine {

// A model the Engine can drive: forward(ids of rows x T, rows) appends to its KV cache and
// returns each row's last-token logits [rows, V]; broadcast_row0 copies a batch-1 prefill.
template <class M>
concept CachedModel = requires(M& m, const M& cm, std::span<const std::int32_t> ids, std::int64_t n) {
  { m.forward(ids, n) } -> std::convertible_to<std::span<const float>>;
  m.reset();
  m.reserve(n);
  m.broadcast_row0(n);
  { cm.vocab_size() } -> std::convertible_to<std::int64_t>;
  { cm.max_rows() } -> std::convertible_to<std::int64_t>;
  { cm.max_positions() } -> std::convertible_to<std::int64_t>;
  { cm.position() } -> std::convertible_to<std::int64_t>;
};

struct GenerateOptions {
  std::int64_t num_samples = 1;
  std::int64_t max_tokens = 0;  // columns to emit, forced tokens included; 0: until the context is full
  SamplingOptions sampling{};
};

struct GeneratedBatch {
  std::vector<std::vector<std::int32_t>> sequences;  // prompt, then each row's tokens up to its end
  std::vector<std::vector<std::uint8_t>> masks;      // 0 for the prompt and forced tokens
};

template <CachedModel M>
class Engine {
 public:
  Engine(M& model, const tokenizer::Tokenizer& tok)
      : model_(&model), tok_(&tok), tools_(ToolTokens::from(tok)), sampler_(model.vocab_size()) {
    NANOCHAT_CHECK(static_cast<std::int64_t>(tok.vocab_size()) <= model.vocab_size(), "Engine: the tokenizer's ",
                   tok.vocab_size(), " tokens do not fit the model's vocabulary of ", model.vocab_size());
  }

  // Streams one column per step: on_column(tokens[num_samples], masks[num_samples]) -> bool;
  // returning false stops generation (an interrupted reply).
  template <class OnColumn>
    requires std::invocable<OnColumn&, std::span<const std::int32_t>, std::span<const std::uint8_t>>
  void generate(std::span<const std::int32_t> prompt, const GenerateOptions& o, OnColumn&& on_column) {
    const std::int64_t rows = o.num_samples, context = model_->max_positions();
    const auto prompt_len = static_cast<std::int64_t>(prompt.size());
    NANOCHAT_CHECK(prompt_len > 0, "Engine::generate: the prompt is empty");
    NANOCHAT_CHECK(prompt_len < context, "Engine::generate: the prompt has ", prompt_len,
                   " tokens, more than the context of ", context, " positions leaves room for");
    NANOCHAT_CHECK(rows >= 1 && rows <= model_->max_rows(), "Engine::generate: ", rows,
                   " samples, the model was sized for at most ", model_->max_rows());
    NANOCHAT_CHECK(o.max_tokens >= 0, "Engine::generate: max_tokens ", o.max_tokens, " is negative");
    const std::int64_t room = context - prompt_len;
    const std::int64_t columns = o.max_tokens == 0 ? room : std::min(o.max_tokens, room);

    model_->reset();
    // An explicit max_tokens is reserved up front, so decode never reallocates. "Until the
    // context is full" reserves only the prompt and lets the model grow with the reply: a reply
    // usually ends long before a large context (10 x sequence_len) is full.
    model_->reserve(prompt_len + (o.max_tokens > 0 ? columns : 0));
    std::span<const float> logits = model_->forward(prompt, 1);
    const auto vocab = static_cast<std::size_t>(model_->vocab_size());

    std::vector<ToolState> states(static_cast<std::size_t>(rows), ToolState(tools_, *tok_));
    std::vector<std::int32_t> column(static_cast<std::size_t>(rows));
    std::vector<std::uint8_t> masks(static_cast<std::size_t>(rows));
    for (std::int64_t c = 0; c < columns; ++c) {
      if (c == 1) model_->broadcast_row0(rows);
      if (c > 0) logits = model_->forward(column, rows);
      bool all_done = true;
      for (std::size_t r = 0; r < column.size(); ++r) {
        ToolState& s = states[r];
        // After the prefill every row samples from the prompt's logits (row 0), with its own stream.
        const std::span<const float> row = logits.subspan(c == 0 ? 0 : r * vocab, vocab);
        const std::int32_t sampled = s.has_forced() ? 0 : sampler_.sample(row, o.sampling, r, static_cast<std::uint64_t>(c));
        const auto [token, mask] = s.advance(sampled);
        column[r] = token;
        masks[r] = mask;
        all_done = all_done && s.completed();
      }
      if (!on_column(std::span<const std::int32_t>(column), std::span<const std::uint8_t>(masks))) return;
      if (all_done) return;
    }
  }

  // Every row's prompt (mask 0) then its tokens up to, not including, its first
  // <|assistant_end|> or <|bos|>; stops once every row has ended.
  GeneratedBatch generate_batch(std::span<const std::int32_t> prompt, const GenerateOptions& o) {
    const auto rows = static_cast<std::size_t>(o.num_samples);
    GeneratedBatch out;
    out.sequences.assign(rows, std::vector<std::int32_t>(prompt.begin(), prompt.end()));
    out.masks.assign(rows, std::vector<std::uint8_t>(prompt.size(), 0));
    std::vector<bool> done(rows, false);
    generate(prompt, o, [&](std::span<const std::int32_t> tokens, std::span<const std::uint8_t> masks) {
      bool all = true;
      for (std::size_t r = 0; r < rows; ++r) {
        if (!done[r]) {
          if (tokens[r] == tools_.assistant_end || tokens[r] == tools_.bos) {
            done[r] = true;
          } else {
            out.sequences[r].push_back(tokens[r]);
            out.masks[r].push_back(masks[r]);
          }
        }
        all = all && done[r];
      }
      return !all;
    });
    return out;
  }

  const ToolTokens& tool_tokens() const { return tools_; }

 private:
  M* model_;
  const tokenizer::Tokenizer* tok_;
  ToolTokens tools_;
  Sampler sampler_;
};

}  // namespace nanochat::engine
