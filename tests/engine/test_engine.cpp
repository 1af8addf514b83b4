// The Engine and its cached model: cached forward against PyTorch's logits (whole, chunked and
// token-by-token prefill), greedy decoding with the cache against full recomputation without it,
// seeded sampling, the tool state machine end to end, and bad input.

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "engine_test_util.hpp"
#include "scripted_model.hpp"
#include "nanochat/backend/cpu.hpp"
#include "nanochat/engine/engine.hpp"
#include "nanochat/model/gpt.hpp"
#include "nanochat/model/gpt_decoder.hpp"
#include "nanochat/model/weights_file.hpp"

using namespace nanochat;
using namespace nanochat::engine;
using nanochat::cpu::Cpu;

namespace {

std::string fixture(const std::string& name) { return std::string(NANOCHAT_FIXTURES) + "/model/" + name; }
std::int64_t meta(const SafetensorsFile& file, const char* key) { return std::stoll(file.metadata().at(key)); }

double relative_error(std::span<const float> got, std::span<const float> want) {
  REQUIRE(got.size() == want.size());
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    diff += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    norm += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(diff / norm);
}

// Runs chunks of the given lengths through a fresh cache; returns logits as [B, T, V].
template <Config C>
std::vector<float> chunked_logits(GptDecoder<C, Cpu>& dec, const std::vector<std::int32_t>& ids, std::int64_t batch,
                                  std::int64_t seq, std::int64_t vocab, const std::vector<std::int64_t>& chunks) {
  dec.reset();
  std::vector<float> out(static_cast<std::size_t>(batch * seq * vocab));
  std::int64_t begin = 0;
  for (std::int64_t len : chunks) {
    std::vector<std::int32_t> part;
    for (std::int64_t b = 0; b < batch; ++b)
      part.insert(part.end(), ids.begin() + b * seq + begin, ids.begin() + b * seq + begin + len);
    const auto logits = dec.forward_all(part, batch);
    for (std::int64_t b = 0; b < batch; ++b)
      std::copy_n(logits.begin() + b * len * vocab, len * vocab, out.begin() + (b * seq + begin) * vocab);
    begin += len;
  }
  REQUIRE(begin == seq);
  CHECK(dec.position() == seq);
  return out;
}

template <Config C>
void check_cached_against_pytorch(const std::string& name) {
  CAPTURE(name);
  const auto file = SafetensorsFile::load(fixture(name + ".safetensors"));
  Cpu cpu;
  const std::int64_t vocab = meta(file, "vocab_size"), batch = meta(file, "batch"), seq = meta(file, "seq");
  GptWeights<C, Cpu> weights(cpu, vocab);
  load_weights(cpu, weights, file);
  std::vector<std::int32_t> ids;
  for (std::int64_t v : file.values<std::int64_t>("idx")) ids.push_back(static_cast<std::int32_t>(v));
  const auto want = file.values<float>("logits");
  GptDecoder<C, Cpu> dec(cpu, weights, batch, 10 * seq, batch * seq);

  CHECK(relative_error(chunked_logits(dec, ids, batch, seq, vocab, {seq}), want) < 1e-5);
  const std::int64_t a = seq / 3, b = seq / 2;
  CHECK(relative_error(chunked_logits(dec, ids, batch, seq, vocab, {a, b, seq - a - b}), want) < 1e-5);
  CHECK(relative_error(chunked_logits(dec, ids, batch, seq, vocab, std::vector<std::int64_t>(static_cast<std::size_t>(seq), 1)),
                       want) < 1e-5);
  // forward() (last-token logits) agrees with the last position of forward_all.
  dec.reset();
  const auto last = dec.forward(ids, batch);
  for (std::int64_t r = 0; r < batch; ++r) {
    const std::span<const float> got = last.subspan(static_cast<std::size_t>(r * vocab), static_cast<std::size_t>(vocab));
    const std::span<const float> ref(want.data() + ((r + 1) * seq - 1) * vocab, static_cast<std::size_t>(vocab));
    CHECK(relative_error(got, ref) < 1e-5);
  }
}

template <Config C>
void randomize(Cpu& cpu, GptWeights<C, Cpu>& w, std::uint64_t seed) {
  cpu::fill_normal(cpu, w.flat(), seed, 0, 0.0f, 0.4f);
}

// Greedy decoding by recomputing the whole sequence each step (no cache), through the same
// tool state machine the Engine uses.
template <Config C>
std::vector<std::int32_t> greedy_recompute(Gpt<C, Cpu>& gpt, std::int64_t seq, const tokenizer::Tokenizer& tok,
                                           std::vector<std::int32_t> tokens, std::int64_t max_tokens) {
  Cpu cpu;
  const ToolTokens tools = ToolTokens::from(tok);
  ToolState state(tools, tok);
  Tensor<std::int32_t, Cpu> ids(cpu, {1, seq});
  std::vector<std::int32_t> out;
  const std::int64_t vocab = gpt.vocab_size();
  for (std::int64_t c = 0; c < max_tokens; ++c) {
    std::fill_n(ids.data(), seq, 0);  // positions after the sequence do not affect it (causal)
    std::copy(tokens.begin(), tokens.end(), ids.data());
    const auto logits = gpt.forward(ids.view());
    const float* row = logits.data() + (static_cast<std::int64_t>(tokens.size()) - 1) * vocab;
    const auto argmax = static_cast<std::int32_t>(std::max_element(row, row + vocab) - row);
    const auto [token, mask] = state.advance(argmax);
    out.push_back(token);
    tokens.push_back(token);
    if (state.completed()) break;
  }
  return out;
}

// Rounds every parameter to the nearest bf16, kept in float: the weights a bf16 model holds.
template <Config C>
void round_to_bf16(GptWeights<C, Cpu>& w) {
  const auto flat = w.flat();
  for (std::int64_t i = 0; i < flat.numel(); ++i) flat.data()[i] = nanochat::round_to_bf16(flat.data()[i]);
}

// The decoder of weights W and an fp32 cache over fp32 weights `w32` (W = float: those weights;
// bf16: a converted copy, which is exact when w32 was rounded to bf16 first).
template <Config C, class W>
struct DecoderOver {
  DecoderOver(Cpu& cpu, const GptWeights<C, Cpu>& w32, std::int64_t rows, std::int64_t positions, std::int64_t step)
      : dec(cpu, pick(cpu, w32), rows, positions, step) {}
  const GptWeights<C, Cpu, W>& pick(Cpu& cpu, const GptWeights<C, Cpu>& w32) {
    if constexpr (std::is_same_v<W, float>) {
      return w32;
    } else {
      copy.emplace(cpu, w32.vocab_size());
      convert_weights(cpu, *copy, w32);
      return *copy;
    }
  }
  std::optional<GptWeights<C, Cpu, W>> copy;  // constructed before dec
  GptDecoder<C, Cpu, W, float> dec;
};

// With W = bf16 the weights are rounded to bf16 first, and the recomputation (no cache, fp32)
// runs on the same rounded weights: the same math, so the same tokens.
template <Config C, class W = float>
void check_greedy_equals_recompute(std::uint64_t seed) {
  CAPTURE(C::name());
  const bool bf16_weights = std::is_same_v<W, bf16>;
  CAPTURE(bf16_weights);
  Cpu cpu;
  const auto tok = engine_test::byte_tokenizer();
  constexpr std::int64_t seq = 96, max_tokens = 40;
  Gpt<C, Cpu> gpt(cpu, engine_test::byte_vocab, 1, seq);
  randomize(cpu, gpt.weights(), seed);
  if constexpr (std::is_same_v<W, bf16>) round_to_bf16(gpt.weights());
  // step_tokens 8: a 33-token prompt is prefilled in five chunks.
  DecoderOver<C, W> over(cpu, gpt.weights(), 3, seq, 8);
  Engine engine(over.dec, tok);
  for (const std::string text : {"a", "Hello, w", "The quick brown fox jumps over it."}) {
    CAPTURE(text);
    std::vector<std::int32_t> prompt{static_cast<std::int32_t>(tok.bos_id())};
    for (auto id : tok.encode(text)) prompt.push_back(static_cast<std::int32_t>(id));
    const auto want = greedy_recompute(gpt, seq, tok, prompt, max_tokens);
    GenerateOptions o;
    o.num_samples = 3;
    o.max_tokens = max_tokens;
    o.sampling.temperature = 0.0f;
    std::vector<std::vector<std::int32_t>> rows(3);
    engine.generate(prompt, o, [&](std::span<const std::int32_t> col, std::span<const std::uint8_t>) {
      for (std::size_t r = 0; r < 3; ++r) rows[r].push_back(col[r]);
      return true;
    });
    for (const auto& row : rows) CHECK(row == want);
  }
}

static_assert(CachedModel<engine_test::ScriptedModel>);
static_assert(CachedModel<GptDecoder<GptConfig<1, 1, 1, 4>, Cpu>>);

std::vector<std::int32_t> ids_of(const tokenizer::Tokenizer& tok, const std::string& text) {
  std::vector<std::int32_t> out;
  for (auto id : tok.encode(text)) out.push_back(static_cast<std::int32_t>(id));
  return out;
}

}  // namespace

