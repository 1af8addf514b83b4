// SlotDecoder (a KV-cache pool of slots at their own positions) against GptDecoder running each
// sequence alone, and the per-token-position forms of the cached attention and rotary kernels.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "engine_test_util.hpp"
#include "nanochat/backend/cpu.hpp"
#include "nanochat/model/gpt_decoder.hpp"
#include "nanochat/model/slot_decoder.hpp"
#include "nanochat/model/weights_file.hpp"

using namespace nanochat;
using nanochat::cpu::Cpu;

namespace {

double max_relative_error(std::span<const float> got, std::span<const float> want) {
  REQUIRE(got.size() == want.size());
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(got[i]) - want[i]));
    norm = std::max(norm, std::abs(static_cast<double>(want[i])));
  }
  return diff / norm;
}

std::vector<float> copy_of(std::span<const float> v) { return {v.begin(), v.end()}; }

std::vector<std::int32_t> sequence(std::int64_t id, std::int64_t length) {
  std::vector<std::int32_t> s;
  for (std::int64_t i = 0; i < length; ++i)
    s.push_back(static_cast<std::int32_t>((i * 37 + id * 101 + 11) % engine_test::byte_vocab));
  return s;
}

// One slot's part of a step in a scenario: `count` more tokens of sequence `seq`.
struct Part {
  std::int64_t slot, seq, count;
};

// Runs the steps through one SlotDecoder; every item's logits are compared with a GptDecoder of
// one row fed the same sequence in the same chunks. A part whose slot held another sequence
// frees it first (a slot reused), and a part that starts a sequence on a slot restarts it.
template <Config C, class W, class KV>
void check_slots_equal_alone(const GptWeights<C, Cpu, W>& w, const std::vector<std::vector<Part>>& steps,
                             double tolerance) {
  Cpu cpu;
  constexpr std::int64_t slots = 4, positions = 96, vocab = engine_test::byte_vocab;
  SlotDecoder<C, Cpu, W, KV> pool(cpu, w, slots, positions, 32);
  std::map<std::int64_t, std::unique_ptr<GptDecoder<C, Cpu, W, KV>>> alone;  // per sequence
  std::map<std::int64_t, std::int64_t> fed;                                  // per sequence
  std::vector<std::int64_t> slot_seq(slots, -1);
  double worst = 0;
  for (std::size_t s = 0; s < steps.size(); ++s) {
    CAPTURE(s);
    std::vector<std::vector<std::int32_t>> chunks;
    std::vector<SlotTokens> work;
    for (const Part& p : steps[s]) {
      if (slot_seq[static_cast<std::size_t>(p.slot)] != p.seq) {
        pool.free(p.slot);
        slot_seq[static_cast<std::size_t>(p.slot)] = p.seq;
        fed[p.seq] = 0;
        alone[p.seq] = std::make_unique<GptDecoder<C, Cpu, W, KV>>(cpu, w, 1, positions, 32);
      }
      const auto all = sequence(p.seq, positions);
      chunks.emplace_back(all.begin() + fed[p.seq], all.begin() + fed[p.seq] + p.count);
      fed[p.seq] += p.count;
    }
    for (std::size_t i = 0; i < chunks.size(); ++i) work.push_back({steps[s][i].slot, chunks[i]});
    const std::span<const float> logits = pool.step(work);
    REQUIRE(logits.size() == work.size() * static_cast<std::size_t>(vocab));
    for (std::size_t i = 0; i < work.size(); ++i) {
      const Part& p = steps[s][i];
      CAPTURE(p.slot);
      CAPTURE(p.seq);
      CHECK(pool.length(p.slot) == fed[p.seq]);
      const std::span<const float> want = alone[p.seq]->forward(chunks[i], 1);
      const double err = max_relative_error(logits.subspan(i * vocab, vocab), want);
      CHECK(err <= tolerance);
      worst = std::max(worst, err);
    }
  }
  MESSAGE("largest relative difference from the sequences run alone: ", worst);
}

template <Config C>
void randomize(Cpu& cpu, GptWeights<C, Cpu>& w, std::uint64_t seed, bool rounded) {
  cpu::fill_normal(cpu, w.flat(), seed, 0, 0.0f, 0.4f);
  if (rounded)
    for (std::int64_t i = 0; i < w.flat().numel(); ++i) w.flat().data()[i] = round_to_bf16(w.flat().data()[i]);
}

