#pragma once
// Comparisons of the Cuda backend with the Cpu backend, written once and run twice: on the
// emulated device in every CI run (test_backend) and on a real GPU in the GPU suite (test_gpu).

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/backend/cuda.hpp"
#include "nanochat/core/philox.hpp"
#include "relative_error.hpp"

namespace nanochat::testing {

using cpu::Cpu;
using cuda::Cuda;

template <class T>
std::vector<T> random_values(std::int64_t n, std::uint64_t seed) {
  std::vector<T> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    v[static_cast<std::size_t>(i)] = T(2.0f * philox_uniform(seed, 0, static_cast<std::uint64_t>(i)) - 1.0f);
  }
  return v;
}

template <class T, class B>
Tensor<T, B> upload(B& backend, Shape shape, const std::vector<T>& host) {
  Tensor<T, B> t(backend, shape);
  copy_from_host(backend, t.view(), std::span<const T>(host));
  return t;
}

template <class T>
std::vector<float> as_float(const std::vector<T>& v) {
  std::vector<float> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = static_cast<float>(v[i]);
  return out;
}

// One GEMM problem: shapes of the row-major operands as stored, and how C's batch is formed.
struct GemmCase {
  std::int64_t batch, m, n, k;  // batch 0: plain 2-D problem
  bool a_batched, b_batched;
  Transpose ta, tb;
  float alpha, beta;
  std::int64_t pad;  // extra elements per row: leading dimension > row width
};

inline Shape stored(std::int64_t batch, bool batched, std::int64_t rows, std::int64_t cols) {
  return batch > 0 && batched ? Shape{batch, rows, cols} : Shape{rows, cols};
}

// Runs the case on both backends, with inputs of type TAB and output TC, and returns
// (cuda result, cpu result) as floats. Padded operands are views into wider rows.
template <class TC, class TAB>
std::pair<std::vector<float>, std::vector<float>> run_gemm(Cuda& cuda, const GemmCase& g, std::uint64_t seed,
                                                          GemmOptions options = {}) {
  Cpu cpu;
  const bool ta = g.ta == Transpose::yes, tb = g.tb == Transpose::yes;
  const Shape a_shape = stored(g.batch, g.a_batched, ta ? g.k : g.m, (ta ? g.m : g.k) + g.pad);
  const Shape b_shape = stored(g.batch, g.b_batched, tb ? g.n : g.k, (tb ? g.k : g.n) + g.pad);
  const Shape c_shape = g.batch > 0 ? Shape{g.batch, g.m, g.n} : Shape{g.m, g.n};
  const auto a_host = random_values<TAB>(a_shape.numel(), seed);
  const auto b_host = random_values<TAB>(b_shape.numel(), seed + 1);
  const auto c_host = random_values<TC>(c_shape.numel(), seed + 2);
  auto unpad = [&](auto view) { return view.slice(-1, 0, view.size(-1) - g.pad); };

  auto a_gpu = upload(cuda, a_shape, a_host);
  auto b_gpu = upload(cuda, b_shape, b_host);
  auto c_gpu = upload(cuda, c_shape, c_host);
  cuda::gemm(cuda, c_gpu.view(), unpad(a_gpu.view()), unpad(b_gpu.view()), g.ta, g.tb, g.alpha, g.beta, options);
  // The Cpu reference always produces float; bf16 outputs are compared after rounding.
  auto a_cpu = upload(cpu, a_shape, a_host);
  auto b_cpu = upload(cpu, b_shape, b_host);
  auto c_cpu = upload(cpu, c_shape, as_float(c_host));
  cpu::gemm(cpu, c_cpu.view(), TensorView<const TAB, Cpu>(unpad(a_cpu.view())),
            TensorView<const TAB, Cpu>(unpad(b_cpu.view())), g.ta, g.tb, g.alpha, g.beta, options);
  std::vector<float> expected = to_host(cpu, c_cpu.view());
  if constexpr (std::is_same_v<TC, bf16>) {
    for (float& v : expected) v = round_to_bf16(v);
  }
  return {as_float(to_host(cuda, c_gpu.view())), expected};
}