TEST_CASE("cached forward equals PyTorch's logits: whole and chunked and token-by-token prefill") {
  check_cached_against_pytorch<GptConfig<2, 4, 2, 16>>("gqa");
  check_cached_against_pytorch<GptConfig<2, 2, 2, 32>>("odd_t");
  check_cached_against_pytorch<GptConfig<3, 3, 1, 8>>("mqa_ignored");
}

TEST_CASE("greedy decoding with the KV cache equals full recomputation without it") {
  check_greedy_equals_recompute<GptConfig<2, 4, 2, 16>>(7);
  check_greedy_equals_recompute<GptConfig<3, 3, 1, 8>>(11);
}

TEST_CASE("bf16 weights with an fp32 cache: greedy decoding equals full fp32 recomputation on the rounded weights") {
  check_greedy_equals_recompute<GptConfig<2, 4, 2, 16>, bf16>(7);
  check_greedy_equals_recompute<GptConfig<3, 3, 1, 8>, bf16>(11);
}

// Values k = i and v = -i for the fp32 cache; for the bf16 one, i / 256 + 1 rounds to nearest
// even (1 + 1/256 is halfway between two bf16 neighbours and goes to the even one, 1).
template <class E>
void check_kv_cache_growth_and_broadcast() {
  Cpu cpu;
  using C = GptConfig<1, 2, 2, 4>;
  KvCache<C, Cpu, E> cache(cpu, 3);
  CHECK(cache.capacity() == 1024);
  const auto value = [](std::int64_t i) {
    return std::is_same_v<E, float> ? static_cast<float>(i) : 1.0f + static_cast<float>(i) / 256.0f;
  };
  Tensor<float, Cpu> k(cpu, {1, 5, 2, 4}), v(cpu, {1, 5, 2, 4});
  for (std::int64_t i = 0; i < k.numel(); ++i) {
    k.data()[i] = value(i);
    v.data()[i] = -value(i);
  }
  cache.insert(0, k.view(), v.view());
  cache.advance(5);
  cache.reserve(1030);
  CHECK(cache.capacity() == 3072);  // ceil_1024(1030 + 1024)
  CHECK(cache.bytes() == 2 * 3 * 2 * 3072 * 4 * sizeof(E));
  cache.broadcast_row0(3);
  const auto keys = cache.keys(0), values = cache.values(0);
  for (std::int64_t r = 0; r < 3; ++r)
    for (std::int64_t t = 0; t < 5; ++t)
      for (std::int64_t h = 0; h < 2; ++h)
        for (std::int64_t d = 0; d < 4; ++d) {
          const std::int64_t i = (t * 2 + h) * 4 + d;
          const float want = std::is_same_v<E, float> ? value(i) : nanochat::round_to_bf16(value(i));
          CHECK(static_cast<float>(keys(r, h, t, d)) == want);
          CHECK(static_cast<float>(values(r, h, t, d)) == -want);
        }
  if constexpr (std::is_same_v<E, bf16>) {
    CHECK(static_cast<float>(keys(0, 0, 0, 1)) == 1.0f);                    // 1 + 1/256: the tie, to even
    CHECK(static_cast<float>(keys(0, 0, 0, 3)) == 1.0f + 1.0f / 64.0f);     // 1 + 3/256: the tie, up to even
  }
  cache.reserve(10);
  CHECK(cache.capacity() == 3072);
}