// Slots at different positions in one step, prefill chunks beside decode tokens, a freed slot
// reused by a new sequence (slot 2: sequence 2, then 5), a slot idle for some steps (slot 3),
// and a step of more than linear_forward's streaming rows (gemm) beside steps of fewer.
const std::vector<std::vector<Part>> scenario{
    {{0, 0, 7}, {2, 2, 3}},
    {{0, 0, 1}, {2, 2, 5}, {1, 1, 4}},
    {{0, 0, 1}, {1, 1, 1}, {2, 2, 1}, {3, 3, 20}},
    {{2, 2, 1}, {0, 0, 1}},
    {{2, 5, 9}, {1, 1, 1}, {0, 0, 1}},
    {{0, 0, 1}, {1, 1, 1}, {2, 5, 1}, {3, 3, 1}},
    {{3, 3, 1}, {1, 1, 12}, {2, 5, 1}},
    {{1, 1, 1}, {2, 5, 1}, {3, 3, 1}, {0, 0, 1}},
};

}  // namespace

// fp32: the per-token math is GptDecoder's; only linear_forward's blocking may differ between a
// step of n tokens and one of a single sequence's (the streaming kernel below 17 rows, gemm
// above, with other summation orders), which moves logits by float rounding, ~1e-6 relative.
TEST_CASE("slot decoder: each slot's logits equal GptDecoder's for its sequence alone (fp32)") {
  Cpu cpu;
  using C = GptConfig<2, 4, 2, 16>;
  GptWeights<C, Cpu> w(cpu, engine_test::byte_vocab);
  randomize(cpu, w, 3, false);
  check_slots_equal_alone<C, float, float>(w, scenario, 1e-5);
  using M = GptConfig<3, 3, 1, 8>;  // one KV head for three query heads
  GptWeights<M, Cpu> wm(cpu, engine_test::byte_vocab);
  randomize(cpu, wm, 4, false);
  check_slots_equal_alone<M, float, float>(wm, scenario, 1e-5);
}

// bf16: the same, over bf16 weights with an fp32 or a bf16 cache. Both sides round K and V the
// same way as they are written, so the tolerance stays fp32's.
TEST_CASE("slot decoder: bf16 weights with fp32 and bf16 caches equal GptDecoder's alone") {
  Cpu cpu;
  using C = GptConfig<2, 4, 2, 16>;
  GptWeights<C, Cpu> w32(cpu, engine_test::byte_vocab);
  randomize(cpu, w32, 5, true);
  GptWeights<C, Cpu, bf16> w16(cpu, engine_test::byte_vocab);
  convert_weights(cpu, w16, w32);
  check_slots_equal_alone<C, bf16, float>(w16, scenario, 1e-5);
  check_slots_equal_alone<C, bf16, bf16>(w16, scenario, 1e-5);
}

// 20 slots decoding greedily at once: every step has more rows than the streaming kernel takes,
// so every Linear runs on the weights the decoder packed at construction (where this machine runs
// the packed product); each slot's tokens are those of its prompt decoded alone (one row: the
// streaming kernel on the weights as stored). The two sum in different orders, so every argmax
// alone must stand far above the ~1e-6 relative difference for the tokens to be compared exactly.
TEST_CASE("slot decoder: 20 slots decoding greedily on packed weights give each prompt's tokens alone") {
  Cpu cpu;
  using C = GptConfig<2, 4, 2, 16>;
  constexpr std::int64_t slots = 20, prompt = 5, steps = 12, positions = prompt + steps, vocab = engine_test::byte_vocab;
  GptWeights<C, Cpu> w32(cpu, vocab);
  randomize(cpu, w32, 9, true);
  GptWeights<C, Cpu, bf16> w(cpu, vocab);
  convert_weights(cpu, w, w32);
  SlotDecoder<C, Cpu, bf16> pool(cpu, w, slots, positions, slots * prompt);
  const bool packed = pool.packed_weight_bytes() > 0;
  CHECK(packed == cpu::prepacked::runs<bf16>());
  if (!packed) MESSAGE("this machine does not run the packed product: the weights as stored are compared");
  const auto greedy = [](std::span<const float> logits) {
    return static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  };
  std::vector<std::vector<std::int32_t>> prompts, batched(slots), alone(slots);
  for (std::int64_t s = 0; s < slots; ++s) prompts.push_back(sequence(s, prompt));
  std::vector<SlotTokens> work;
  for (std::int64_t s = 0; s < slots; ++s) work.push_back({s, prompts[static_cast<std::size_t>(s)]});
  for (std::int64_t t = 0; t < steps; ++t) {
    const std::span<const float> logits = pool.step(work);
    for (std::int64_t s = 0; s < slots; ++s)
      batched[static_cast<std::size_t>(s)].push_back(greedy(logits.subspan(s * vocab, vocab)));
    for (std::int64_t s = 0; s < slots; ++s) {
      const auto i = static_cast<std::size_t>(s);
      work[i].tokens = std::span(&batched[i].back(), 1);
    }
  }
  double min_margin = 1e9, max_logit = 0;
  for (std::int64_t s = 0; s < slots; ++s) {
    GptDecoder<C, Cpu, bf16> one(cpu, w, 1, positions, prompt);
    std::span<const float> logits = one.forward(prompts[static_cast<std::size_t>(s)], 1);
    for (std::int64_t t = 0; t < steps; ++t) {
      const std::int32_t token = greedy(logits);
      min_margin = std::min(min_margin, engine_test::argmax_margin(logits));
      for (const float x : logits) max_logit = std::max(max_logit, std::abs(static_cast<double>(x)));
      alone[static_cast<std::size_t>(s)].push_back(token);
      if (t + 1 < steps) logits = one.forward(std::vector<std::int32_t>{token}, 1);
    }
  }
  MESSAGE("smallest argmax margin ", min_margin, ", largest |logit| ", max_logit);
  REQUIRE(min_margin > 1e-4 * max_logit);
  for (std::int64_t s = 0; s < slots; ++s) {
    CAPTURE(s);
    CHECK(batched[static_cast<std::size_t>(s)] == alone[static_cast<std::size_t>(s)]);
  }
}

