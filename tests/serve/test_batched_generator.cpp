// BatchedGenerator: concurrent requests of different prompt lengths (chunked prefill, more
// requests than slots, a shared prefix) give each the Engine's greedy reply alone on a real GPT,
// with every argmax margin asserted far above the ~1e-6 batched rounding; per-request seeds
// reproduce exactly over a model whose logits ignore the batch; the calculator tool per slot;
// cancel frees the slot; queue_full at once and timeout at the deadline; prefix reuse.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/engine_test_util.hpp"
#include "nanochat/backend/cpu.hpp"
#include "nanochat/core/presets.hpp"
#include "nanochat/engine/engine.hpp"
#include "nanochat/model/gpt_decoder.hpp"
#include "nanochat/model/slot_decoder.hpp"
#include "nanochat/serve/batched_generator.hpp"
#include "nanochat/serve/serial_generator.hpp"
#include "serve/scripted_slot_model.hpp"

using namespace nanochat;
using nanochat::cpu::Cpu;
using serve_test::ScriptedSlotModel;

static_assert(serve::Generator<serve::BatchedGenerator<ScriptedSlotModel>>);
static_assert(serve::SlotModel<SlotDecoder<NanochatConfig<2>, Cpu>>);

namespace {

using Tiny = NanochatConfig<2>;

std::vector<std::int32_t> bytes_of(std::string_view text) { return {text.begin(), text.end()}; }

std::vector<std::int32_t> prompt_of(std::int64_t id, std::int64_t length) {
  std::vector<std::int32_t> p;
  for (std::int64_t i = 0; i < length; ++i) p.push_back(static_cast<std::int32_t>((i * 37 + id * 101 + 11) % 256));
  return p;
}

serve::GenerationRequest request_of(std::vector<std::int32_t> prompt, std::int64_t max_tokens, float temperature = 0.0f,
                                    std::uint64_t seed = 42, int top_k = 0) {
  serve::GenerationRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling = {temperature, top_k, seed};
  return r;
}

struct Reply {
  std::vector<std::int32_t> ids;
  std::vector<bool> forced;
  serve::FinishReason reason = serve::FinishReason::length;
  bool operator==(const Reply&) const = default;
};

template <serve::Generator G>
Reply run(G& gen, const serve::GenerationRequest& r) {
  Reply out;
  out.reason = gen.generate(r, [&](const serve::GeneratedToken& t) {
    out.ids.push_back(t.id);
    out.forced.push_back(t.forced);
    return true;
  });
  return out;
}

// Runs every request on its own thread at once. The first request's first token waits until all
// of them are in the generator (decoding or queued), so they share the batch from then on; the
// peak slots in use is returned through `peak`.
template <class D>
std::vector<Reply> run_together(serve::BatchedGenerator<D>& gen, const std::vector<serve::GenerationRequest>& requests,
                                std::int64_t* peak = nullptr) {
  std::vector<Reply> replies(requests.size());
  std::vector<std::thread> threads;
  std::int64_t most = 0;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    threads.emplace_back([&, i] {
      Reply& out = replies[i];
      out.reason = gen.generate(requests[i], [&](const serve::GeneratedToken& t) {
        if (i == 0 && out.ids.empty()) {
          for (;;) {
            const serve::GeneratorStats s = gen.stats();
            if (s.slots_in_use + s.queued == static_cast<std::int64_t>(requests.size())) break;
            std::this_thread::yield();
          }
        }
        most = std::max(most, gen.stats().slots_in_use);  // sinks run on the one scheduler thread
        out.ids.push_back(t.id);
        out.forced.push_back(t.forced);
        return true;
      });
    });
    if (i == 0) {  // the first is admitted alone, so its wait above is reached
      while (gen.stats().slots_in_use == 0) std::this_thread::yield();
    }
  }
  for (auto& t : threads) t.join();
  if (peak) *peak = most;
  return replies;
}

struct TinyGpt {
  Cpu cpu;
  GptWeights<Tiny, Cpu> weights{cpu, engine_test::byte_vocab};
  TinyGpt() { cpu::fill_normal(cpu, weights.flat(), 7, 0, 0.0f, 0.05f); }
};

}  // namespace