TEST_CASE("KV cache: grows in steps of 1024 keeping its contents and broadcast copies row 0") {
  check_kv_cache_growth_and_broadcast<float>();
}

TEST_CASE("bf16 KV cache: writes round to nearest even, in half the memory, and grow and broadcast like fp32") {
  check_kv_cache_growth_and_broadcast<bf16>();
}

TEST_CASE("decoder memory follows the positions in use and not a huge context and growth keeps the logits") {
  Cpu cpu;
  using C = GptConfig<2, 4, 2, 16>;
  const auto tok = engine_test::byte_tokenizer();
  GptWeights<C, Cpu> w(cpu, engine_test::byte_vocab);
  randomize(cpu, w, 11);
  // A checkpoint with sequence_len 2^20 gives a context of 10 x 2^20 positions (chat_cli's).
  const std::int64_t huge_context = 10 * (std::int64_t{1} << 20);
  GptDecoder<C, Cpu> huge(cpu, w, 1, huge_context);
  const std::size_t per_position = 2 * C::depth * C::kv_dim * sizeof(float) + C::head_dim * sizeof(float);
  CAPTURE(huge.bytes());
  CHECK(huge.max_positions() == huge_context);
  CHECK(huge.bytes() < 2048 * per_position + 512 * 1024);  // about the first 1024 positions, not 10M
  Engine engine(huge, tok);
  GenerateOptions o;
  o.max_tokens = 3;
  CHECK(engine.generate_batch(ids_of(tok, "hi"), o).sequences.size() == 1);
  CHECK(huge.bytes() < 2048 * per_position + 512 * 1024);
  // max_tokens 0 ("until the context is full") reserves nothing ahead; this reply is stopped at 3.
  o.max_tokens = 0;
  int columns = 0;
  engine.generate(ids_of(tok, "hi"), o, [&](auto, auto) { return ++columns < 3; });
  CHECK(columns == 3);
  CHECK(huge.bytes() < 2048 * per_position + 512 * 1024);

  // Past the first tables: 2500 positions through the growing decoder, one chunk at a time, give
  // the logits of a decoder sized for them up front.
  GptDecoder<C, Cpu> sized(cpu, w, 1, 4096);
  sized.reserve(4096);
  huge.reset();
  std::vector<std::int32_t> ids(2500);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int32_t>((i * 37 + 5) % 256);
  for (std::size_t begin = 0; begin < ids.size(); begin += 500) {
    const std::span<const std::int32_t> part(ids.data() + begin, 500);
    const auto got = huge.forward(part, 1);
    const std::vector<float> grown(got.begin(), got.end());
    const auto want = sized.forward(part, 1);
    CHECK(std::equal(grown.begin(), grown.end(), want.begin(), want.end()));
  }
  CHECK(huge.position() == 2500);
  CHECK(huge.bytes() < 4096 * per_position + 512 * 1024);
}

