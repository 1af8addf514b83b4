// Inference on the Cpu backend through the KV-cached GptDecoder: prefill tokens/s and decode
// tokens/s at batch 1 and 8 for d4 (vocab 65536) and d8 (vocab 8192), with fp32 and with bf16
// weights (and a bf16 KV cache with them; decode also with bf16 weights over an fp32 cache, the
// cache's effect alone), plus the machine's read bandwidth, the denominator of the decode
// roofline (weights + KV bytes read per step).
// Counters: tok/s; for decode also bytes/step (what one step must read) and GB/s achieved.

#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdint>
#include <type_traits>
#include <vector>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/core/presets.hpp"
#include "nanochat/model/gpt_decoder.hpp"
#include "nanochat/model/weights_file.hpp"

using namespace nanochat;
using nanochat::cpu::Cpu;

namespace {

constexpr std::int64_t prompt_len = 256, decode_steps = 64;

std::vector<std::int32_t> make_ids(std::int64_t n, std::int64_t vocab, std::uint64_t salt) {
  std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    ids[static_cast<std::size_t>(i)] = static_cast<std::int32_t>((static_cast<std::uint64_t>(i) * 2654435761u + salt) % static_cast<std::uint64_t>(vocab));
  return ids;
}

// Weights of element type W with nanochat's init scale (random fp32, rounded once for bf16).
template <class C, class W>
struct RandomWeights {
  RandomWeights(Cpu& cpu, std::int64_t vocab) : w(cpu, vocab) {
    if constexpr (std::is_same_v<W, float>) {
      cpu::fill_normal(cpu, w.flat(), 1, 0, 0.0f, 0.02f);
    } else {
      GptWeights<C, Cpu> fp32(cpu, vocab);
      cpu::fill_normal(cpu, fp32.flat(), 1, 0, 0.0f, 0.02f);
      convert_weights(cpu, w, fp32);
    }
  }
  GptWeights<C, Cpu, W> w;
};

template <class C, class W>
void prefill(benchmark::State& state, std::int64_t vocab) {
  const std::int64_t rows = state.range(0);
  Cpu cpu;
  RandomWeights<C, W> random(cpu, vocab);
  GptDecoder<C, Cpu, W> dec(cpu, random.w, rows, 10 * prompt_len, rows * prompt_len);
  const auto ids = make_ids(rows * prompt_len, vocab, 3);
  for (auto _ : state) {
    dec.reset();
    benchmark::DoNotOptimize(dec.forward(ids, rows).data());
  }
  state.counters["tok/s"] = benchmark::Counter(static_cast<double>(rows * prompt_len),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

// Each iteration: (untimed) prefill of a 256-token prompt in row 0 broadcast to every row, then
// 64 timed decode steps of one token per row, as the Engine runs them.
template <class C, class W, class KV = W>
void decode(benchmark::State& state, std::int64_t vocab) {
  const std::int64_t rows = state.range(0);
  Cpu cpu;
  RandomWeights<C, W> random(cpu, vocab);
  GptDecoder<C, Cpu, W, KV> dec(cpu, random.w, rows, 10 * prompt_len, prompt_len);
  dec.reserve(prompt_len + decode_steps);
  const auto prompt = make_ids(prompt_len, vocab, 3);
  const auto column = make_ids(rows, vocab, 5);
  for (auto _ : state) {
    state.PauseTiming();
    dec.reset();
    dec.forward(prompt, 1);
    dec.broadcast_row0(rows);
    state.ResumeTiming();
    for (std::int64_t s = 0; s < decode_steps; ++s) benchmark::DoNotOptimize(dec.forward(column, rows).data());
  }
  // Bytes one step must read: every matrix, lm_head, one wte row per token (in W), and the KV
  // cache (in KV, at the mean position of the timed steps) of every row.
  const double weights = static_cast<double>(sizeof(W)) * static_cast<double>(C::matrix_params + vocab * C::model_dim + rows * C::model_dim);
  const double kv = static_cast<double>(sizeof(KV)) * 2.0 * C::depth * C::kv_dim * static_cast<double>(rows) * (prompt_len + decode_steps / 2.0);
  state.counters["tok/s"] = benchmark::Counter(static_cast<double>(rows * decode_steps),
                                               benchmark::Counter::kIsIterationInvariantRate);
  state.counters["MB/step"] = (weights + kv) / 1e6;
  state.counters["GB/s"] = benchmark::Counter((weights + kv) * decode_steps / 1e9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

// Read bandwidth: sum a float array of state.range(0) MiB with every OpenMP thread (the
// roofline's denominator). 1 GiB is DRAM; 64 and 128 MiB are the size of a decode step's reads,
// which on a machine with a large L3 partly come from it.
void read_bandwidth(benchmark::State& state) {
  const std::int64_t n = state.range(0) * (std::int64_t{1} << 20) / 4;
  std::vector<float> a(static_cast<std::size_t>(n), 1.0f);
  const float* data = a.data();
  for (auto _ : state) {
    float total = 0.0f;
#pragma omp parallel reduction(+ : total)
    {
      // Each thread sums its contiguous share with one vectorised loop.
      const std::int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
      const std::int64_t begin = n * t / threads, end = n * (t + 1) / threads;
      float part = 0.0f;
#pragma omp simd reduction(+ : part)
      for (std::int64_t i = begin; i < end; ++i) part += data[i];
      total += part;
    }
    benchmark::DoNotOptimize(total);
  }
  state.counters["GB/s"] = benchmark::Counter(4.0 * static_cast<double>(n) / 1e9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

void prefill_d4_v65536(benchmark::State& s) { prefill<NanochatConfig<4>, float>(s, 65536); }
void prefill_d8_v8192(benchmark::State& s) { prefill<NanochatConfig<8>, float>(s, 8192); }
void decode_d4_v65536(benchmark::State& s) { decode<NanochatConfig<4>, float>(s, 65536); }
void decode_d8_v8192(benchmark::State& s) { decode<NanochatConfig<8>, float>(s, 8192); }
void prefill_bf16_d4_v65536(benchmark::State& s) { prefill<NanochatConfig<4>, bf16>(s, 65536); }
void prefill_bf16_d8_v8192(benchmark::State& s) { prefill<NanochatConfig<8>, bf16>(s, 8192); }
void decode_bf16_d4_v65536(benchmark::State& s) { decode<NanochatConfig<4>, bf16>(s, 65536); }
void decode_bf16_d8_v8192(benchmark::State& s) { decode<NanochatConfig<8>, bf16>(s, 8192); }
void decode_bf16_fp32kv_d8_v8192(benchmark::State& s) { decode<NanochatConfig<8>, bf16, float>(s, 8192); }
BENCHMARK(read_bandwidth)->Arg(64)->Arg(128)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(prefill_d4_v65536)->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(prefill_d8_v8192)->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(prefill_bf16_d4_v65536)->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(prefill_bf16_d8_v8192)->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(decode_d4_v65536)->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(decode_d8_v8192)->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(decode_bf16_d4_v65536)->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(decode_bf16_d8_v8192)->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(decode_bf16_fp32kv_d8_v8192)->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