TEST_CASE("BatchedGenerator: concurrent greedy replies of different prompt lengths equal the Engine's alone on a GPT") {
  TinyGpt gpt;
  const auto tok = engine_test::byte_tokenizer();
  constexpr std::int64_t positions = 128, max_tokens = 24;
  // Six requests over four slots (two wait, then take freed slots); prompts up to 3 step budgets
  // long (chunked prefill beside decoding slots); the last shares the third's first 30 tokens
  // (copied from that slot's cache as far as it is cached when the last is admitted: the threads'
  // arrival order varies).
  std::vector<serve::GenerationRequest> requests;
  for (std::int64_t len : {3, 17, 40, 9, 25}) requests.push_back(request_of(prompt_of(len, len), max_tokens));
  std::vector<std::int32_t> shared = prompt_of(40, 40);
  shared.resize(30);
  for (std::int32_t t : prompt_of(99, 8)) shared.push_back(t);
  requests.push_back(request_of(shared, max_tokens));

  // Alone: the Engine over GptDecoder, one request at a time; each step's argmax margin from a
  // batch-1 replay of the same tokens.
  GptDecoder<Tiny, Cpu> alone_model(gpt.cpu, gpt.weights, 1, positions);
  engine::Engine engine(alone_model, tok);
  serve::SerialGenerator serial(engine, 0);
  std::vector<Reply> alone;
  double min_margin = 1e9, max_logit = 0;
  for (const auto& r : requests) {
    alone.push_back(run(serial, r));
    GptDecoder<Tiny, Cpu> replay(gpt.cpu, gpt.weights, 1, positions);
    std::span<const float> logits = replay.forward(r.prompt, 1);
    std::vector<std::int32_t> made = alone.back().ids;
    if (alone.back().reason == serve::FinishReason::stop) made.push_back(static_cast<std::int32_t>(tok.encode_special("<|assistant_end|>")));
    for (std::int32_t t : made) {
      CHECK(std::max_element(logits.begin(), logits.end()) - logits.begin() == t);
      min_margin = std::min(min_margin, engine_test::argmax_margin(logits));
      for (float x : logits) max_logit = std::max(max_logit, std::abs(static_cast<double>(x)));
      logits = replay.forward(std::span<const std::int32_t>(&t, 1), 1);
    }
  }
  // SlotDecoder's logits are within 1e-6 relative of GptDecoder's whatever the batch
  // (tests/engine/test_slot_decoder.cpp): margins 100x that cannot flip an argmax, so the
  // replies below must be equal exactly.
  MESSAGE("smallest argmax margin ", min_margin, ", largest |logit| ", max_logit);
  REQUIRE(min_margin > 1e-4 * max_logit);

  SlotDecoder<Tiny, Cpu> decoder(gpt.cpu, gpt.weights, 4, positions, 16);
  serve::BatchedGenerator gen(decoder, tok, 8);
  std::int64_t peak = 0;
  const std::vector<Reply> together = run_together(gen, requests, &peak);
  CHECK(peak == 4);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    CAPTURE(i);
    CHECK(together[i] == alone[i]);
  }
  CHECK(gen.stats().slots_in_use == 0);
  CHECK(gen.stats().queued == 0);
}

TEST_CASE("BatchedGenerator: a sampled request alone gives the Engine's tokens for the same seed, bit for bit") {
  TinyGpt gpt;
  const auto tok = engine_test::byte_tokenizer();
  GptDecoder<Tiny, Cpu> alone_model(gpt.cpu, gpt.weights, 1, 128);
  engine::Engine engine(alone_model, tok);
  serve::SerialGenerator serial(engine, 0);
  SlotDecoder<Tiny, Cpu> decoder(gpt.cpu, gpt.weights, 3, 128, 64);
  serve::BatchedGenerator gen(decoder, tok, 0);
  for (std::uint64_t seed : {1, 2, 3}) {
    const auto r = request_of(prompt_of(static_cast<std::int64_t>(seed), 20), 32, 1.0f, seed, 20);
    CAPTURE(seed);
    CHECK(run(gen, r) == run(serial, r));
  }
}

TEST_CASE("BatchedGenerator: per-request seeds and options reproduce exactly beside other requests") {
  const auto tok = engine_test::byte_tokenizer();
  std::vector<serve::GenerationRequest> requests;
  for (std::uint64_t i = 0; i < 7; ++i)
    requests.push_back(request_of(prompt_of(static_cast<std::int64_t>(i % 3), 5 + 7 * static_cast<std::int64_t>(i)),
                                  20, 0.5f + 0.25f * static_cast<float>(i % 3), 100 + i % 4, static_cast<int>(i % 2) * 10));
  ScriptedSlotModel model(3, 200, 12, engine_test::byte_vocab);
  serve::BatchedGenerator gen(model, tok, 8);
  const std::vector<Reply> together = run_together(gen, requests);
  bool some_differ = false;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    CAPTURE(i);
    ScriptedSlotModel fresh(1, 200, 12, engine_test::byte_vocab);
    serve::BatchedGenerator one(fresh, tok, 0);
    const Reply alone = run(one, requests[i]);
    CHECK(!alone.ids.empty());
    CHECK(together[i] == alone);
    some_differ = some_differ || together[i].ids != together[0].ids;
  }
  CHECK(some_differ);
  // Steps mixed decoding slots with prefill chunks, none over the budget.
  bool mixed = false;
  for (const auto& step : model.steps) {
    std::int64_t ones = 0, chunks = 0;
    for (const auto& [slot, n] : step) (n == 1 ? ones : chunks) += 1;
    mixed = mixed || (ones > 0 && chunks > 0);
  }
  CHECK(mixed);
}

