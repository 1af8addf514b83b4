// Cpu backend throughput: GEMM in GFLOP/s (square sizes, and the shapes of a d4..d20 forward
// pass; ours beside OpenBLAS's sgemm, and computing in bf16) and RMSNorm in GB/s. The best square
// sgemm figure is the "sgemm peak" that the model benchmarks are judged against
// (docs/benchmarks.md); the bf16 products of d8's step on each bf16 kernel this machine runs.
// Beside them, the ceilings the GEMM kernels work under, measured on registers alone: AVX-512
// FMAs, VDPBF16PS, and AMX tile multiplies with 0, 1 or 4 tile loads per four.

#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cstdint>

#include <string>
#include <utility>

#include "nanochat/backend/cpu/x86_target.hpp"
#if defined(NANOCHAT_X86_KERNELS)
#include <immintrin.h>
#endif

#include "nanochat/backend/cpu.hpp"
#include "nanochat/core/macros.hpp"

using namespace nanochat;
using nanochat::cpu::Cpu;

namespace {

template <class T>
Tensor<T, Cpu> random_tensor(Cpu& cpu, Shape shape, std::uint64_t seed) {
  Tensor<T, Cpu> t(cpu, shape);
  cpu::fill_normal<T>(cpu, t.view(), seed, 0, 0.0f, 1.0f);
  return t;
}

// One of a Linear layer's three products at range(0) tokens, range(1) outputs and range(2)
// inputs (weights stored [out, in]), by range(3): 0 the forward y = x W^T, 1 the input gradient
// dx = dy W, 2 the weight gradient dW += dy^T x (beta 1, as gradients accumulate). Through
// cpu::gemm with the given compute type, or (Openblas) straight through OpenBLAS's sgemm for the
// side-by-side (run it with OPENBLAS_CORETYPE set where OpenBLAS does not know the CPU), or
// (Kernel) on the GEMM kernel range(4) (a cpu::GemmKernel) instead of the process's choice.
enum class Impl { ours, openblas, kernel };
template <class T, GemmCompute Compute = GemmCompute::fp32, Impl Using = Impl::ours>
void gemm_linear(benchmark::State& state) {
  const std::int64_t tokens = state.range(0), outs = state.range(1), ins = state.range(2), pass = state.range(3);
  const auto t = [](bool yes) { return yes ? Transpose::yes : Transpose::no; };
  // C[m, n] = op(A)[m, k] op(B)[k, n] + beta C, A and B row-major as stored.
  const std::int64_t m = pass == 2 ? outs : tokens, n = pass == 0 ? outs : ins;
  const std::int64_t k = pass == 0 ? ins : pass == 1 ? outs : tokens;
  const Transpose ta = t(pass == 2), tb = t(pass == 0);
  const float beta = pass == 2 ? 1.0f : 0.0f;
  Cpu cpu;
  auto a = ta == Transpose::yes ? random_tensor<T>(cpu, {k, m}, 1) : random_tensor<T>(cpu, {m, k}, 1);
  auto b = tb == Transpose::yes ? random_tensor<T>(cpu, {n, k}, 2) : random_tensor<T>(cpu, {k, n}, 2);
  auto c = random_tensor<float>(cpu, {m, n}, 3);
  cpu::GemmKernel kernel{};
  if constexpr (Using == Impl::kernel) {
    kernel = static_cast<cpu::GemmKernel>(state.range(4));
    const std::string missing = cpu::gemm_kernel_missing(kernel, cpu::cpu_features());
    if (!missing.empty()) {
      state.SkipWithError(("this machine lacks " + missing).c_str());
      return;
    }
  }
  for (auto _ : state) {
    if constexpr (Using == Impl::openblas) {
      const auto op = [](Transpose x) { return x == Transpose::yes ? CblasTrans : CblasNoTrans; };
      cblas_sgemm(CblasRowMajor, op(ta), op(tb), static_cast<blasint>(m), static_cast<blasint>(n),
                  static_cast<blasint>(k), 1.0f, a.data(), static_cast<blasint>(a.shape()[1]), b.data(),
                  static_cast<blasint>(b.shape()[1]), beta, c.data(), static_cast<blasint>(n));
    } else if constexpr (Using == Impl::kernel) {
      cpu::gemm_on(kernel, cpu, c.view(), TensorView<const T, Cpu>(a.view()), TensorView<const T, Cpu>(b.view()), ta, tb,
                   1.0f, beta, GemmOptions{.compute = Compute});
    } else {
      cpu::gemm(cpu, c.view(), TensorView<const T, Cpu>(a.view()), TensorView<const T, Cpu>(b.view()), ta, tb, 1.0f,
                beta, GemmOptions{.compute = Compute});
    }
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(m * n * k), benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}

template <class T>
void rmsnorm_forward(benchmark::State& state) {
  const std::int64_t rows = state.range(0), dim = state.range(1);
  Cpu cpu;
  auto x = random_tensor<T>(cpu, {rows, dim}, 3);
  Tensor<T, Cpu> y(cpu, {rows, dim});
  Tensor<float, Cpu> r(cpu, {rows});
  for (auto _ : state) {
    cpu::rmsnorm_forward<T>(cpu, y.view(), r.view(), x.view());
    benchmark::DoNotOptimize(y.data());
  }
  // Bytes moved: read x twice (sum of squares, then scale) is cache-resident per row, so count
  // one read and one write of the tensor.
  state.counters["GB/s"] = benchmark::Counter(2.0 * static_cast<double>(rows * dim) * sizeof(T),
                                              benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}

template <class T>
void rmsnorm_backward(benchmark::State& state) {
  const std::int64_t rows = state.range(0), dim = state.range(1);
  Cpu cpu;
  auto x = random_tensor<T>(cpu, {rows, dim}, 4);
  auto dy = random_tensor<T>(cpu, {rows, dim}, 5);
  Tensor<T, Cpu> dx(cpu, {rows, dim});
  Tensor<float, Cpu> r(cpu, {rows});
  Tensor<T, Cpu> y(cpu, {rows, dim});
  cpu::rmsnorm_forward<T>(cpu, y.view(), r.view(), x.view());
  for (auto _ : state) {
    cpu::rmsnorm_backward<T>(cpu, dx.view(), dy.view(), x.view(), r.view());
    benchmark::DoNotOptimize(dx.data());
  }
  state.counters["GB/s"] = benchmark::Counter(3.0 * static_cast<double>(rows * dim) * sizeof(T),
                                              benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}

// The rate of `per_iteration` over all threads of a ->Threads(n) run: each thread reports its own
// iterations, summed, so the default sum over threads would count them n times.
benchmark::Counter all_threads_rate(double per_iteration) {
  return benchmark::Counter(per_iteration,
                            benchmark::Counter::Flags(benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kAvgThreads),
                            benchmark::Counter::kIs1000);
}

#if defined(NANOCHAT_X86_KERNELS)
NANOCHAT_TARGET_BEGIN(NANOCHAT_TARGET_AVX512_BF16)
// FMAs on 16 independent accumulators (enough to cover the latency of two FMA ports), nothing
// read or written: what the fp32 kernel's 24 accumulators can reach at best. One run per thread.
void fma_peak_run(benchmark::State& state) {
  constexpr int chains = 16, repeats = 1024;
  __m512 acc[chains];
  for (int i = 0; i < chains; ++i) acc[i] = _mm512_set1_ps(1.0f + static_cast<float>(i) * 1e-7f);
  const __m512 scale = _mm512_set1_ps(0.999999f), shift = _mm512_set1_ps(1e-7f);
  for (auto _ : state) {
    for (int r = 0; r < repeats; ++r) {
      // Unrolled, so the accumulators stay in registers (rolled, GCC kept them in memory).
NANOCHAT_UNROLL
      for (int i = 0; i < chains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], scale, shift);
    }
    benchmark::DoNotOptimize(acc);
  }
  state.counters["GFLOP/s"] = all_threads_rate(2.0 * 16 * chains * repeats);
}

// VDPBF16PS the same way: each adds two bf16 products into each of 16 fp32 lanes (4 FLOP a
// lane), the ceiling of the AVX512_BF16 kernel (gemm_avx512_bf16.hpp).
void dpbf16_peak_run(benchmark::State& state) {
  constexpr int chains = 16, repeats = 1024;
  __m512 acc[chains];
  for (int i = 0; i < chains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80), y = (__m512bh)_mm512_set1_epi32(0x33d633d6);
  for (auto _ : state) {
    for (int r = 0; r < repeats; ++r) {
      // Unrolled, so the accumulators stay in registers (rolled, GCC kept them in memory).
NANOCHAT_UNROLL
      for (int i = 0; i < chains; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
    }
    benchmark::DoNotOptimize(acc);
  }
  state.counters["GFLOP/s"] = all_threads_rate(4.0 * 16 * chains * repeats);
}
NANOCHAT_TARGET_END

// The probes, where this CPU runs them.
void fma_peak(benchmark::State& state) {
  if (!cpu::cpu_features().avx512()) return state.SkipWithError("no AVX-512 here");
  fma_peak_run(state);
}
void dpbf16_peak(benchmark::State& state) {
  if (!cpu::cpu_features().avx512_bf16_usable()) return state.SkipWithError("no AVX512_BF16 here");
  dpbf16_peak_run(state);
}
#endif

#if defined(NANOCHAT_CPU_AMX)
NANOCHAT_TARGET_BEGIN(NANOCHAT_TARGET_AMX)
// The tile unit with the kernel's register blocking (four C tiles fed by two A and two B tiles,
// gemm_amx.hpp), loading range(0) of the four operand tiles (1 KB each, from L1) per four
// TDPBF16PS: 0 is the multiplier alone, 4 is the kernel's inner loop.
void amx_tile_peak_run(benchmark::State& state) {
  const std::int64_t loads = state.range(0);
  alignas(64) static const std::uint16_t operands[4][512] = {};  // zeros: the products do not matter
  constexpr int repeats = 256;
  cpu::amx::detail::load_tile_config();
  _tile_zero(0);  // tile numbers are immediates
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_zero(4);
  _tile_zero(5);
  _tile_zero(6);
  _tile_zero(7);
  for (auto _ : state) {
    for (int r = 0; r < repeats; ++r) {
      if (loads >= 1) _tile_loadd(4, operands[0], 64);
      if (loads >= 4) {
        _tile_loadd(5, operands[1], 64);
        _tile_loadd(6, operands[2], 64);
        _tile_loadd(7, operands[3], 64);
      }
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  _tile_release();
  state.counters["GFLOP/s"] = all_threads_rate(4.0 * 2 * 16 * 16 * 32 * repeats);
}
NANOCHAT_TARGET_END

void amx_tile_peak(benchmark::State& state) {
  if (!cpu::cpu_features().amx()) return state.SkipWithError("no AMX here, or Linux did not grant its tile state");
  amx_tile_peak_run(state);
}
#endif

// A square product, as {tokens, outputs, inputs, forward}.
void square_sizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t s : {256, 512, 1024, 2048}) b->Args({s, s, s, 0});
}
// The forward of the Linear layers of d4 (dim 256) and d20 (dim 1280) at 1024 tokens: qkv, mlp
// up, mlp down.
void model_shapes(benchmark::internal::Benchmark* b) {
  for (std::int64_t dim : {256, 1280}) {
    b->Args({1024, dim, dim, 0});
    b->Args({1024, 4 * dim, dim, 0});
    b->Args({1024, dim, 4 * dim, 0});
  }
}
// All three products of d8's Linear layers (dim 512) at the training benchmark's 2048 tokens.
void d8_step_shapes(benchmark::internal::Benchmark* b) {
  for (std::int64_t pass : {0, 1, 2}) {
    b->Args({2048, 512, 512, pass});
    b->Args({2048, 2048, 512, pass});
    b->Args({2048, 512, 2048, pass});
  }
}
// d8_step_shapes in bf16 on each bf16 kernel (the old path is avx512: the fp32 kernel on rounded
// operands).
void d8_step_kernels(benchmark::internal::Benchmark* b) {
  for (cpu::GemmKernel kernel : {cpu::GemmKernel::amx, cpu::GemmKernel::avx512_bf16, cpu::GemmKernel::avx512})
    for (std::int64_t pass : {0, 1, 2})
      for (auto [outs, ins] : {std::pair<std::int64_t, std::int64_t>{512, 512}, {2048, 512}, {512, 2048}})
        b->Args({2048, outs, ins, pass, static_cast<std::int64_t>(kernel)});
}
void norm_shapes(benchmark::internal::Benchmark* b) {
  for (std::int64_t dim : {256, 1280}) b->Args({4096, dim});
}

}  // namespace

BENCHMARK(gemm_linear<float>)->Name("sgemm_square")->Apply(square_sizes)->UseRealTime();
BENCHMARK(gemm_linear<float, GemmCompute::fp32, Impl::openblas>)->Name("openblas_sgemm_square")->Apply(square_sizes)->UseRealTime();
BENCHMARK(gemm_linear<float>)->Name("sgemm_linear")->Apply(model_shapes)->UseRealTime();
BENCHMARK(gemm_linear<float, GemmCompute::fp32, Impl::openblas>)->Name("openblas_sgemm_linear")->Apply(model_shapes)->UseRealTime();
BENCHMARK(gemm_linear<float>)->Name("sgemm_d8_step")->Apply(d8_step_shapes)->UseRealTime();
BENCHMARK(gemm_linear<float, GemmCompute::fp32, Impl::openblas>)->Name("openblas_sgemm_d8_step")->Apply(d8_step_shapes)->UseRealTime();
BENCHMARK(gemm_linear<bf16>)->Name("bf16_gemm_linear")->Apply(model_shapes)->UseRealTime();
BENCHMARK(gemm_linear<float, GemmCompute::bf16>)->Name("bf16_compute_gemm_linear")->Apply(model_shapes)->UseRealTime();
BENCHMARK(gemm_linear<float, GemmCompute::bf16, Impl::kernel>)->Name("bf16_compute_d8_step")->Apply(d8_step_kernels)->UseRealTime();
BENCHMARK(rmsnorm_forward<float>)->Name("rmsnorm_forward_f32")->Apply(norm_shapes)->UseRealTime();
BENCHMARK(rmsnorm_forward<bf16>)->Name("rmsnorm_forward_bf16")->Apply(norm_shapes)->UseRealTime();
BENCHMARK(rmsnorm_backward<float>)->Name("rmsnorm_backward_f32")->Apply(norm_shapes)->UseRealTime();
BENCHMARK(rmsnorm_backward<bf16>)->Name("rmsnorm_backward_bf16")->Apply(norm_shapes)->UseRealTime();

#if defined(NANOCHAT_X86_KERNELS)
BENCHMARK(fma_peak)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(dpbf16_peak)->Threads(1)->Threads(2)->UseRealTime();
#endif
#if defined(NANOCHAT_CPU_AMX)
BENCHMARK(amx_tile_peak)->Arg(0)->Arg(1)->Arg(4)->Threads(1)->Threads(2)->UseRealTime();
#endif

BENCHMARK_MAIN();
