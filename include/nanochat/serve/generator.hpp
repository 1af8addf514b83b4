#pragma once
// What the chat server asks of whatever generates its replies: a request's prompt and sampling,
// its tokens handed back one at a time as they are made, and an early stop. The HTTP side is
// written against the Generator concept only, so a generator that runs one request at a time and
// one that batches many over a pool of KV-cache slots are interchangeable behind it.

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <vector>

#include "nanochat/engine/sampling.hpp"

namespace nanochat::serve {

struct GenerationRequest {
  std::vector<std::int32_t> prompt;  // the conversation rendered for completion
  std::int64_t max_tokens = 0;       // most tokens to emit, tool tokens included; 0: until the context is full
  engine::SamplingOptions sampling{};  // per request: temperature, top-k, seed
  // A request still queued at its deadline finishes with `timeout` without a token.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

enum class FinishReason {
  stop,        // the model ended its turn (<|assistant_end|> or <|bos|>)
  length,      // max_tokens emitted, or the context is full
  cancelled,   // the sink returned false
  timeout,     // still queued at the deadline
  queue_full,  // refused at once: every slot busy and the wait queue full (HTTP 429)
};

struct GeneratedToken {
  std::int32_t id = 0;
  bool forced = false;  // inserted by the calculator tool, not sampled
};

// Called once per token, on the generator's thread, in order; returning false cancels the
// request, whose slot is free by the next step.
using TokenSink = std::function<bool(const GeneratedToken&)>;

struct GeneratorStats {
  std::int64_t slots = 0;          // requests that can decode at once
  std::int64_t slots_in_use = 0;   // requests decoding now
  std::int64_t queued = 0;         // requests waiting for a slot
  std::int64_t queue_capacity = 0; // waiting requests beyond which a request gets queue_full
  std::int64_t prompt_tokens_reused = 0;  // prompt positions taken from a cached prefix, not computed
};

// generate() blocks the calling thread until the request finishes and may be called from many
// threads at once; stats() is safe to call at any time.
template <class G>
concept Generator = requires(G& g, const G& cg, const GenerationRequest& request, TokenSink sink) {
  { g.generate(request, sink) } -> std::same_as<FinishReason>;
  { cg.stats() } -> std::same_as<GeneratorStats>;
};

}  // namespace nanochat::serve