TEST_CASE("BatchedGenerator: the calculator runs per slot, its output forced, and the turn's end is stop, not handed on") {
  const auto tok = engine_test::byte_tokenizer();
  const auto special = [&](const char* name) { return static_cast<std::int32_t>(tok.encode_special(name)); };
  std::vector<std::int32_t> script = bytes_of("x");
  script.push_back(special("<|python_start|>"));
  for (auto b : bytes_of("6*7")) script.push_back(b);
  script.push_back(special("<|python_end|>"));
  script.insert(script.end(), 4, 'z');  // replaced by the forced <|output_start|> 4 2 <|output_end|>
  script.push_back('!');
  script.push_back(special("<|assistant_end|>"));
  std::vector<std::int32_t> want = bytes_of("x");
  want.push_back(special("<|python_start|>"));
  for (auto b : bytes_of("6*7")) want.push_back(b);
  want.push_back(special("<|python_end|>"));
  want.push_back(special("<|output_start|>"));
  want.push_back('4');
  want.push_back('2');
  want.push_back(special("<|output_end|>"));
  want.push_back('!');
  std::vector<bool> forced(want.size(), false);
  forced[6] = forced[7] = forced[8] = forced[9] = true;

  ScriptedSlotModel model(3, 100, 8, engine_test::byte_vocab, script, special("<|assistant_start|>"));
  serve::BatchedGenerator gen(model, tok, 4);
  // Three requests with prompts of different lengths reach their tool calls at different steps.
  std::vector<serve::GenerationRequest> requests;
  for (std::int64_t len : {1, 9, 20}) {
    auto p = prompt_of(len, len);
    p.push_back(special("<|assistant_start|>"));
    requests.push_back(request_of(p, 100));
  }
  for (const Reply& r : run_together(gen, requests)) {
    CHECK(r.reason == serve::FinishReason::stop);
    CHECK(r.ids == want);
    CHECK(r.forced == forced);
  }
}

TEST_CASE("BatchedGenerator: a sink returning false cancels and frees the slot, max_tokens and the context give length") {
  const auto tok = engine_test::byte_tokenizer();
  ScriptedSlotModel model(1, 40, 8, engine_test::byte_vocab);
  serve::BatchedGenerator gen(model, tok, 0);
  std::vector<std::int32_t> seen;
  const auto stop_after_two = [&](const serve::GeneratedToken& t) {
    seen.push_back(t.id);
    return seen.size() < 2;
  };
  CHECK(gen.generate(request_of(prompt_of(1, 5), 30), stop_after_two) == serve::FinishReason::cancelled);
  CHECK(seen.size() == 2);
  CHECK(gen.stats().slots_in_use == 0);
  const std::size_t steps = model.steps.size();
  CHECK(steps == 2);  // the prefill and one decode: nothing ran after the cancel
  // The one slot serves the next request, from a clean start (its reply equals a fresh model's).
  const auto next = request_of(prompt_of(2, 7), 6, 1.0f, 9);
  const Reply got = run(gen, next);
  CHECK(got.reason == serve::FinishReason::length);
  CHECK(got.ids.size() == 6);
  ScriptedSlotModel fresh(1, 40, 8, engine_test::byte_vocab);
  serve::BatchedGenerator one(fresh, tok, 0);
  CHECK(run(one, next) == got);
  CHECK_THROWS_AS(run(gen, request_of(prompt_of(3, 40), 1)), Error);  // no room after the prompt
  // Without max_tokens the context bounds the reply: 40 positions, 7 of them the prompt.
  const auto start = static_cast<std::int32_t>(tok.encode_special("<|assistant_start|>"));
  ScriptedSlotModel endless(1, 40, 8, engine_test::byte_vocab, bytes_of(std::string(64, 'a')), start);
  serve::BatchedGenerator filling(endless, tok, 0);
  auto prompt = prompt_of(3, 6);
  prompt.push_back(start);
  const Reply full = run(filling, request_of(prompt, 0));
  CHECK(full.reason == serve::FinishReason::length);
  CHECK(full.ids == bytes_of(std::string(33, 'a')));
}