inline std::vector<GemmCase> gemm_cases() {
  std::vector<GemmCase> cases;
  const std::int64_t sizes[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 17, 65}, {64, 64, 64}, {129, 31, 77}};
  for (auto [m, n, k] : sizes)
    for (Transpose ta : {Transpose::no, Transpose::yes})
      for (Transpose tb : {Transpose::no, Transpose::yes}) {
        cases.push_back({0, m, n, k, false, false, ta, tb, 1.0f, 0.0f, 0});
        cases.push_back({3, m, n, k, true, true, ta, tb, 1.0f, 0.0f, 0});  // batched
        cases.push_back({2, m, n, k, false, true, ta, tb, 0.5f, 1.0f, 0});  // A broadcast
        cases.push_back({2, m, n, k, true, false, ta, tb, -1.0f, 0.25f, 3});  // B broadcast, padded
      }
  return cases;
}

inline void check_gemm_matches_cpu(Cuda& cuda) {
  std::uint64_t seed = 100;
  for (const GemmCase& g : gemm_cases()) {
    CAPTURE(g.batch);
    CAPTURE(g.m);
    CAPTURE(g.n);
    CAPTURE(g.k);
    CAPTURE(g.ta == Transpose::yes);
    CAPTURE(g.tb == Transpose::yes);
    CAPTURE(g.pad);
    auto [got, want] = run_gemm<float, float>(cuda, g, seed);
    CHECK(relative_error(got, want) < 1e-5);
    auto [got16, want16] = run_gemm<float, bf16>(cuda, g, seed);
    CHECK(relative_error(got16, want16) < 1e-5);
    // fp32 operands computed in bf16: cuBLASLt's FAST_16BF and the Cpu's AMX or rounded path.
    auto [got_fast, want_fast] = run_gemm<float, float>(cuda, g, seed, GemmOptions{.compute = GemmCompute::bf16});
    CHECK(relative_error(got_fast, want_fast) < 1e-5);
    // bf16 output: each element may round differently by one bf16 ulp.
    auto [got_bf, want_bf] = run_gemm<bf16, bf16>(cuda, g, seed);
    CHECK(relative_error(got_bf, want_bf) < 8e-3);
    seed += 10;
  }
}

// RMSNorm forward and backward on both backends for one (rows, dim) shape; `offset` starts the
// data that many elements into the allocation, defeating 16-byte alignment.
template <class T>
void check_rmsnorm_matches_cpu(Cuda& cuda, std::int64_t rows, std::int64_t dim, std::int64_t offset,
                               std::uint64_t seed) {
  CAPTURE(rows);
  CAPTURE(dim);
  CAPTURE(offset);
  Cpu cpu;
  const Shape shape{rows, dim};
  const std::int64_t n = rows * dim;
  auto x_host = random_values<T>(n + offset, seed);
  auto dy_host = random_values<T>(n + offset, seed + 1);

  auto x_cpu = upload(cpu, {n + offset}, x_host), dy_cpu = upload(cpu, {n + offset}, dy_host);
  Tensor<T, Cpu> y_cpu(cpu, {n + offset}), dx_cpu(cpu, {n + offset});
  Tensor<float, Cpu> r_cpu(cpu, {rows});
  auto part = [&](auto& t) { return t.view().slice(0, offset, offset + n).reshape(shape); };
  cpu::rmsnorm_forward<T>(cpu, part(y_cpu), r_cpu.view(), part(x_cpu));
  cpu::rmsnorm_backward<T>(cpu, part(dx_cpu), part(dy_cpu), part(x_cpu), r_cpu.view());

  auto x_gpu = upload(cuda, {n + offset}, x_host), dy_gpu = upload(cuda, {n + offset}, dy_host);
  Tensor<T, Cuda> y_gpu(cuda, {n + offset}), dx_gpu(cuda, {n + offset});
  Tensor<float, Cuda> r_gpu(cuda, {rows});
  cuda::rmsnorm_forward<T>(cuda, part(y_gpu), r_gpu.view(), part(x_gpu));
  cuda::rmsnorm_backward<T>(cuda, part(dx_gpu), part(dy_gpu), part(x_gpu), r_gpu.view());

  // The accumulating form (the residual stream's) adds onto what din holds: dx + dx again.
  cpu::rmsnorm_backward<T>(cpu, part(dx_cpu), part(dy_cpu), part(x_cpu), r_cpu.view(), true);
  cuda::rmsnorm_backward<T>(cuda, part(dx_gpu), part(dy_gpu), part(x_gpu), r_gpu.view(), true);

  const double tol = std::is_same_v<T, float> ? 2e-6 : 8e-3;
  CHECK(relative_error(to_host(cuda, r_gpu.view()), to_host(cpu, r_cpu.view())) < 2e-6);
  CHECK(relative_error(as_float(to_host(cuda, part(y_gpu))), as_float(to_host(cpu, part(y_cpu)))) < tol);
  CHECK(relative_error(as_float(to_host(cuda, part(dx_gpu))), as_float(to_host(cpu, part(dx_cpu)))) <
        (std::is_same_v<T, float> ? 1e-5 : 2e-2));
}