TEST_CASE("sampling: same seed same text and rows independent and temperature 0 and top-k") {
  Cpu cpu;
  using C = GptConfig<2, 4, 2, 16>;
  const auto tok = engine_test::byte_tokenizer();
  GptWeights<C, Cpu> w(cpu, engine_test::byte_vocab);
  randomize(cpu, w, 3);
  GptDecoder<C, Cpu> dec(cpu, w, 4, 256);
  Engine engine(dec, tok);
  const auto prompt = ids_of(tok, "sample me");
  GenerateOptions o;
  o.num_samples = 4;
  o.max_tokens = 24;
  o.sampling = {1.0f, 0, 42};
  const auto a = engine.generate_batch(prompt, o);
  const auto b = engine.generate_batch(prompt, o);
  CHECK(a.sequences == b.sequences);
  CHECK(a.sequences[0] != a.sequences[1]);
  CHECK(a.sequences[2] != a.sequences[3]);
  o.sampling.seed = 43;
  CHECK(engine.generate_batch(prompt, o).sequences != a.sequences);
  o.sampling = {0.8f, 5, 42};
  const auto k5 = engine.generate_batch(prompt, o);
  CHECK(k5.sequences == engine.generate_batch(prompt, o).sequences);
  for (const auto& m : a.masks) {
    CHECK(std::all_of(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(prompt.size()), [](auto x) { return x == 0; }));
  }

  Sampler sampler(4);
  const std::vector<float> logits{1.0f, 3.0f, 3.0f, 0.5f};
  CHECK(sampler.sample(logits, {0.0f, 0, 1}, 0, 0) == 1);  // first maximum
  for (std::uint64_t i = 0; i < 50; ++i) CHECK(sampler.sample(logits, {1.0f, 1, 9}, 0, i) == 1);
  for (std::uint64_t i = 0; i < 200; ++i) {
    const auto t = sampler.sample(logits, {2.0f, 2, 9}, 0, i);
    CHECK((t == 1 || t == 2));
  }
  // Frequencies follow softmax(logits / T).
  const float temp = 1.5f;
  std::vector<int> counts(4, 0);
  constexpr int draws = 40000;
  for (int i = 0; i < draws; ++i) ++counts[static_cast<std::size_t>(sampler.sample(logits, {temp, 0, 5}, 3, static_cast<std::uint64_t>(i)))];
  double z = 0;
  for (float l : logits) z += std::exp(l / temp);
  for (std::size_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    CHECK(static_cast<double>(counts[i]) / draws == doctest::Approx(std::exp(logits[i] / temp) / z).epsilon(0.05));
  }
}

TEST_CASE("tool use: python block -> calculator -> forced output tokens with mask 0") {
  const auto tok = engine_test::byte_tokenizer();
  const ToolTokens t = ToolTokens::from(tok);
  std::vector<std::int32_t> script = ids_of(tok, "Hm ");
  script.push_back(t.python_start);
  for (auto id : ids_of(tok, "12/60")) script.push_back(id);
  script.push_back(t.python_end);
  const std::vector<std::int32_t> result = ids_of(tok, "0.2");
  // While the result is forced, whatever the model proposes is ignored.
  for (std::size_t i = 0; i < result.size() + 2; ++i) script.push_back(static_cast<std::int32_t>('x'));
  for (auto id : ids_of(tok, " ok")) script.push_back(id);
  script.push_back(t.python_start);
  for (auto id : ids_of(tok, "__import__")) script.push_back(id);  // no result: nothing forced
  script.push_back(t.python_end);
  script.push_back(t.assistant_end);
  script.push_back(static_cast<std::int32_t>('z'));

  engine_test::ScriptedModel model(script, engine_test::byte_vocab);
  Engine engine(model, tok);
  const std::vector<std::int32_t> prompt{t.bos, 65, 66};
  GenerateOptions o;
  o.num_samples = 2;
  o.max_tokens = 100;
  o.sampling.temperature = 0.0f;
  std::vector<std::int32_t> tokens;
  std::vector<std::uint8_t> masks;
  engine.generate(prompt, o, [&](std::span<const std::int32_t> col, std::span<const std::uint8_t> m) {
    CHECK(col[0] == col[1]);
    tokens.push_back(col[0]);
    masks.push_back(m[0]);
    return true;
  });
  std::vector<std::int32_t> want_tokens = ids_of(tok, "Hm ");
  want_tokens.push_back(t.python_start);
  for (auto id : ids_of(tok, "12/60")) want_tokens.push_back(id);
  want_tokens.push_back(t.python_end);
  const std::size_t forced_begin = want_tokens.size();
  want_tokens.push_back(t.output_start);
  want_tokens.insert(want_tokens.end(), result.begin(), result.end());
  want_tokens.push_back(t.output_end);
  const std::size_t forced_end = want_tokens.size();
  for (auto id : ids_of(tok, " ok")) want_tokens.push_back(id);
  want_tokens.push_back(t.python_start);
  for (auto id : ids_of(tok, "__import__")) want_tokens.push_back(id);
  want_tokens.push_back(t.python_end);
  want_tokens.push_back(t.assistant_end);  // the stream ends once every row has completed
  CHECK(tokens == want_tokens);
  REQUIRE(masks.size() == want_tokens.size());
  for (std::size_t i = 0; i < masks.size(); ++i) {
    CAPTURE(i);
    CHECK(masks[i] == ((i >= forced_begin && i < forced_end) ? 0 : 1));
  }
  // The prompt was prefilled once (batch 1), broadcast to both rows, and forced tokens were fed.
  CHECK(model.fed_.front() == prompt);
  CHECK(model.broadcast_rows_ == 2);
  CHECK(model.fed_[forced_begin + 1] == std::vector<std::int32_t>{t.output_start, t.output_start});

  const auto batch = engine.generate_batch(prompt, o);
  REQUIRE(batch.sequences.size() == 2);
  std::vector<std::int32_t> want_seq = prompt;
  want_seq.insert(want_seq.end(), want_tokens.begin(), want_tokens.end() - 1);  // terminal excluded
  CHECK(batch.sequences[0] == want_seq);
  CHECK(batch.sequences[1] == want_seq);
  CHECK(batch.masks[0].size() == want_seq.size());
  CHECK(batch.masks[0][prompt.size() + forced_begin] == 0);
  CHECK(batch.masks[0][prompt.size() + forced_begin - 1] == 1);
}