TEST_CASE("BatchedGenerator: queue_full at once when slots and queue are taken, timeout when still queued at the deadline") {
  const auto tok = engine_test::byte_tokenizer();
  ScriptedSlotModel model(2, 100, 8, engine_test::byte_vocab);
  serve::BatchedGenerator gen(model, tok, 1);
  // The first request holds the scheduler inside its sink until released, so nothing else is
  // admitted meanwhile.
  std::mutex m;
  std::condition_variable cv;
  bool started = false, release = false;
  std::thread holder([&] {
    gen.generate(request_of(prompt_of(1, 3), 2), [&](const serve::GeneratedToken&) {
      std::unique_lock lock(m);
      started = true;
      cv.notify_all();
      cv.wait(lock, [&] { return release; });
      return true;
    });
  });
  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return started; });
  }
  CHECK(gen.stats().slots_in_use == 1);
  // Two slots and a queue of one: two more fit (one for the free slot, one waiting).
  std::vector<std::thread> waiters;
  std::vector<serve::FinishReason> reasons(2, serve::FinishReason::cancelled);
  for (std::size_t i = 0; i < 2; ++i)
    waiters.emplace_back([&, i] { reasons[i] = run(gen, request_of(prompt_of(2, 4), 3)).reason; });
  while (gen.stats().queued != 2) std::this_thread::yield();
  Reply refused = run(gen, request_of(prompt_of(3, 4), 3));
  CHECK(refused.reason == serve::FinishReason::queue_full);
  CHECK(refused.ids.empty());
  {
    std::lock_guard lock(m);
    release = true;
  }
  cv.notify_all();
  holder.join();
  for (auto& t : waiters) t.join();
  CHECK(reasons == std::vector<serve::FinishReason>(2, serve::FinishReason::length));
  CHECK(gen.stats().queued == 0);
  CHECK(gen.stats().slots_in_use == 0);

  ScriptedSlotModel one_slot(1, 100, 8, engine_test::byte_vocab);
  serve::BatchedGenerator patient(one_slot, tok, 4);
  started = release = false;
  std::thread busy([&] {
    patient.generate(request_of(prompt_of(1, 3), 1), [&](const serve::GeneratedToken&) {
      std::unique_lock lock(m);
      started = true;
      cv.notify_all();
      cv.wait(lock, [&] { return release; });
      return true;
    });
  });
  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return started; });
  }
  serve::GenerationRequest late = request_of(prompt_of(2, 3), 1);
  late.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
  const Reply timed_out = run(patient, late);
  CHECK(timed_out.reason == serve::FinishReason::timeout);
  CHECK(timed_out.ids.empty());
  CHECK(patient.stats().queued == 0);
  {
    std::lock_guard lock(m);
    release = true;
  }
  cv.notify_all();
  busy.join();
}

TEST_CASE("BatchedGenerator: a repeated prompt prefix is copied from a slot's cache, not computed again") {
  const auto tok = engine_test::byte_tokenizer();
  ScriptedSlotModel model(2, 200, 64, engine_test::byte_vocab);
  serve::BatchedGenerator gen(model, tok, 0);
  const auto system = prompt_of(5, 50);
  auto first = system, second = system;
  for (auto t : bytes_of("first")) first.push_back(t);
  for (auto t : bytes_of("second")) second.push_back(t);
  const Reply a = run(gen, request_of(first, 4, 1.0f, 3));
  CHECK(gen.stats().prompt_tokens_reused == 0);
  const Reply b = run(gen, request_of(second, 4, 1.0f, 3));
  CHECK(gen.stats().prompt_tokens_reused == 50);
  CHECK(model.steps.back().size() == 1);
  // The second request's prefill fed only its own tail; its reply is what a fresh model gives.
  CHECK(model.steps[model.steps.size() - 4] == std::vector<std::pair<std::int64_t, std::int64_t>>{{0, 6}});
  ScriptedSlotModel fresh(1, 200, 64, engine_test::byte_vocab);
  serve::BatchedGenerator one(fresh, tok, 0);
  CHECK(run(one, request_of(second, 4, 1.0f, 3)) == b);
  // The same prompt again: all but its last token come from the cache.
  CHECK(run(gen, request_of(second, 4, 1.0f, 3)) == b);
  CHECK(gen.stats().prompt_tokens_reused == 50 + static_cast<std::int64_t>(second.size()) - 1);
  CHECK(!a.ids.empty());
}
