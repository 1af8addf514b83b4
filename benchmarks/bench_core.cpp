// Cpu backend throughput: GEMM in GFLOP/s (square sizes, and the shapes of a d4..d20 forward
// pass; ours beside OpenBLAS's sgemm, and computing in bf16) and RMSNorm in GB/s. The best square
// sgemm figure is the "sgemm peak" that the model benchmarks are judged against
// (docs/benchmarks.md).

#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cstdint>

#include "nanochat/backend/cpu.hpp"

using namespace nanochat;
using nanochat::cpu::Cpu;

namespace {

template <class T>
Tensor<T, Cpu> random_tensor(Cpu& cpu, Shape shape, std::uint64_t seed) {
  Tensor<T, Cpu> t(cpu, shape);
  cpu::fill_normal<T>(cpu, t.view(), seed, 0, 0.0f, 1.0f);
  return t;
}

// C[m, n] = A[m, k] * B[n, k]^T: a Linear layer's forward (weights stored [out, in]), through
// cpu::gemm with the given compute type, or (Openblas) straight through OpenBLAS's sgemm for the
// side-by-side (run it with OPENBLAS_CORETYPE set where OpenBLAS does not know the CPU).
enum class Impl { ours, openblas };
template <class T, GemmCompute Compute = GemmCompute::fp32, Impl Using = Impl::ours>
void gemm_linear(benchmark::State& state) {
  const std::int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  Cpu cpu;
  auto a = random_tensor<T>(cpu, {m, k}, 1);
  auto b = random_tensor<T>(cpu, {n, k}, 2);
  Tensor<float, Cpu> c(cpu, {m, n});
  for (auto _ : state) {
    if constexpr (Using == Impl::openblas) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(m), static_cast<blasint>(n),
                  static_cast<blasint>(k), 1.0f, a.data(), static_cast<blasint>(k), b.data(), static_cast<blasint>(k),
                  0.0f, c.data(), static_cast<blasint>(n));
    } else {
      cpu::gemm(cpu, c.view(), TensorView<const T, Cpu>(a.view()), TensorView<const T, Cpu>(b.view()), Transpose::no,
                Transpose::yes, 1.0f, 0.0f, GemmOptions{.compute = Compute});
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

void square_sizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t s : {256, 512, 1024, 2048}) b->Args({s, s, s});
}
// Linear layers of d4 (dim 256) and d20 (dim 1280) at 1024 tokens: qkv, mlp up, mlp down.
void model_shapes(benchmark::internal::Benchmark* b) {
  for (std::int64_t dim : {256, 1280}) {
    b->Args({1024, dim, dim});
    b->Args({1024, 4 * dim, dim});
    b->Args({1024, dim, 4 * dim});
  }
}
void norm_shapes(benchmark::internal::Benchmark* b) {
  for (std::int64_t dim : {256, 1280}) b->Args({4096, dim});
}

}  // namespace

BENCHMARK(gemm_linear<float>)->Name("sgemm_square")->Apply(square_sizes)->UseRealTime();
BENCHMARK(gemm_linear<float, GemmCompute::fp32, Impl::openblas>)->Name("openblas_sgemm_square")->Apply(square_sizes)->UseRealTime();
BENCHMARK(gemm_linear<float>)->Name("sgemm_linear")->Apply(model_shapes)->UseRealTime();
BENCHMARK(gemm_linear<float, GemmCompute::fp32, Impl::openblas>)->Name("openblas_sgemm_linear")->Apply(model_shapes)->UseRealTime();
BENCHMARK(gemm_linear<bf16>)->Name("bf16_gemm_linear")->Apply(model_shapes)->UseRealTime();
BENCHMARK(gemm_linear<float, GemmCompute::bf16>)->Name("bf16_compute_gemm_linear")->Apply(model_shapes)->UseRealTime();
BENCHMARK(rmsnorm_forward<float>)->Name("rmsnorm_forward_f32")->Apply(norm_shapes)->UseRealTime();
BENCHMARK(rmsnorm_forward<bf16>)->Name("rmsnorm_forward_bf16")->Apply(norm_shapes)->UseRealTime();
BENCHMARK(rmsnorm_backward<float>)->Name("rmsnorm_backward_f32")->Apply(norm_shapes)->UseRealTime();
BENCHMARK(rmsnorm_backward<bf16>)->Name("rmsnorm_backward_bf16")->Apply(norm_shapes)->UseRealTime();

BENCHMARK_MAIN();