TEST_CASE("bad input: prompt longer than the context or too many samples or out-of-vocabulary ids") {
  Cpu cpu;
  using C = GptConfig<1, 2, 2, 8>;
  const auto tok = engine_test::byte_tokenizer();
  GptWeights<C, Cpu> w(cpu, engine_test::byte_vocab);
  randomize(cpu, w, 1);
  GptDecoder<C, Cpu> dec(cpu, w, 2, 16);
  Engine engine(dec, tok);
  const std::vector<std::int32_t> long_prompt(16, 65);
  GenerateOptions o;
  CHECK_THROWS_WITH_AS(engine.generate_batch(long_prompt, o), doctest::Contains("more than the context of 16"), Error);
  const std::vector<std::int32_t> prompt(15, 65);
  o.max_tokens = 50;  // clipped to the room left in the context
  const auto out = engine.generate_batch(prompt, o);
  CHECK(out.sequences[0].size() <= 16);
  o.num_samples = 3;
  CHECK_THROWS_WITH_AS(engine.generate_batch(prompt, o), doctest::Contains("at most 2"), Error);
  const std::vector<std::int32_t> bad{1, 300};
  dec.reset();
  CHECK_THROWS_WITH_AS(dec.forward(bad, 1), doctest::Contains("outside the vocabulary"), Error);
  GptWeights<C, Cpu> small(cpu, 100);
  GptDecoder<C, Cpu> small_dec(cpu, small, 1, 16);
  CHECK_THROWS_WITH_AS(Engine(small_dec, tok), doctest::Contains("do not fit the model's vocabulary"), Error);
}

// out = beta * out + in w^T against a plain double-precision sum, for 1-17 rows (16 take the
// streaming kernel, 17 the gemm path), through linear_forward and through the portable kernel.
// With beta 0, out starts as NaN: it must not be read.
template <class W>
void check_linear_forward(std::int64_t k, std::int64_t outs) {
  CAPTURE(k);
  CAPTURE(outs);
  const bool bf16_weights = std::is_same_v<W, bf16>;
  CAPTURE(bf16_weights);
  Cpu cpu;
  Tensor<float, Cpu> w32(cpu, {outs, k}), x(cpu, {17, k}), init(cpu, {17, outs}), got(cpu, {17, outs});
  Tensor<W, Cpu> w(cpu, {outs, k});
  cpu::fill_normal(cpu, w32.view(), 1, 0, 0.0f, 1.0f);
  cpu::fill_normal(cpu, x.view(), 2, 0, 0.0f, 1.0f);
  cpu::fill_normal(cpu, init.view(), 3, 0, 0.0f, 1.0f);
  for (std::int64_t i = 0; i < w.numel(); ++i) w.data()[i] = static_cast<W>(w32.data()[i]);
  for (const float beta : {0.0f, 1.0f})
    for (std::int64_t rows = 1; rows <= 17; ++rows) {
      CAPTURE(beta);
      CAPTURE(rows);
      const auto check = [&](const char* path, auto&& compute) {
        CAPTURE(path);
        for (std::int64_t i = 0; i < rows * outs; ++i) got.data()[i] = beta == 0.0f ? NAN : init.data()[i];
        compute(got.view().slice(0, 0, rows));
        double worst = 0;
        for (std::int64_t n = 0; n < rows; ++n)
          for (std::int64_t o = 0; o < outs; ++o) {
            double want = beta * static_cast<double>(init.data()[n * outs + o]), scale = std::abs(want);
            for (std::int64_t i = 0; i < k; ++i) {
              const double term = static_cast<double>(x.data()[n * k + i]) * static_cast<float>(w.data()[o * k + i]);
              want += term;
              scale += std::abs(term);
            }
            const double err = std::abs(got.data()[n * outs + o] - want) / scale;
            worst = std::isnan(err) ? INFINITY : std::max(worst, err);
          }
        CHECK(worst < 1e-6);
      };
      check("linear_forward", [&](cpu::CpuView<float> out) {
        cpu::linear_forward(cpu, out, x.view().slice(0, 0, rows), w.view(), beta);
      });
      if (rows <= cpu::linear_small_rows) {
        check("portable kernel", [&](cpu::CpuView<float> out) {
          cpu::detail::linear_rows_portable(x.data(), w.data(), out.data(), rows, k, outs, beta);
        });
      }
    }
}