inline void check_rmsnorm_shapes(Cuda& cuda) {
  std::uint64_t seed = 7;
  for (std::int64_t rows : {1, 3, 37, 130})
    for (std::int64_t dim : {1, 3, 7, 64, 100, 129, 256, 1280}) {
      check_rmsnorm_matches_cpu<float>(cuda, rows, dim, 0, seed++);
      check_rmsnorm_matches_cpu<bf16>(cuda, rows, dim, 0, seed++);
    }
  // Rows whose width is a multiple of the vector width but whose base is not 16-byte aligned.
  check_rmsnorm_matches_cpu<float>(cuda, 5, 256, 1, seed++);
  check_rmsnorm_matches_cpu<bf16>(cuda, 5, 256, 3, seed++);
}

// The same Philox stream gives the same bits on both backends (float and bf16).
inline void check_fill_normal_bit_identical(Cuda& cuda) {
  Cpu cpu;
  const std::int64_t n = 100'003;
  Tensor<float, Cpu> f_cpu(cpu, {n});
  Tensor<float, Cuda> f_gpu(cuda, {n});
  cpu::fill_normal<float>(cpu, f_cpu.view(), 42, 3, 0.0f, 0.02f);
  cuda::fill_normal<float>(cuda, f_gpu.view(), 42, 3, 0.0f, 0.02f);
  CHECK(to_host(cpu, f_cpu.view()) == to_host(cuda, f_gpu.view()));
  Tensor<bf16, Cpu> h_cpu(cpu, {n});
  Tensor<bf16, Cuda> h_gpu(cuda, {n});
  cpu::fill_normal<bf16>(cpu, h_cpu.view(), 7, 0, 1.0f, 1.0f);
  cuda::fill_normal<bf16>(cuda, h_gpu.view(), 7, 0, 1.0f, 1.0f);
  const auto a = to_host(cpu, h_cpu.view()), b = to_host(cuda, h_gpu.view());
  int differing = 0;
  for (std::size_t i = 0; i < a.size(); ++i) differing += a[i].bits != b[i].bits;
  CHECK(differing == 0);
}

struct AttentionCase {
  std::int64_t batch, seq, heads, kv_heads, dim;
};

// Small shapes: the emulator runs every GPU thread as a host thread, and one mma costs two warp
// barriers. T = 77 ends inside the second 64-row tile (and the third 32-query tile of dk/dv), T = 1
// is a single row; GQA 1:1, 2:1 and 4:1; head dims 64 and 128.
inline std::vector<AttentionCase> attention_cases() {
  return {{1, 77, 4, 1, 64}, {2, 33, 2, 2, 128}, {1, 70, 4, 2, 128}, {1, 1, 2, 1, 64}};
}

