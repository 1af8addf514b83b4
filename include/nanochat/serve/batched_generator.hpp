#pragma once
// A Generator (serve/generator.hpp) with continuous batching over a SlotDecoder
// (model/slot_decoder.hpp): requests join and leave the decode batch at every step. One scheduler
// thread owns the decoder; generate() queues its request and blocks until it is done.
//
// Each step the scheduler admits queued requests into free slots, then runs one batched forward
// holding one token for every decoding slot and, in the room left of the decoder's step_tokens,
// the next chunk of each new prompt in arrival order (chunked prefill: a long prompt is spread
// over several steps while running requests keep streaming a token per step). A slot whose prompt
// is complete samples with its request's own options and seed on the Engine's Philox stream
// convention (row 0, draw i for the i-th token, forced tokens counted), runs the calculator tool
// (engine/tool_state.hpp), and hands the token to the sink; the turn's terminal token
// (<|assistant_end|> or <|bos|>) ends it with `stop` and is not handed on, exactly as
// SerialGenerator over the Engine. So a request gives the Engine's tokens for the same seed, up
// to float rounding: batched logits differ from batch-1 ones by ~1e-6 because linear_forward's
// summation order depends on the number of rows in a step.
//
// Admission: a request is queue_full at once when the requests waiting or decoding exceed the
// slots plus the queue capacity; a request still queued at its deadline returns timeout.
// Prefix reuse: a finished slot keeps its cache; a new prompt starts from the longest cached
// prefix it shares with any slot (copied with copy_prefix, or kept in place when that slot is the
// free one it takes), so a repeated system prompt or a conversation's earlier turns are not
// computed again. Every buffer a step uses is sized at construction from the slots and context.

#include <algorithm>
#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/engine/sampling.hpp"
#include "nanochat/engine/tool_state.hpp"
#include "nanochat/model/slot_decoder.hpp"
#include "nanochat/serve/generator.hpp"
#include "nanochat/tokenizer/tokenizer.hpp"

namespace nanochat::serve {

// What the batched generator drives: SlotDecoder's interface (a test can stand in for it).
template <class D>
concept SlotModel = requires(D& d, const D& cd, std::span<const SlotTokens> work, std::int64_t s) {
  { d.step(work) } -> std::convertible_to<std::span<const float>>;
  d.free(s);
  d.copy_prefix(s, s, s);
  { cd.slots() } -> std::convertible_to<std::int64_t>;
  { cd.max_positions() } -> std::convertible_to<std::int64_t>;
  { cd.step_tokens() } -> std::convertible_to<std::int64_t>;
  { cd.vocab_size() } -> std::convertible_to<std::int64_t>;
};

template <SlotModel D>
class BatchedGenerator {
 public:
  BatchedGenerator(D& decoder, const tokenizer::Tokenizer& tok, std::int64_t queue_capacity)
      : decoder_(&decoder),
        tok_(&tok),
        tools_(engine::ToolTokens::from(tok)),
        sampler_(decoder.vocab_size()),
        queue_capacity_(queue_capacity),
        slots_(static_cast<std::size_t>(decoder.slots())) {
    NANOCHAT_CHECK(queue_capacity >= 0, "BatchedGenerator: queue capacity ", queue_capacity, " is negative");
    NANOCHAT_CHECK(static_cast<std::int64_t>(tok.vocab_size()) <= decoder.vocab_size(), "BatchedGenerator: the tokenizer's ",
                   tok.vocab_size(), " tokens do not fit the model's vocabulary of ", decoder.vocab_size());
    for (Slot& s : slots_) s.cached.reserve(static_cast<std::size_t>(decoder.max_positions()));
    work_.reserve(slots_.size());
    work_slots_.reserve(slots_.size());
    prefilling_.reserve(slots_.size());
    admitted_.reserve(slots_.size());
    scheduler_ = std::thread([this] { run(); });
  }
  BatchedGenerator(const BatchedGenerator&) = delete;
  BatchedGenerator& operator=(const BatchedGenerator&) = delete;

  // Requests still queued or decoding end as cancelled.
  ~BatchedGenerator() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    scheduler_.join();
  }

  FinishReason generate(const GenerationRequest& request, const TokenSink& sink) {
    const auto prompt_len = static_cast<std::int64_t>(request.prompt.size());
    NANOCHAT_CHECK(prompt_len > 0, "BatchedGenerator::generate: the prompt is empty");
    NANOCHAT_CHECK(prompt_len < decoder_->max_positions(), "BatchedGenerator::generate: the prompt has ", prompt_len,
                   " tokens, more than the context of ", decoder_->max_positions(), " positions leaves room for");
    NANOCHAT_CHECK(request.max_tokens >= 0, "BatchedGenerator::generate: max_tokens ", request.max_tokens, " is negative");
    Request r;
    r.in = &request;
    r.sink = &sink;
    std::unique_lock lock(mutex_);
    if (stopping_) return FinishReason::cancelled;
    const auto waiting = static_cast<std::int64_t>(queue_.size());
    if (waiting + in_use_ >= static_cast<std::int64_t>(slots_.size()) + queue_capacity_) return FinishReason::queue_full;
    queue_.push_back(&r);
    wake_.notify_all();
    if (!r.changed.wait_until(lock, request.deadline, [&] { return r.state != Request::queued; })) {
      std::erase(queue_, &r);
      return FinishReason::timeout;
    }
    r.changed.wait(lock, [&] { return r.state == Request::done; });
    if (r.error) std::rethrow_exception(r.error);
    return r.reason;
  }