TEST_CASE("linear_forward with float and bf16 weights equals a plain sum for 1 to 17 rows and beta 0 and 1") {
  // Sizes that do not divide into 16 lanes or tiles of 3, 4 or 8 weight rows.
  for (const auto& [k, outs] : {std::pair<std::int64_t, std::int64_t>{70, 37}, {16, 5}, {5, 1}, {5, 40}, {33, 9}, {256, 19}}) {
    check_linear_forward<float>(k, outs);
    check_linear_forward<bf16>(k, outs);
  }
}

// linear_forward on a weight packed once (pack_linear) against linear_forward on the weight
// itself, which packs per call: the same bits, for rows on both sides of the streaming kernel's
// limit and past one packed block of rows (mc = 120), depths with an odd tail and past one
// block (kc = 512), outputs past one block of columns (nc = 512) and not whole panels, beta 0
// (out holds NaN before: it must not be read) and 1. The packed copy must exist wherever this
// machine runs the prepacked product; where it does not, both sides are one path, which is said.
template <class W>
void check_packed_linear(std::int64_t k, std::int64_t outs) {
  CAPTURE(k);
  CAPTURE(outs);
  const bool bf16_weights = std::is_same_v<W, bf16>;
  CAPTURE(bf16_weights);
  Cpu cpu;
  constexpr std::int64_t most_rows = 130;
  Tensor<float, Cpu> w32(cpu, {outs, k}), x(cpu, {most_rows, k}), init(cpu, {most_rows, outs});
  Tensor<float, Cpu> want(cpu, {most_rows, outs}), got(cpu, {most_rows, outs});
  Tensor<W, Cpu> w(cpu, {outs, k});
  cpu::fill_normal(cpu, w32.view(), 11, 0, 0.0f, 1.0f);
  cpu::fill_normal(cpu, x.view(), 12, 0, 0.0f, 1.0f);
  cpu::fill_normal(cpu, init.view(), 13, 0, 0.0f, 1.0f);
  for (std::int64_t i = 0; i < w.numel(); ++i) w.data()[i] = static_cast<W>(w32.data()[i]);
  const cpu::PackedLinear<W> packed = cpu::pack_linear(cpu, cpu::CpuView<const W>(w.view()));
  const bool packed_copy = packed.bytes() > 0;
  CHECK(packed_copy == cpu::prepacked::runs<W>());
  if (!packed_copy) {
    MESSAGE("this machine does not run the prepacked product: skipped, nothing to compare");
    return;
  }
  for (const float beta : {0.0f, 1.0f})
    for (const std::int64_t rows : {1, 16, 17, 31, 37, 121, 130}) {
      CAPTURE(beta);
      CAPTURE(rows);
      const std::size_t n = static_cast<std::size_t>(rows * outs);
      const auto run = [&](Tensor<float, Cpu>& out, auto&& weight) {
        if (beta == 0.0f) std::fill_n(out.data(), n, std::numeric_limits<float>::quiet_NaN());
        else std::memcpy(out.data(), init.data(), n * sizeof(float));
        cpu::linear_forward(cpu, out.view().slice(0, 0, rows), x.view().slice(0, 0, rows), weight, beta);
      };
      run(want, w.view());
      run(got, packed);
      CHECK(std::none_of(got.data(), got.data() + n, [](float v) { return std::isnan(v); }));
      CHECK(std::memcmp(got.data(), want.data(), n * sizeof(float)) == 0);
    }
}

TEST_CASE("linear_forward on a weight packed once gives the bits of linear_forward on the weight") {
  for (const auto& [k, outs] : {std::pair<std::int64_t, std::int64_t>{70, 37}, {1, 45}, {515, 33}, {1029, 530}}) {
    check_packed_linear<float>(k, outs);
    check_packed_linear<bf16>(k, outs);
  }
}

// bf16 weights against fp32 weights holding the same (rounded) values: the same products in the
// same order, so the logits agree to rounding, for a prefill (the gemm path) and decode steps
// (the streaming kernel).
template <Config C>
void check_bf16_decoder_logits(std::uint64_t seed) {
  CAPTURE(C::name());
  Cpu cpu;
  constexpr std::int64_t rows = 3, prompt = 20, steps = 12, vocab = engine_test::byte_vocab;
  GptWeights<C, Cpu> w32(cpu, vocab);
  randomize(cpu, w32, seed);
  round_to_bf16(w32);
  GptWeights<C, Cpu, bf16> w16(cpu, vocab);
  convert_weights(cpu, w16, w32);
  GptDecoder<C, Cpu> d32(cpu, w32, rows, 64, rows * prompt);
  GptDecoder<C, Cpu, bf16, float> d16(cpu, w16, rows, 64, rows * prompt);
  std::vector<std::int32_t> ids;
  for (std::int64_t i = 0; i < rows * prompt; ++i) ids.push_back(static_cast<std::int32_t>((i * 37 + 11) % vocab));
  CHECK(relative_error(d16.forward_all(ids, rows), d32.forward_all(ids, rows)) < 1e-5);
  for (std::int64_t s = 0; s < steps; ++s) {
    CAPTURE(s);
    const std::vector<std::int32_t> column{static_cast<std::int32_t>(s), static_cast<std::int32_t>(100 + s), 7};
    CHECK(relative_error(d16.forward(column, rows), d32.forward(column, rows)) < 1e-5);
  }
}