// Cuda's FlashAttention-2 forward and backward against the Cpu backend's attention with bf16
// products, on the same fp32 inputs. Both round q, k, v (and dy) to bf16 identically; they differ
// in where p is rounded (the Cpu rounds the normalised probabilities, FlashAttention-2 the
// unnormalised exp(s - running max)) and in ds's rounding, each an error of 2^-9 relative per
// element that averages down over a row: the Cpu's own bf16 path is 0.3-0.4 % from fp32, so
// 1e-2 leaves room while a misplaced element (an error the size of the values) fails (measured
// 1.8e-3). The scores are the same bf16 products in fp32, so the log-sum-exp agrees to fp32
// rounding (measured 4e-8).
inline void check_attention_matches_cpu(Cuda& cuda, const AttentionCase& c, std::uint64_t seed) {
  CAPTURE(c.batch);
  CAPTURE(c.seq);
  CAPTURE(c.heads);
  CAPTURE(c.kv_heads);
  CAPTURE(c.dim);
  Cpu cpu;
  const Shape q_shape{c.batch, c.seq, c.heads, c.dim}, kv_shape{c.batch, c.seq, c.kv_heads, c.dim};
  const Shape lse_shape{c.batch, c.heads, c.seq};
  std::vector<float> q = random_values<float>(q_shape.numel(), seed), k = random_values<float>(kv_shape.numel(), seed + 1);
  std::vector<float> v = random_values<float>(kv_shape.numel(), seed + 2), dy = random_values<float>(q_shape.numel(), seed + 3);
  // Uniform in [-2, 2): scores of a few units, so the softmax is neither flat nor one-hot.
  for (auto* x : {&q, &k}) for (float& e : *x) e *= 2.0f;
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.dim));

  auto run = [&](auto& backend) {
    using B = std::remove_reference_t<decltype(backend)>;
    auto qt = upload(backend, q_shape, q), kt = upload(backend, kv_shape, k), vt = upload(backend, kv_shape, v);
    auto dyt = upload(backend, q_shape, dy);
    Tensor<float, B> out(backend, q_shape), lse(backend, lse_shape), dq(backend, q_shape), dk(backend, kv_shape),
        dv(backend, kv_shape);
    attention_forward(backend, out.view(), lse.view(), qt.view(), kt.view(), vt.view(), scale, GemmCompute::bf16);
    attention_backward(backend, dq.view(), dk.view(), dv.view(), dyt.view(), lse.view(), qt.view(), kt.view(), vt.view(),
                       scale, GemmCompute::bf16);
    return std::vector<std::vector<float>>{to_host(backend, out.view()), to_host(backend, lse.view()),
                                           to_host(backend, dq.view()), to_host(backend, dk.view()),
                                           to_host(backend, dv.view())};
  };
  const auto want = run(cpu), got = run(cuda);
  // The backward rounds at the same points as the Cpu's (p = exp(s - lse) normalised, ds, dy, v):
  // measured 1e-7 apart on the emulator, where only exp and the summation order differ.
  const std::string names[] = {"out", "lse", "dq", "dk", "dv"};
  const double tolerance[] = {1e-2, 1e-5, 1e-3, 1e-3, 1e-3};
  for (std::size_t i = 0; i < 5; ++i) {
    const std::string& tensor = names[i];
    CAPTURE(tensor);
    CHECK(relative_error(got[i], want[i]) < tolerance[i]);
  }
}

inline void check_attention_shapes(Cuda& cuda) {
  std::uint64_t seed = 500;
  for (const AttentionCase& c : attention_cases()) check_attention_matches_cpu(cuda, c, seed += 10);
}

}  // namespace nanochat::testing