  GeneratorStats stats() const {
    std::lock_guard lock(mutex_);
    GeneratorStats s;
    s.slots = static_cast<std::int64_t>(slots_.size());
    s.slots_in_use = in_use_;
    s.queued = static_cast<std::int64_t>(queue_.size());
    s.queue_capacity = queue_capacity_;
    s.prompt_tokens_reused = reused_;
    return s;
  }

 private:
  // One generate() call, on its caller's stack; the scheduler touches it only under the mutex
  // or while it is running in a slot (when its caller is blocked).
  struct Request {
    const GenerationRequest* in = nullptr;
    const TokenSink* sink = nullptr;
    enum { queued, running, done } state = queued;
    FinishReason reason = FinishReason::length;
    std::exception_ptr error;
    std::condition_variable changed;
  };

  struct Slot {
    Request* request = nullptr;  // null: free
    // The tokens in this slot's KV cache, kept after its request leaves for prefix reuse.
    std::vector<std::int32_t> cached;
    std::int64_t prompt_fed = 0;  // prompt tokens in the cache
    std::int64_t emitted = 0;     // tokens made so far: the next draw's index
    std::int64_t columns = 0;     // most tokens to make
    std::uint64_t arrival = 0;    // admission order, for prefill
    std::int32_t next = 0;        // the token the next decode step feeds
    std::optional<engine::ToolState> tools;
  };