TEST_CASE("bf16 weights with an fp32 cache: logits equal the fp32 decoder's on the same rounded weights") {
  check_bf16_decoder_logits<GptConfig<2, 4, 2, 16>>(5);
  check_bf16_decoder_logits<GptConfig<3, 3, 1, 8>>(6);
}

// attention_cached_forward over a bf16 cache against the definition on the rounded K and V
// (softmax(scale q k^T) v in double, query t of the chunk seeing keys [0, Tk - Tq + t]), and
// against the fp32 cache holding the same rounded values (the same floats after widening, so the
// same result bit for bit). Head dims with and without a vector tail; GQA; keys past one block.
void check_cached_attention_bf16(std::int64_t rows, std::int64_t tq, std::int64_t keys, std::int64_t heads,
                                 std::int64_t kv_heads, std::int64_t dim) {
  CAPTURE(rows);
  CAPTURE(tq);
  CAPTURE(keys);
  CAPTURE(heads);
  CAPTURE(kv_heads);
  CAPTURE(dim);
  Cpu cpu;
  const std::int64_t capacity = keys + 3;  // positions past `keys` hold values that must not be read
  Tensor<float, Cpu> q_(cpu, {rows, tq, heads, dim}), k32_(cpu, {rows, kv_heads, capacity, dim}),
      v32_(cpu, {rows, kv_heads, capacity, dim}), out16_(cpu, {rows, tq, heads, dim}), out32_(cpu, {rows, tq, heads, dim});
  Tensor<bf16, Cpu> k16(cpu, k32_.shape()), v16(cpu, v32_.shape());
  cpu::fill_normal(cpu, q_.view(), 21, 0, 0.0f, 1.5f);
  cpu::fill_normal(cpu, k32_.view(), 22, 0, 0.0f, 1.5f);
  cpu::fill_normal(cpu, v32_.view(), 23, 0, 0.0f, 1.0f);
  for (std::int64_t i = 0; i < k32_.numel(); ++i) {
    k16.data()[i] = bf16(k32_.data()[i]);
    v16.data()[i] = bf16(v32_.data()[i]);
    k32_.data()[i] = static_cast<float>(k16.data()[i]);
    v32_.data()[i] = static_cast<float>(v16.data()[i]);
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
  const auto q = q_.view(), k32 = k32_.view(), v32 = v32_.view(), out16 = out16_.view(), out32 = out32_.view();
  cpu::attention_cached_forward<bf16>(cpu, out16, q, k16.view(), v16.view(), keys, scale);
  cpu::attention_cached_forward<float>(cpu, out32, q, k32, v32, keys, scale);
  double err = 0, norm = 0;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t t = 0; t < tq; ++t)
      for (std::int64_t h = 0; h < heads; ++h) {
        const std::int64_t kv = h / (heads / kv_heads), visible = keys - tq + t + 1;
        std::vector<double> s(static_cast<std::size_t>(visible));
        double max = -1e300, sum = 0;
        for (std::int64_t j = 0; j < visible; ++j) {
          double dot = 0;
          for (std::int64_t d = 0; d < dim; ++d) dot += static_cast<double>(q(r, t, h, d)) * k32(r, kv, j, d);
          s[static_cast<std::size_t>(j)] = dot * scale;
          max = std::max(max, dot * scale);
        }
        for (double& x : s) sum += (x = std::exp(x - max));
        for (std::int64_t d = 0; d < dim; ++d) {
          double want = 0;
          for (std::int64_t j = 0; j < visible; ++j) want += s[static_cast<std::size_t>(j)] * v32(r, kv, j, d);
          want /= sum;
          err = std::max(err, std::abs(out16(r, t, h, d) - want));
          norm = std::max(norm, std::abs(want));
          REQUIRE(out16(r, t, h, d) == out32(r, t, h, d));
        }
      }
  CHECK(err <= 1e-5 * norm);
}

TEST_CASE("bf16 KV cache: cached attention equals the definition on the rounded K and V") {
  check_cached_attention_bf16(2, 1, 300, 4, 2, 16);   // decode over three key blocks, GQA
  check_cached_attention_bf16(1, 37, 37, 3, 1, 20);   // causal prefill, MQA, a tail of 4 lanes
  check_cached_attention_bf16(3, 5, 133, 2, 2, 8);    // a chunk after a prefix, a head narrower than a vector
  check_cached_attention_bf16(1, 1, 7, 2, 2, 128);    // fewer keys than one group of four
}