TEST_CASE("slot decoder: a copied prefix continues like the sequence computed from the start") {
  Cpu cpu;
  using C = GptConfig<2, 4, 2, 16>;
  GptWeights<C, Cpu> w(cpu, engine_test::byte_vocab);
  randomize(cpu, w, 7, false);
  SlotDecoder<C, Cpu> dec(cpu, w, 3, 64, 32);
  const auto seq = sequence(1, 30);
  const std::span<const std::int32_t> all(seq);
  dec.step(std::vector<SlotTokens>{{0, all.first(20)}});
  dec.copy_prefix(0, 2, 12);  // slot 2: the first 12 positions of slot 0
  CHECK(dec.length(2) == 12);
  const std::vector<float> from_copy = copy_of(dec.step(std::vector<SlotTokens>{{2, all.subspan(12)}}));
  const std::vector<float> from_start = copy_of(dec.step(std::vector<SlotTokens>{{1, all}}));
  CHECK(dec.length(2) == 30);
  CHECK(max_relative_error(from_copy, from_start) <= 1e-5);
  // Keeping a slot's own prefix (from == to) drops the positions after it.
  dec.copy_prefix(1, 1, 25);
  CHECK(dec.length(1) == 25);
  CHECK(max_relative_error(copy_of(dec.step(std::vector<SlotTokens>{{1, all.subspan(25)}})), from_start) <= 1e-5);
  // A different sequence after the copied prefix gives other logits (the test can tell).
  auto other = seq;
  other[20] = (other[20] + 1) % engine_test::byte_vocab;
  dec.copy_prefix(0, 2, 12);
  CHECK(max_relative_error(copy_of(dec.step(std::vector<SlotTokens>{{2, std::span<const std::int32_t>(other).subspan(12)}})),
                           from_start) > 1e-3);
}

TEST_CASE("slot decoder: bad steps are refused with the slot named") {
  Cpu cpu;
  using C = GptConfig<1, 2, 2, 8>;
  GptWeights<C, Cpu> w(cpu, engine_test::byte_vocab);
  randomize(cpu, w, 1, false);
  SlotDecoder<C, Cpu> dec(cpu, w, 2, 8, 8);
  const std::vector<std::int32_t> three{1, 2, 3}, nine(9, 1), bad{1, 300};
  CHECK_THROWS_WITH_AS(dec.step(std::vector<SlotTokens>{{0, three}, {0, three}}),
                       doctest::Contains("slot 0 appears twice"), Error);
  CHECK_THROWS_WITH_AS(dec.step(std::vector<SlotTokens>{{2, three}}), doctest::Contains("slot 2 outside"), Error);
  CHECK_THROWS_WITH_AS(dec.step(std::vector<SlotTokens>{{0, nine}}), doctest::Contains("exceed the step"), Error);
  CHECK_THROWS_WITH_AS(dec.step(std::vector<SlotTokens>{{1, bad}}), doctest::Contains("token id 300"), Error);
  dec.step(std::vector<SlotTokens>{{1, three}});
  dec.step(std::vector<SlotTokens>{{1, three}});
  CHECK_THROWS_WITH_AS(dec.step(std::vector<SlotTokens>{{1, three}}), doctest::Contains("exceed the context"), Error);
  CHECK(dec.length(1) == 6);  // a refused step changes nothing
  dec.free(1);
  CHECK(dec.length(1) == 0);
}