  void run() {
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || in_use_ > 0; });
        if (stopping_) {
          for (Slot& s : slots_)
            if (s.request) finish_locked(s, FinishReason::cancelled);
          for (Request* q : queue_) settle_locked(*q, FinishReason::cancelled);
          queue_.clear();
          return;
        }
        admit_locked();
      }
      for (std::size_t s : admitted_) start(s);
      step();
    }
  }

  // Moves queued requests into free slots: each into the free slot whose cache shares the
  // longest prefix with its prompt, else the one with the least cached (the least to lose).
  void admit_locked() {
    admitted_.clear();
    while (!queue_.empty() && in_use_ < static_cast<std::int64_t>(slots_.size())) {
      Request* r = queue_.front();
      queue_.pop_front();
      std::size_t best = slots_.size();
      std::int64_t best_prefix = -1;
      for (std::size_t s = 0; s < slots_.size(); ++s) {
        if (slots_[s].request) continue;
        const std::int64_t n = common_prefix(slots_[s].cached, r->in->prompt);
        const bool better = n > best_prefix || (n == best_prefix && n == 0 && slots_[s].cached.size() < slots_[best].cached.size());
        if (better) best = s, best_prefix = n;
      }
      r->state = Request::running;
      r->changed.notify_all();
      slots_[best].request = r;
      ++in_use_;
      admitted_.push_back(best);
    }
  }

  static std::int64_t common_prefix(std::span<const std::int32_t> a, std::span<const std::int32_t> b) {
    return std::mismatch(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(std::min(a.size(), b.size())), b.begin()).first -
           a.begin();
  }

  // Sets up slot `s` for its new request, reusing the longest cached prefix of its prompt.
  void start(std::size_t s) {
    Slot& slot = slots_[s];
    const std::vector<std::int32_t>& prompt = slot.request->in->prompt;
    // The slot keeps its own cache when no other slot's (decoding or free) is longer; at least
    // the prompt's last token is computed, for its logits.
    std::size_t from = s;
    std::int64_t best = common_prefix(slot.cached, prompt);
    for (std::size_t o = 0; o < slots_.size(); ++o) {
      if (o == s) continue;
      const std::int64_t n = common_prefix(slots_[o].cached, prompt);
      if (n > best) best = n, from = o;
    }
    const std::int64_t reuse = std::min(best, static_cast<std::int64_t>(prompt.size()) - 1);
    const auto to = static_cast<std::int64_t>(s);
    decoder_->copy_prefix(static_cast<std::int64_t>(from), to, reuse);
    if (from != s) slot.cached.assign(slots_[from].cached.begin(), slots_[from].cached.begin() + reuse);
    slot.cached.resize(static_cast<std::size_t>(reuse));
    const auto room = decoder_->max_positions() - static_cast<std::int64_t>(prompt.size());
    const std::int64_t max_tokens = slot.request->in->max_tokens;
    slot.prompt_fed = reuse;
    slot.emitted = 0;
    slot.columns = max_tokens == 0 ? room : std::min(max_tokens, room);
    slot.arrival = next_arrival_++;
    slot.tools.emplace(tools_, *tok_);
    if (reuse > 0) {
      std::lock_guard lock(mutex_);
      reused_ += reuse;
    }
  }

  // One batched forward: a token for every decoding slot, prompt chunks in the room left.
  void step() {
    work_.clear();
    work_slots_.clear();
    prefilling_.clear();
    for (std::size_t s = 0; s < slots_.size(); ++s) {
      const Slot& slot = slots_[s];
      if (!slot.request) continue;
      if (slot.prompt_fed == static_cast<std::int64_t>(slot.request->in->prompt.size())) {
        work_.push_back({static_cast<std::int64_t>(s), std::span<const std::int32_t>(&slot.next, 1)});
        work_slots_.push_back(s);
      } else {
        prefilling_.push_back(s);
      }
    }
    std::sort(prefilling_.begin(), prefilling_.end(),
              [&](std::size_t a, std::size_t b) { return slots_[a].arrival < slots_[b].arrival; });
    std::int64_t room = decoder_->step_tokens() - static_cast<std::int64_t>(work_.size());
    for (std::size_t s : prefilling_) {
      const Slot& slot = slots_[s];
      const std::span<const std::int32_t> rest = std::span(slot.request->in->prompt).subspan(static_cast<std::size_t>(slot.prompt_fed));
      const auto chunk = static_cast<std::size_t>(std::min<std::int64_t>(room, static_cast<std::int64_t>(rest.size())));
      if (chunk == 0) break;
      work_.push_back({static_cast<std::int64_t>(s), rest.first(chunk)});
      work_slots_.push_back(s);
      room -= static_cast<std::int64_t>(chunk);
    }
    if (work_.empty()) return;

    std::span<const float> logits;
    try {
      logits = decoder_->step(work_);
    } catch (...) {
      // The decoder refused the step (a bug, not a request's fault): fail what was in it.
      std::lock_guard lock(mutex_);
      for (std::size_t s : work_slots_) fail_locked(slots_[s], std::current_exception());
      return;
    }
    const auto vocab = static_cast<std::size_t>(decoder_->vocab_size());
    for (std::size_t i = 0; i < work_.size(); ++i) {
      Slot& slot = slots_[work_slots_[i]];
      const std::span<const std::int32_t> fed = work_[i].tokens;
      slot.cached.insert(slot.cached.end(), fed.begin(), fed.end());  // within the reserved context
      const bool decoding = slot.prompt_fed == static_cast<std::int64_t>(slot.request->in->prompt.size());
      if (!decoding) {
        slot.prompt_fed += static_cast<std::int64_t>(fed.size());
        if (slot.prompt_fed < static_cast<std::int64_t>(slot.request->in->prompt.size())) continue;
      }
      emit(slot, logits.subspan(i * vocab, vocab));
    }
  }

  // Samples (or takes the forced tool token), hands it on, and ends the request when it is over.
  void emit(Slot& slot, std::span<const float> logits) {
    std::optional<FinishReason> end;
    try {
      engine::ToolState& tools = *slot.tools;
      const std::int32_t sampled =
          tools.has_forced() ? 0 : sampler_.sample(logits, slot.request->in->sampling, 0, static_cast<std::uint64_t>(slot.emitted));
      const auto [token, mask] = tools.advance(sampled);
      ++slot.emitted;
      if (token == tools_.assistant_end || token == tools_.bos) {
        end = FinishReason::stop;
      } else if (!(*slot.request->sink)(GeneratedToken{token, mask == 0})) {
        end = FinishReason::cancelled;
      } else if (slot.emitted == slot.columns) {
        end = FinishReason::length;
      } else {
        slot.next = token;
      }
    } catch (...) {
      std::lock_guard lock(mutex_);
      fail_locked(slot, std::current_exception());
      return;
    }
    if (end) {
      std::lock_guard lock(mutex_);
      finish_locked(slot, *end);
    }
  }

  static void settle_locked(Request& r, FinishReason reason) {
    r.reason = reason;
    r.state = Request::done;
    r.changed.notify_all();  // under the mutex: the caller destroys r once it sees `done`
  }
  void finish_locked(Slot& slot, FinishReason reason) {
    settle_locked(*slot.request, reason);
    slot.request = nullptr;
    --in_use_;
  }
  // A slot whose step failed: its cache is not trusted for reuse.
  void fail_locked(Slot& slot, std::exception_ptr error) {
    slot.request->error = std::move(error);
    finish_locked(slot, FinishReason::cancelled);
    slot.cached.clear();
  }

  D* decoder_;
  const tokenizer::Tokenizer* tok_;
  engine::ToolTokens tools_;
  engine::Sampler sampler_;
  std::int64_t queue_capacity_;
  std::vector<Slot> slots_;
  // The scheduler's per-step lists, reserved for every slot at construction.
  std::vector<SlotTokens> work_;
  std::vector<std::size_t> work_slots_, prefilling_, admitted_;
  std::uint64_t next_arrival_ = 0;

  mutable std::mutex mutex_;  // guards the queue, the counters, and the requests' states
  std::condition_variable wake_;
  std::deque<Request*> queue_;
  std::int64_t in_use_ = 0;
  std::int64_t reused_ = 0;
  bool stopping_ = false;
  std::thread scheduler_;  // last: started once everything above is built
};

}  // namespace nanochat::serve
