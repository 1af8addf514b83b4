// SerialGenerator: tokens reach the sink in order with calculator output marked forced, the
// turn's end gives `stop` (its token not handed on), max_tokens gives `length`, a sink that
// returns false cancels; one request decodes at a time, callers wait in a bounded FIFO, a full
// queue answers queue_full at once and a caller still waiting at its deadline gets timeout.

#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/engine_test_util.hpp"
#include "engine/scripted_model.hpp"
#include "nanochat/serve/serial_generator.hpp"

using namespace nanochat;
using engine_test::ScriptedModel;

namespace {

std::vector<std::int32_t> bytes_of(std::string_view text) { return {text.begin(), text.end()}; }

struct Collected {
  std::vector<std::int32_t> ids;
  std::vector<bool> forced;
  serve::TokenSink sink() {
    return [this](const serve::GeneratedToken& t) {
      ids.push_back(t.id);
      forced.push_back(t.forced);
      return true;
    };
  }
};

serve::GenerationRequest request_of(std::vector<std::int32_t> prompt, std::int64_t max_tokens) {
  serve::GenerationRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0.0f;
  return r;
}

}  // namespace

static_assert(serve::Generator<serve::SerialGenerator<ScriptedModel>>);

TEST_CASE("SerialGenerator: tokens in order, calculator output forced, the turn's end is stop and not handed on") {
  const auto tok = engine_test::byte_tokenizer();
  const auto special = [&](const char* name) { return static_cast<std::int32_t>(tok.encode_special(name)); };
  std::vector<std::int32_t> script = bytes_of("x");
  script.push_back(special("<|python_start|>"));
  for (auto b : bytes_of("2+3")) script.push_back(b);
  script.push_back(special("<|python_end|>"));
  script.insert(script.end(), 3, 'z');  // replaced by the forced <|output_start|> 5 <|output_end|>
  script.push_back('!');
  script.push_back(special("<|assistant_end|>"));
  script.push_back('y');  // never reached
  ScriptedModel model(script, engine_test::byte_vocab);
  engine::Engine engine(model, tok);
  serve::SerialGenerator gen(engine, 2);

  Collected got;
  CHECK(gen.generate(request_of(bytes_of("hi"), 100), got.sink()) == serve::FinishReason::stop);
  std::vector<std::int32_t> want = bytes_of("x");
  want.push_back(special("<|python_start|>"));
  for (auto b : bytes_of("2+3")) want.push_back(b);
  want.push_back(special("<|python_end|>"));
  want.push_back(special("<|output_start|>"));
  want.push_back('5');
  want.push_back(special("<|output_end|>"));
  want.push_back('!');
  CHECK(got.ids == want);
  std::vector<bool> forced(want.size(), false);
  forced[6] = forced[7] = forced[8] = true;  // <|output_start|> 5 <|output_end|>
  CHECK(got.forced == forced);
  CHECK(gen.stats().slots == 1);
  CHECK(gen.stats().slots_in_use == 0);
  CHECK(gen.stats().queue_capacity == 2);
}

TEST_CASE("SerialGenerator: max_tokens ends with length, a sink returning false cancels at once") {
  const auto tok = engine_test::byte_tokenizer();
  ScriptedModel model(bytes_of("abcdefgh"), engine_test::byte_vocab);
  engine::Engine engine(model, tok);
  serve::SerialGenerator gen(engine, 0);
  Collected got;
  CHECK(gen.generate(request_of(bytes_of("p"), 3), got.sink()) == serve::FinishReason::length);
  CHECK(got.ids == bytes_of("abc"));

  std::vector<std::int32_t> seen;
  const auto stop_after_two = [&](const serve::GeneratedToken& t) {
    seen.push_back(t.id);
    return seen.size() < 2;
  };
  CHECK(gen.generate(request_of(bytes_of("p"), 0), stop_after_two) == serve::FinishReason::cancelled);
  CHECK(seen == bytes_of("ab"));
  // The context bounds a reply without max_tokens: 4 positions, 1 of them the prompt.
  ScriptedModel short_model(bytes_of("abc"), engine_test::byte_vocab, 4);
  engine::Engine short_engine(short_model, tok);
  serve::SerialGenerator short_gen(short_engine, 0);
  Collected filled;
  CHECK(short_gen.generate(request_of(bytes_of("p"), 0), filled.sink()) == serve::FinishReason::length);
  CHECK(filled.ids.size() == 3);
}

TEST_CASE("SerialGenerator: one request at a time, a bounded FIFO, queue_full when full, timeout at the deadline") {
  const auto tok = engine_test::byte_tokenizer();
  ScriptedModel model(bytes_of("aaaaaaaaaaaaaaaa"), engine_test::byte_vocab);
  engine::Engine engine(model, tok);
  serve::SerialGenerator gen(engine, 1);

  // The first request holds the slot inside its sink until released.
  std::mutex m;
  std::condition_variable cv;
  bool started = false, release = false;
  serve::FinishReason first = serve::FinishReason::stop, second = serve::FinishReason::stop;
  std::vector<int> order;
  std::thread holder([&] {
    first = gen.generate(request_of(bytes_of("p"), 2), [&](const serve::GeneratedToken&) {
      std::unique_lock lock(m);
      if (!started) {
        started = true;
        order.push_back(1);
        cv.notify_all();
      }
      cv.wait(lock, [&] { return release; });
      return true;
    });
  });
  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return started; });
  }
  CHECK(gen.stats().slots_in_use == 1);
  std::thread waiter([&] {
    second = gen.generate(request_of(bytes_of("p"), 1), [&](const serve::GeneratedToken&) {
      std::lock_guard lock(m);
      order.push_back(2);
      return true;
    });
  });
  while (gen.stats().queued != 1) std::this_thread::yield();
  // Slot busy, queue (capacity 1) full: refused without waiting, even with a far deadline.
  Collected refused;
  CHECK(gen.generate(request_of(bytes_of("p"), 1), refused.sink()) == serve::FinishReason::queue_full);
  CHECK(refused.ids.empty());
  {
    std::lock_guard lock(m);
    release = true;
  }
  cv.notify_all();
  holder.join();
  waiter.join();
  CHECK(first == serve::FinishReason::length);
  CHECK(second == serve::FinishReason::length);
  CHECK(order == std::vector<int>{1, 2});
  CHECK(gen.stats().queued == 0);
  CHECK(gen.stats().slots_in_use == 0);

  // A caller still queued at its deadline leaves the queue with timeout and no token.
  serve::SerialGenerator patient(engine, 4);
  started = release = false;
  std::thread busy([&] {
    patient.generate(request_of(bytes_of("p"), 1), [&](const serve::GeneratedToken&) {
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
  serve::GenerationRequest late = request_of(bytes_of("p"), 1);
  late.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
  Collected timed_out;
  CHECK(patient.generate(late, timed_out.sink()) == serve::FinishReason::timeout);
  CHECK(timed_out.ids.empty());
  CHECK(patient.stats().queued == 0);
  {
    std::lock_guard lock(m);
    release = true;
  }
  cv.notify_all();
  busy.join();
}
