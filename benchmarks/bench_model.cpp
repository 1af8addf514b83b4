// GPT training step (forward + backward) on the Cpu backend: tokens/s and GFLOP/s (nanochat's
// FLOPs-per-token estimate) for the two configurations docs/benchmarks.md compares with the
// PyTorch reference, with fp32 and with bf16 matmuls, and the share of the step each layer type
// takes (StepProfile), so the next speed-up is obvious. Measured as the PyTorch reference measures
// itself: after warm-up steps (the first step also faults in the activation memory), the median
// of the timed steps. Also attention alone, the largest share of the d8 step after the GEMMs.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/core/presets.hpp"
#include "nanochat/model/gpt.hpp"

using namespace nanochat;
using nanochat::cpu::Cpu;

namespace {

// (a) d4, vocab 65536, T 1024, B 1 and (b) d8, vocab 8192, T 512, B 4.
struct Setup {
  std::int64_t vocab, batch, seq;
};
constexpr Setup d4_setup{65536, 1, 1024};
constexpr Setup d8_setup{8192, 4, 512};
// As benchmarks/gpt_pytorch_reference.py's defaults: 2 warm-up steps, the median of 5.
constexpr int warmup_steps = 2;
constexpr int timed_steps = 5;

void fill_ids(Tensor<std::int32_t, Cpu>& t, std::int64_t vocab, std::uint64_t salt) {
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    t.data()[i] = static_cast<std::int32_t>((i * 2654435761u + salt) % static_cast<std::uint64_t>(vocab));
  }
}

template <class C>
void train_step(benchmark::State& state, Setup s) {
  Cpu cpu;
  Gpt<C, Cpu> model(cpu, s.vocab, s.batch, s.seq);
  model.init(42);
  Tensor<std::int32_t, Cpu> ids(cpu, {s.batch, s.seq}), targets(cpu, {s.batch, s.seq});
  fill_ids(ids, s.vocab, 1);
  fill_ids(targets, s.vocab, 7);
  const auto step = [&] {
    benchmark::DoNotOptimize(model.forward_loss(ids.view(), targets.view()));
    model.backward(ids.view(), targets.view());
  };
  for (int i = 0; i < warmup_steps; ++i) step();
  StepProfile profile;
  model.set_profile(&profile);
  std::vector<double> seconds;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    step();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::nth_element(seconds.begin(), seconds.begin() + seconds.size() / 2, seconds.end());
  const double median_seconds = seconds[seconds.size() / 2];
  // Share of the step per layer type, as counters next to the totals.
  for (std::size_t i = 0; i < profile.seconds.size(); ++i) {
    const auto section = static_cast<StepSection>(i);
    state.counters[std::string(section_name(section))] = profile.seconds[i] / profile.total();
  }
  // Rates of the median step (the Time column is the mean).
  const double tokens = static_cast<double>(s.batch * s.seq);
  state.counters["tok/s"] = tokens / median_seconds;
  state.counters["GFLOP/s"] = tokens * C::flops_per_token(s.vocab, s.seq) / 1e9 / median_seconds;
}

// Attention alone, forward + backward, on the shapes of the step's d8 layers (its biggest share
// after the linears, so the next step's measure). GFLOP/s counts the causal products the Cpu
// backend computes: two in the forward, five in the backward (with the scores' recomputation).
template <GemmCompute Compute>
void attention_step(benchmark::State& state) {
  using C = NanochatConfig<8>;
  const std::int64_t batch = d8_setup.batch, seq = d8_setup.seq, heads = C::n_head, dim = C::head_dim;
  Cpu cpu;
  const Shape shape{batch, seq, heads, dim};
  Tensor<float, Cpu> q(cpu, shape), k(cpu, shape), v(cpu, shape), out(cpu, shape), dout(cpu, shape), dq(cpu, shape),
      dk(cpu, shape), dv(cpu, shape), lse(cpu, {batch, heads, seq});
  std::uint64_t stream = 0;
  for (auto* t : {&q, &k, &v, &dout}) cpu::fill_normal(cpu, t->view(), 42, stream++, 0.0f, 1.0f);
  const float scale = C::attention_scale();
  double forward_seconds = 0, total_seconds = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    cpu::attention_forward(cpu, out.view(), lse.view(), q.view(), k.view(), v.view(), scale, Compute);
    const auto middle = std::chrono::steady_clock::now();
    cpu::attention_backward(cpu, dq.view(), dk.view(), dv.view(), dout.view(), lse.view(), q.view(), k.view(),
                            v.view(), scale, Compute);
    const auto end = std::chrono::steady_clock::now();
    forward_seconds += std::chrono::duration<double>(middle - start).count();
    total_seconds += std::chrono::duration<double>(end - start).count();
  }
  const double product = 2.0 * static_cast<double>(batch * heads * dim) * static_cast<double>(seq * (seq + 1) / 2);
  state.counters["GFLOP/s"] = static_cast<double>(state.iterations()) * 7 * product / 1e9 / total_seconds;
  state.counters["forward share"] = forward_seconds / total_seconds;
}

}  // namespace

void train_step_d4_v65536_t1024_b1(benchmark::State& state) { train_step<NanochatConfig<4>>(state, d4_setup); }
void train_step_d8_v8192_t512_b4(benchmark::State& state) { train_step<NanochatConfig<8>>(state, d8_setup); }
// The same with the matmuls computing in bf16 (AMX where the CPU has it).
void train_step_bf16_d4_v65536_t1024_b1(benchmark::State& state) {
  train_step<NanochatConfig<4, bf16>>(state, d4_setup);
}
void train_step_bf16_d8_v8192_t512_b4(benchmark::State& state) { train_step<NanochatConfig<8, bf16>>(state, d8_setup); }
BENCHMARK(train_step_d4_v65536_t1024_b1)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(timed_steps);
BENCHMARK(train_step_d8_v8192_t512_b4)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(timed_steps);
BENCHMARK(train_step_bf16_d4_v65536_t1024_b1)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(timed_steps);
BENCHMARK(train_step_bf16_d8_v8192_t512_b4)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(timed_steps);

BENCHMARK(attention_step<GemmCompute::fp32>)->Name("attention_d8")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(attention_step<GemmCompute::bf16>)->Name("attention_bf16_d8")->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