// The bf16 cache in a decoder (bf16 weights, the default cache): layer 0's cached K and V are the
// fp32-cache decoder's rounded to bf16 (they depend only on the embeddings and weights); a prompt
// prefilled whole and then decoded one column at a time gives the logits of a one-step forward of
// the whole sequence with the same rounded K and V; and the cache takes half the memory.
template <Config C>
void check_bf16_cache_decoder(std::uint64_t seed) {
  CAPTURE(C::name());
  Cpu cpu;
  constexpr std::int64_t rows = 2, prompt = 17, steps = 9, seq = prompt + steps, vocab = engine_test::byte_vocab;
  GptWeights<C, Cpu> w32(cpu, vocab);
  randomize(cpu, w32, seed);
  GptWeights<C, Cpu, bf16> w16(cpu, vocab);
  convert_weights(cpu, w16, w32);
  GptDecoder<C, Cpu, bf16, float> exact(cpu, w16, rows, 64, rows * seq);
  GptDecoder<C, Cpu, bf16> stepped(cpu, w16, rows, 64, rows * seq), whole(cpu, w16, rows, 64, rows * seq);
  static_assert(std::is_same_v<typename std::remove_cvref_t<decltype(stepped.cache())>::element_type, bf16>);
  CHECK(2 * stepped.cache().bytes() == exact.cache().bytes());
  std::vector<std::int32_t> ids;  // [rows, seq]
  for (std::int64_t i = 0; i < rows * seq; ++i) ids.push_back(static_cast<std::int32_t>((i * 53 + 5) % vocab));
  const auto all = whole.forward_all(ids, rows);
  const std::vector<float> want(all.begin(), all.end());  // [rows, seq, V]
  std::vector<std::int32_t> head;
  for (std::int64_t r = 0; r < rows; ++r) head.insert(head.end(), ids.begin() + r * seq, ids.begin() + r * seq + prompt);
  exact.forward(head, rows);
  const auto first = stepped.forward(head, rows);
  const auto last_of = [&](std::int64_t r, std::int64_t t) {
    return std::span<const float>(want.data() + (r * seq + t) * vocab, static_cast<std::size_t>(vocab));
  };
  for (std::int64_t r = 0; r < rows; ++r)
    CHECK(relative_error(first.subspan(static_cast<std::size_t>(r * vocab), vocab), last_of(r, prompt - 1)) < 1e-5);
  const auto k16 = stepped.cache().keys(0), v16 = stepped.cache().values(0);
  const auto k32 = exact.cache().keys(0), v32 = exact.cache().values(0);
  std::int64_t differ = 0;  // the rounding must have changed something
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t h = 0; h < C::n_kv_head; ++h)
      for (std::int64_t t = 0; t < prompt; ++t)
        for (std::int64_t d = 0; d < C::head_dim; ++d) {
          REQUIRE(k16(r, h, t, d).bits == bf16(k32(r, h, t, d)).bits);
          REQUIRE(v16(r, h, t, d).bits == bf16(v32(r, h, t, d)).bits);
          differ += k32(r, h, t, d) != static_cast<float>(k16(r, h, t, d));
        }
  CHECK(differ > 0);
  for (std::int64_t t = prompt; t < seq; ++t) {
    CAPTURE(t);
    const std::vector<std::int32_t> column{ids[static_cast<std::size_t>(t)], ids[static_cast<std::size_t>(seq + t)]};
    const auto logits = stepped.forward(column, rows);
    for (std::int64_t r = 0; r < rows; ++r)
      CHECK(relative_error(logits.subspan(static_cast<std::size_t>(r * vocab), vocab), last_of(r, t)) < 1e-5);
  }
}

TEST_CASE("bf16 KV cache: prefill then decode equals one forward of the whole sequence on the rounded K and V") {
  check_bf16_cache_decoder<GptConfig<2, 4, 2, 16>>(8);
  check_bf16_cache_decoder<GptConfig<3, 3, 1, 8>>(9);
}

TEST_CASE("bf16 weights: loaded from F32 files rounded to nearest even and from BF16 files exactly") {
  using C = GptConfig<1, 2, 1, 8>;
  Cpu cpu;
  GptWeights<C, Cpu> w32(cpu, 40);
  randomize(cpu, w32, 9);
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("nanochat_bf16_weights_" + std::to_string(::getpid()) + ".safetensors");
  save_weights(cpu, w32, path, 16);
  GptWeights<C, Cpu, bf16> w16(cpu, 40);
  load_weights(cpu, w16, SafetensorsFile::load(path));
  std::int64_t differ = 0;
  for (std::int64_t i = 0; i < w32.flat().numel(); ++i)
    differ += w16.flat().data()[i].bits != bf16::round_to_bits(w32.flat().data()[i]);
  CHECK(differ == 0);
  // And back: a BF16 file loads into fp32 weights as the exact widened values.
  std::vector<TensorToSave> tensors;
  w16.for_each([&](const std::string& name, cpu::CpuView<bf16> v) {
    tensors.push_back({name, DType::bf16, v.shape(), v.data()});
  });
  save_safetensors(path, tensors, model_config_metadata<C>(40, 16));
  GptWeights<C, Cpu> wide(cpu, 40);
  load_weights(cpu, wide, SafetensorsFile::load(path));
  differ = 0;
  for (std::int64_t i = 0; i < wide.flat().numel(); ++i)
    differ += wide.flat().data()[i] != static_cast<float>(w16.flat().data()[i]);
  CHECK(differ == 0);
  std::filesystem::remove(path);
}
