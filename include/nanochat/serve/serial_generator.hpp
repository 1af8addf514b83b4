#pragma once
// A Generator (serve/generator.hpp) that runs one request at a time on an Engine, as nanochat's
// chat_web runs one request per worker: one slot, and a bounded FIFO of callers waiting for it.
// A caller arriving when the slot is busy and the queue is full gets queue_full at once; one
// still waiting at its deadline gets timeout. Tokens reach the sink as the Engine makes them,
// calculator output marked forced; the turn's terminal token (<|assistant_end|> or <|bos|>) is
// not handed to the sink: it ends the reply with `stop`.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>

#include "nanochat/core/error.hpp"
#include "nanochat/engine/engine.hpp"
#include "nanochat/serve/generator.hpp"

namespace nanochat::serve {

template <engine::CachedModel M>
class SerialGenerator {
 public:
  SerialGenerator(engine::Engine<M>& engine, std::int64_t queue_capacity)
      : engine_(&engine), queue_capacity_(queue_capacity) {
    NANOCHAT_CHECK(queue_capacity >= 0, "SerialGenerator: queue capacity ", queue_capacity, " is negative");
  }

  FinishReason generate(const GenerationRequest& request, const TokenSink& sink) {
    {
      std::unique_lock lock(mutex_);
      if (busy_ || !waiting_.empty()) {
        if (static_cast<std::int64_t>(waiting_.size()) >= queue_capacity_) return FinishReason::queue_full;
        const std::uint64_t ticket = next_ticket_++;
        waiting_.push_back(ticket);
        const bool my_turn = turn_.wait_until(lock, request.deadline, [&] { return !busy_ && waiting_.front() == ticket; });
        if (!my_turn) {
          std::erase(waiting_, ticket);
          turn_.notify_all();  // the caller behind this one may now be first
          return FinishReason::timeout;
        }
        waiting_.pop_front();
      }
      busy_ = true;
    }
    const SlotRelease release{this};
    return run(request, sink);
  }

  GeneratorStats stats() const {
    std::lock_guard lock(mutex_);
    return {1, busy_ ? 1 : 0, static_cast<std::int64_t>(waiting_.size()), queue_capacity_, 0};
  }

 private:
  struct SlotRelease {
    SerialGenerator* g;
    ~SlotRelease() {
      {
        std::lock_guard lock(g->mutex_);
        g->busy_ = false;
      }
      g->turn_.notify_all();
    }
  };

  FinishReason run(const GenerationRequest& request, const TokenSink& sink) {
    engine::GenerateOptions options;
    options.max_tokens = request.max_tokens;
    options.sampling = request.sampling;
    const engine::ToolTokens& tools = engine_->tool_tokens();
    FinishReason reason = FinishReason::length;  // unless the turn ends or the sink stops it
    engine_->generate(request.prompt, options,
                      [&](std::span<const std::int32_t> tokens, std::span<const std::uint8_t> masks) {
                        if (tokens[0] == tools.assistant_end || tokens[0] == tools.bos) {
                          reason = FinishReason::stop;
                          return false;
                        }
                        if (!sink(GeneratedToken{tokens[0], masks[0] == 0})) {
                          reason = FinishReason::cancelled;
                          return false;
                        }
                        return true;
                      });
    return reason;
  }

  engine::Engine<M>* engine_;
  std::int64_t queue_capacity_;
  mutable std::mutex mutex_;
  std::condition_variable turn_;
  std::deque<std::uint64_t> waiting_;  // tickets in arrival order
  std::uint64_t next_ticket_ = 0;
  bool busy_ = false;
};

}  // namespace nanochat::serve
