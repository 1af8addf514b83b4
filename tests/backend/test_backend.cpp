// The Cpu ops against plain double-precision references, and the Cuda backend on the emulated
// device against the Cpu ops (backend_cases.hpp, shared with the GPU suite).

#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "backend_cases.hpp"

using namespace nanochat;
using namespace nanochat::testing;

namespace {

// C = alpha op(A) op(B) + beta C in double, straight from the definition, for row-major operands
// with leading dimensions lda, ldb (beta == 0: C is not read).
// With compute bf16, every operand element is first rounded to bf16.
template <class TA, class TB>
std::vector<float> naive_gemm(const std::vector<TA>& a, std::int64_t lda, const std::vector<TB>& b, std::int64_t ldb,
                              std::vector<float> c, std::int64_t m, std::int64_t n, std::int64_t k, bool ta, bool tb,
                              float alpha, float beta, GemmCompute compute = GemmCompute::fp32) {
  const auto value = [compute](auto x) {
    const float f = static_cast<float>(x);
    return static_cast<double>(compute == GemmCompute::bf16 ? round_to_bf16(f) : f);
  };
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (std::int64_t p = 0; p < k; ++p) {
        acc += value(ta ? a[p * lda + i] : a[i * lda + p]) * value(tb ? b[j * ldb + p] : b[p * ldb + j]);
      }
      c[i * n + j] = static_cast<float>(alpha * acc + (beta == 0.0f ? 0.0 : beta * c[i * n + j]));
    }
  return c;
}

// One Cpu gemm against the definition: operands padded by `pad` per row (a strided view), C
// filled with NaN when beta is 0 (it must not be read). On the given kernel, else the process's.
template <class TA, class TB>
void check_cpu_gemm(std::int64_t m, std::int64_t n, std::int64_t k, bool ta, bool tb, float alpha, float beta,
                    std::int64_t pad, std::uint64_t seed, GemmCompute compute = GemmCompute::fp32,
                    std::optional<cpu::GemmKernel> kernel = std::nullopt) {
  CAPTURE(static_cast<int>(compute));
  CAPTURE(std::string(kernel ? cpu::gemm_kernel_name(*kernel) : "chosen"));
  CAPTURE(m);
  CAPTURE(n);
  CAPTURE(k);
  CAPTURE(ta);
  CAPTURE(tb);
  CAPTURE(beta);
  Cpu cpu;
  const std::int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad;
  const auto a = random_values<TA>((ta ? k : m) * lda, seed), b = random_values<TB>((tb ? n : k) * ldb, seed + 1);
  auto c0 = random_values<float>(m * n, seed + 2);
  if (beta == 0.0f) std::fill(c0.begin(), c0.end(), std::nanf(""));
  auto ta_ = upload(cpu, ta ? Shape{k, lda} : Shape{m, lda}, a);
  auto tb_ = upload(cpu, tb ? Shape{n, ldb} : Shape{k, ldb}, b);
  auto tc = upload(cpu, {m, n}, c0);
  const TensorView<const TA, Cpu> av(ta_.view().slice(1, 0, lda - pad));
  const TensorView<const TB, Cpu> bv(tb_.view().slice(1, 0, ldb - pad));
  if (kernel) cpu::gemm_on(*kernel, cpu, tc.view(), av, bv, Transpose{ta}, Transpose{tb}, alpha, beta, GemmOptions{.compute = compute});
  else cpu::gemm(cpu, tc.view(), av, bv, Transpose{ta}, Transpose{tb}, alpha, beta, GemmOptions{.compute = compute});
  const auto got = to_host(cpu, tc.view());
  CHECK(relative_error(got, naive_gemm(a, lda, b, ldb, c0, m, n, k, ta, tb, alpha, beta, compute)) < 1e-6);
  if (compute == GemmCompute::bf16 && (std::is_same_v<TA, float> || std::is_same_v<TB, float>) && k > 16) {
    // The rounding really happens: the unrounded product is 2^-9-ish away, far above fp32 noise.
    CHECK(relative_error(got, naive_gemm(a, lda, b, ldb, c0, m, n, k, ta, tb, alpha, beta)) > 1e-4);
  }
}

// The kernels this machine runs.
std::vector<cpu::GemmKernel> runnable_kernels() {
  std::vector<cpu::GemmKernel> kernels;
  for (cpu::GemmKernel k : cpu::all_gemm_kernels)
    if (cpu::gemm_kernel_missing(k, cpu::cpu_features()).empty()) kernels.push_back(k);
  return kernels;
}

}  // namespace

TEST_CASE("Cpu gemm equals the definition: every transpose, several blocks deep and wide, strides, bf16") {
  // Sizes straddle the kernel tile (12 x 32), the packed blocks (120 rows, 512 columns, depth
  // 512) and the split between two threads.
  const std::int64_t sizes[][3] = {{1, 1, 1}, {19, 23, 29}, {12, 32, 512}, {251, 70, 600}, {13, 2100, 40}, {97, 45, 513}};
  std::uint64_t seed = 1;
  for (auto [m, n, k] : sizes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        check_cpu_gemm<float, float>(m, n, k, ta, tb, 0.75f, -0.5f, 0, seed++);
        check_cpu_gemm<float, float>(m, n, k, ta, tb, 1.0f, 0.0f, 3, seed++);
        check_cpu_gemm<bf16, bf16>(m, n, k, ta, tb, 1.0f, 0.0f, 1, seed++);
        check_cpu_gemm<float, bf16>(m, n, k, ta, tb, -1.0f, 1.0f, 0, seed++);
        check_cpu_gemm<bf16, float>(m, n, k, ta, tb, 0.5f, 1.0f, 2, seed++);
      }
}

TEST_CASE("Cpu gemm computing in bf16 equals the definition on rounded operands (AMX where there is one)") {
  // Sizes straddle the AMX tile (32 x 32), its packed blocks (depth 512, 256 rows, 1024 columns)
  // and the fp32 kernel's; float x float (training) and float x bf16 (bf16 weights).
  const std::int64_t sizes[][3] = {{1, 1, 1}, {19, 23, 29}, {32, 32, 512}, {251, 70, 600}, {13, 1100, 40}, {300, 45, 1030}};
  std::uint64_t seed = 900;
  for (auto [m, n, k] : sizes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        check_cpu_gemm<float, float>(m, n, k, ta, tb, 0.75f, -0.5f, 0, seed++, GemmCompute::bf16);
        check_cpu_gemm<float, float>(m, n, k, ta, tb, 1.0f, 0.0f, 3, seed++, GemmCompute::bf16);
        check_cpu_gemm<float, float>(m, n, k, ta, tb, 1.0f, 1.0f, 0, seed++, GemmCompute::bf16);  // C tiles loaded
        check_cpu_gemm<float, bf16>(m, n, k, ta, tb, -1.0f, 1.0f, 1, seed++, GemmCompute::bf16);
        check_cpu_gemm<bf16, float>(m, n, k, ta, tb, 1.0f, 0.0f, 2, seed++, GemmCompute::bf16);
      }
}

TEST_CASE("Cpu gemm on every kernel this machine runs equals the definition, on bf16-rounded operands for bf16") {
  // Each kernel forced (the process's choice is tested above): the tiles (12 x 32, AMX 32 x 32),
  // partial ones, odd depths (a pair padded with zero, also at the end of a 512-deep block), several
  // blocks deep, wide and tall; every transpose, strides, alpha and beta (beta 0 over NaN);
  // float x float, bf16 x bf16 and float x bf16 operands.
  const std::int64_t sizes[][3] = {{1, 1, 1}, {19, 23, 29}, {12, 32, 512}, {33, 70, 513}, {251, 45, 1031}, {13, 1100, 40}};
  std::uint64_t seed = 3000;
  const auto kernels = runnable_kernels();
  REQUIRE(kernels.back() == cpu::GemmKernel::openblas);
  for (cpu::GemmKernel kernel : kernels)
    for (auto [m, n, k] : sizes)
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          constexpr auto bf16c = GemmCompute::bf16;
          check_cpu_gemm<float, float>(m, n, k, ta, tb, 0.75f, -0.5f, 0, seed++, bf16c, kernel);
          check_cpu_gemm<float, float>(m, n, k, ta, tb, 1.0f, 0.0f, 3, seed++, bf16c, kernel);
          check_cpu_gemm<bf16, bf16>(m, n, k, ta, tb, 1.0f, 1.0f, 1, seed++, bf16c, kernel);
          check_cpu_gemm<float, bf16>(m, n, k, ta, tb, -1.0f, 0.0f, 0, seed++, bf16c, kernel);
          if (kernel == cpu::GemmKernel::avx512 || kernel == cpu::GemmKernel::openblas) {
            check_cpu_gemm<float, float>(m, n, k, ta, tb, 0.5f, 1.0f, 2, seed++, GemmCompute::fp32, kernel);
            check_cpu_gemm<bf16, bf16>(m, n, k, ta, tb, 1.0f, 0.0f, 0, seed++, GemmCompute::fp32, kernel);
          }
        }
}

TEST_CASE("the GEMM kernels are chosen from the CPU's features and NANOCHAT_CPU_GEMM forces one") {
  using cpu::GemmKernel;
  cpu::CpuFeatures all;
  all.avx512f = all.avx512bw = all.avx512vl = all.avx512dq = all.avx512_bf16 = true;
  all.amx_tile = all.amx_bf16 = all.os_avx512 = all.os_amx = true;
  const auto chosen = [](const char* forced, const cpu::CpuFeatures& f) {
    const cpu::GemmKernels k = cpu::choose_gemm_kernels(forced, f);
    return std::string(cpu::gemm_kernel_name(k.fp32)) + "/" + cpu::gemm_kernel_name(k.bf16);
  };
#if defined(NANOCHAT_X86_KERNELS)
  // The best each machine offers: a feature the OS withholds counts as missing.
  cpu::CpuFeatures no_grant = all, no_bf16 = all, no_zmm = all, no_bw = all;
  no_grant.os_amx = false;
  no_bf16.avx512_bf16 = false;
  no_bf16.amx_tile = no_bf16.amx_bf16 = false;
  no_zmm.os_avx512 = false;
  no_bw.avx512bw = false;
  CHECK(chosen(nullptr, all) == "avx512/amx");
  CHECK(chosen("", no_grant) == "avx512/avx512_bf16");
  CHECK(chosen(nullptr, no_bf16) == "avx512/avx512");
  CHECK(chosen(nullptr, no_zmm) == "openblas/openblas");
  CHECK(chosen(nullptr, no_bw) == "openblas/openblas");
  CHECK(chosen(nullptr, cpu::CpuFeatures{}) == "openblas/openblas");
  // Forcing sets the bf16 kernel (fp32 stays on AVX-512 unless OpenBLAS is forced).
  CHECK(chosen("avx512_bf16", all) == "avx512/avx512_bf16");
  CHECK(chosen("avx512", all) == "avx512/avx512");
  CHECK(chosen("openblas", all) == "openblas/openblas");
  CHECK(chosen("amx", all) == "avx512/amx");
  CHECK_THROWS_WITH(chosen("amx", no_grant), doctest::Contains("NANOCHAT_CPU_GEMM=amx: this machine lacks the OS's grant"));
  CHECK_THROWS_WITH(chosen("avx512_bf16", no_bf16), doctest::Contains("lacks avx512_bf16"));
  CHECK_THROWS_WITH(chosen("avx512", no_zmm), doctest::Contains("NANOCHAT_CPU_GEMM=avx512: this machine lacks the OS's zmm"));
#else
  CHECK(chosen(nullptr, all) == "openblas/openblas");
  CHECK_THROWS_WITH(chosen("avx512", all), doctest::Contains("NANOCHAT_CPU_GEMM=avx512"));
#endif
  CHECK_THROWS_WITH(chosen("AVX512", all), doctest::Contains("NANOCHAT_CPU_GEMM=AVX512: unknown GEMM kernel"));
  CHECK_THROWS_WITH(chosen("sse", cpu::CpuFeatures{}), doctest::Contains("unknown GEMM kernel"));

  // This machine: what a build for it promises is there; the process's choice is the best here
  // (unless the environment forces one), and a kernel it lacks is refused.
  const cpu::CpuFeatures& here = cpu::cpu_features();
  CAPTURE(here.describe());
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
  CHECK(here.avx512());
#endif
#if defined(__AVX512BF16__)
  CHECK(here.avx512_bf16_usable());
#endif
  const char* forced = std::getenv("NANOCHAT_CPU_GEMM");
  const cpu::GemmKernels process = cpu::gemm_kernels(), best = cpu::choose_gemm_kernels(nullptr, here);
  if (forced == nullptr || *forced == '\0') {
    CHECK(process.fp32 == best.fp32);
    CHECK(process.bf16 == best.bf16);
  }
  CHECK(best.bf16 == (here.amx() ? GemmKernel::amx : here.avx512_bf16_usable() ? GemmKernel::avx512_bf16
                      : here.avx512() ? GemmKernel::avx512 : GemmKernel::openblas));
  Cpu cpu;
  auto a = upload(cpu, {4, 4}, random_values<float>(16, 1)), c = upload(cpu, {4, 4}, random_values<float>(16, 2));
  const TensorView<const float, Cpu> av(a.view());
  for (GemmKernel k : cpu::all_gemm_kernels) {
    CAPTURE(std::string(cpu::gemm_kernel_name(k)));
    const std::string missing = cpu::gemm_kernel_missing(k, here);
    if (!missing.empty()) {
      CHECK_THROWS_WITH(cpu::gemm_on(k, cpu, c.view(), av, av, Transpose::no, Transpose::no, 1.0f, 0.0f,
                                     GemmOptions{.compute = GemmCompute::bf16}),
                        doctest::Contains(missing.c_str()));
    } else if (k == GemmKernel::amx || k == GemmKernel::avx512_bf16) {
      // A bf16 kernel does not compute in fp32 (GemmCompute is a contract).
      CHECK_THROWS_WITH(cpu::gemm_on(k, cpu, c.view(), av, av, Transpose::no, Transpose::no, 1.0f, 0.0f, {}),
                        doctest::Contains("computes only in bf16"));
    }
  }
}

TEST_CASE("Cpu gemm computing in bf16: an operand stored in bf16 gives the bits of the float it was rounded from") {
  // What lets a bf16 Config keep the Linear layers' inputs in bf16 (model/activations.hpp): the
  // product of the rounded copy is the product of the float, bit for bit, as A or as B.
  const std::int64_t sizes[][3] = {{19, 23, 29}, {251, 70, 600}, {13, 1100, 40}};
  std::uint64_t seed = 1700;
  Cpu cpu;
  for (auto [m, n, k] : sizes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        CAPTURE(m);
        CAPTURE(n);
        CAPTURE(k);
        CAPTURE(ta);
        CAPTURE(tb);
        const Shape a_shape = ta ? Shape{k, m} : Shape{m, k}, b_shape = tb ? Shape{n, k} : Shape{k, n};
        const auto a = random_values<float>(a_shape.numel(), seed++), b = random_values<float>(b_shape.numel(), seed++);
        std::vector<bf16> a16(a.size()), b16(b.size());
        std::transform(a.begin(), a.end(), a16.begin(), [](float v) { return bf16(v); });
        std::transform(b.begin(), b.end(), b16.begin(), [](float v) { return bf16(v); });
        auto fa = upload(cpu, a_shape, a), fb = upload(cpu, b_shape, b);
        auto ha = upload(cpu, a_shape, a16), hb = upload(cpu, b_shape, b16);
        const auto c0 = random_values<float>(m * n, seed++);
        auto product = [&](auto av, auto bv) {
          auto c = upload(cpu, {m, n}, c0);
          cpu::gemm(cpu, c.view(), av, bv, Transpose{ta}, Transpose{tb}, 0.75f, 1.0f,
                    GemmOptions{.compute = GemmCompute::bf16});
          return to_host(cpu, c.view());
        };
        const auto from_floats = product(fa.view(), fb.view());
        CHECK(product(ha.view(), fb.view()) == from_floats);
        CHECK(product(fa.view(), hb.view()) == from_floats);
        CHECK(product(ha.view(), hb.view()) == from_floats);
      }
}

TEST_CASE("Cpu gemm with a structure: the wanted triangle of C, a triangular op(A), in fp32 and bf16") {
  // Square products deeper than a packed block (512 deep, every kernel alike) and wider than a
  // thread's half, so whole tiles and whole k-blocks are skipped; beta 0 (NaN in C) and 1, every
  // transpose of A; on every kernel this machine runs.
  Cpu cpu;
  const std::int64_t cols = 70;
  std::uint64_t seed = 500;
  for (cpu::GemmKernel kernel : runnable_kernels())
  for (GemmCompute compute : {GemmCompute::fp32, GemmCompute::bf16})
    for (Triangle tri : {Triangle::lower, Triangle::upper})
      for (bool ta : {false, true})
        for (float beta : {0.0f, 1.0f}) {
          if (compute == GemmCompute::fp32 && kernel != cpu::GemmKernel::avx512 && kernel != cpu::GemmKernel::openblas)
            continue;  // a bf16 kernel
          const std::int64_t n = 560;
          CAPTURE(std::string(cpu::gemm_kernel_name(kernel)));
          CAPTURE(static_cast<int>(compute));
          CAPTURE(static_cast<int>(tri));
          CAPTURE(ta);
          CAPTURE(beta);
          const auto in_triangle = [tri](std::int64_t i, std::int64_t j) { return tri == Triangle::lower ? j <= i : j >= i; };
          // C triangle: C = op(A) B^T-like square product, compared on the triangle only.
          auto a = random_values<float>(n * n, seed++), b = random_values<float>(n * n, seed++);
          auto c0 = random_values<float>(n * n, seed++);
          if (beta == 0.0f) std::fill(c0.begin(), c0.end(), std::nanf(""));
          auto ta_ = upload(cpu, {n, n}, a), tb_ = upload(cpu, {n, n}, b), tc = upload(cpu, {n, n}, c0);
          cpu::gemm_on(kernel, cpu, tc.view(), TensorView<const float, Cpu>(ta_.view()), TensorView<const float, Cpu>(tb_.view()),
                       Transpose{ta}, Transpose::yes, 1.0f, beta, GemmOptions{tri, Triangle::full, compute});
          const auto want = naive_gemm(a, n, b, n, c0, n, n, n, ta, true, 1.0f, beta, compute);
          const auto got = to_host(cpu, tc.view());
          double worst = 0;
          for (std::int64_t i = 0; i < n; ++i)
            for (std::int64_t j = 0; j < n; ++j)
              if (in_triangle(i, j)) worst = std::max(worst, std::fabs(double{got[i * n + j]} - want[i * n + j]));
          CHECK(worst < 1e-4);
          // A triangle: op(A) zero outside it, C = op(A) B with B [n, cols], compared everywhere.
          for (std::int64_t i = 0; i < n; ++i)
            for (std::int64_t p = 0; p < n; ++p)
              if (!in_triangle(i, p)) a[ta ? p * n + i : i * n + p] = 0.0f;
          auto b2 = random_values<float>(n * cols, seed++);
          auto c2 = random_values<float>(n * cols, seed++);
          if (beta == 0.0f) std::fill(c2.begin(), c2.end(), std::nanf(""));
          auto ta2 = upload(cpu, {n, n}, a), tb2 = upload(cpu, {n, cols}, b2), tc2 = upload(cpu, {n, cols}, c2);
          cpu::gemm_on(kernel, cpu, tc2.view(), TensorView<const float, Cpu>(ta2.view()), TensorView<const float, Cpu>(tb2.view()),
                       Transpose{ta}, Transpose::no, 1.0f, beta, GemmOptions{Triangle::full, tri, compute});
          CHECK(relative_error(to_host(cpu, tc2.view()),
                               naive_gemm(a, n, b2, cols, c2, n, cols, n, ta, false, 1.0f, beta, compute)) < 1e-6);
        }
}

TEST_CASE("Cpu gemm gives the same bits on one thread as on several, whoever claims which rows") {
  // Several blocks wide and deep, so the threads meet at every block's barriers and claim rows in
  // shrinking chunks; short products, whose block columns are split too; triangles of C and of
  // op(A), whose rows differ in work; both transposes; beta 0 over a NaN-filled C. Each tile sums
  // in one order whichever thread computes it.
  struct Case {
    std::int64_t m, n, k;
    bool ta, tb;
    float beta;
    GemmOptions options;
  };
  constexpr auto fp32 = GemmCompute::fp32, bf16 = GemmCompute::bf16;
  const Case cases[] = {{300, 1100, 600, false, false, 1.0f, {}},
                        {300, 1100, 600, true, true, 0.0f, {}},
                        {20, 1500, 300, false, true, 1.0f, {}},
                        {600, 600, 600, false, false, 1.0f, {Triangle::lower, Triangle::full, fp32}},
                        {600, 300, 600, true, false, 0.0f, {Triangle::full, Triangle::upper, fp32}},
                        {300, 1100, 600, false, true, 1.0f, {.compute = bf16}},
                        {40, 1500, 300, true, false, 0.0f, {.compute = bf16}}};
  Cpu cpu;
  std::uint64_t seed = 700;
  const int threads = omp_get_max_threads();
  for (const Case& k : cases) {
    CAPTURE(k.m);
    CAPTURE(k.n);
    CAPTURE(k.ta);
    CAPTURE(k.tb);
    CAPTURE(static_cast<int>(k.options.compute));
    auto a_host = random_values<float>(k.m * k.k, seed++);
    if (k.options.a == Triangle::upper) {  // op(A) zero below the diagonal, as the option promises
      for (std::int64_t i = 0; i < k.m; ++i)
        for (std::int64_t p = 0; p < std::min(i, k.k); ++p) a_host[k.ta ? p * k.m + i : i * k.k + p] = 0.0f;
    }
    const auto b_host = random_values<float>(k.k * k.n, seed++);
    auto c0 = random_values<float>(k.m * k.n, seed++);
    if (k.beta == 0.0f) std::fill(c0.begin(), c0.end(), std::nanf(""));
    auto a = upload(cpu, k.ta ? Shape{k.k, k.m} : Shape{k.m, k.k}, a_host);
    auto b = upload(cpu, k.tb ? Shape{k.n, k.k} : Shape{k.k, k.n}, b_host);
    std::vector<float> results[2];
    for (int run = 0; run < 2; ++run) {
      omp_set_num_threads(run == 0 ? 1 : std::max(threads, 3));
      auto c = upload(cpu, {k.m, k.n}, c0);
      cpu::gemm(cpu, c.view(), a.view(), b.view(), Transpose{k.ta}, Transpose{k.tb}, 0.5f, k.beta, k.options);
      results[run] = to_host(cpu, c.view());
    }
    omp_set_num_threads(threads);
    const auto want = naive_gemm(a_host, k.ta ? k.m : k.k, b_host, k.tb ? k.k : k.n, c0, k.m, k.n, k.k, k.ta, k.tb,
                                 0.5f, k.beta, k.options.compute);
    if (k.options.c == Triangle::lower) {
      for (std::int64_t i = 0; i < k.m; ++i)  // only the triangle is defined
        for (std::int64_t j = i + 1; j < k.n; ++j) results[0][i * k.n + j] = results[1][i * k.n + j] = want[i * k.n + j];
    }
    CHECK(results[0] == results[1]);
    CHECK(relative_error(results[1], want) < 1e-6);
  }
}

TEST_CASE("Cpu gemm inside a parallel region: each thread its own product") {
  // Attention calls gemm from inside its own parallel loop; each call then runs on its thread.
  int failures = 0;
#pragma omp parallel for reduction(+ : failures)
  for (int t = 0; t < 4; ++t) {
    Cpu cpu;
    const std::int64_t m = 70, n = 50, k = 300;
    const auto a = random_values<float>(m * k, 10 + t), b = random_values<float>(n * k, 20 + t);
    auto ta_ = upload(cpu, {m, k}, a);
    auto tb_ = upload(cpu, {n, k}, b);
    Tensor<float, Cpu> c(cpu, {m, n});
    cpu::gemm(cpu, c.view(), ta_.view(), tb_.view(), Transpose::no, Transpose::yes);
    const auto want = naive_gemm(a, k, b, k, std::vector<float>(m * n), m, n, k, false, true, 1.0f, 0.0f);
    failures += relative_error(to_host(cpu, c.view()), want) < 1e-6 ? 0 : 1;
  }
  CHECK(failures == 0);
}

TEST_CASE("a thread's scratch survives a failed request: the old buffer stays, the error names the size") {
  float* small = cpu::thread_scratch<float>(1000);
  small[999] = 1.5f;
  CHECK_THROWS_WITH(cpu::thread_scratch<float>(std::size_t{1} << 60), doctest::Contains("bytes of scratch"));
  CHECK_THROWS_WITH(cpu::thread_scratch<float>(SIZE_MAX / 2), doctest::Contains("overflows"));
  float* again = cpu::thread_scratch<float>(1000);
  REQUIRE(again == small);
  CHECK(again[999] == 1.5f);
}

TEST_CASE("Cpu attention saves each row's log-sum-exp of the scores and bf16 products track fp32 over several query blocks") {
  Cpu cpu;
  // Three 128-row query blocks, the last partial; two query heads per KV head.
  const std::int64_t batch = 1, seq = 300, heads = 4, kv_heads = 2, dim = 64;
  const float scale = 0.125f;
  auto random = [&](Shape shape, std::uint64_t seed) {
    Tensor<float, Cpu> t(cpu, shape);
    cpu::fill_normal<float>(cpu, t.view(), seed, 0, 0.0f, 1.0f);
    return t;
  };
  const auto q = random({batch, seq, heads, dim}, 1), k = random({batch, seq, kv_heads, dim}, 2);
  const auto v = random({batch, seq, kv_heads, dim}, 3), dy = random({batch, seq, heads, dim}, 4);
  struct Result {
    std::vector<float> out, lse, dq, dk, dv;
  };
  auto run = [&](GemmCompute compute) {
    Tensor<float, Cpu> out(cpu, q.shape()), lse(cpu, {batch, heads, seq}), dq(cpu, q.shape()), dk(cpu, k.shape()),
        dv(cpu, v.shape());
    cpu::attention_forward(cpu, out.view(), lse.view(), q.view(), k.view(), v.view(), scale, compute);
    cpu::attention_backward(cpu, dq.view(), dk.view(), dv.view(), dy.view(), lse.view(), q.view(), k.view(), v.view(),
                            scale, compute);
    return Result{to_host(cpu, out.view()), to_host(cpu, lse.view()), to_host(cpu, dq.view()), to_host(cpu, dk.view()),
                  to_host(cpu, dv.view())};
  };
  const Result fp32 = run(GemmCompute::fp32), bf16 = run(GemmCompute::bf16);
  // log sum_{j <= i} exp(scale q_i . k_j) in double, for query head 3 (KV head 1), every row.
  double worst = 0;
  for (std::int64_t i = 0; i < seq; ++i) {
    std::vector<double> s(static_cast<std::size_t>(i + 1));
    for (std::int64_t j = 0; j <= i; ++j) {
      double dot = 0;
      for (std::int64_t d = 0; d < dim; ++d)
        dot += static_cast<double>(q.data()[(i * heads + 3) * dim + d]) * k.data()[(j * kv_heads + 1) * dim + d];
      s[static_cast<std::size_t>(j)] = scale * dot;
    }
    const double max = *std::max_element(s.begin(), s.end());
    double sum = 0;
    for (double x : s) sum += std::exp(x - max);
    worst = std::max(worst, std::abs(fp32.lse[static_cast<std::size_t>(3 * seq + i)] - (max + std::log(sum))));
  }
  CHECK(worst < 1e-5);
  // bf16 operands carry 8 significant bits: the same results to a few parts in 1000 (measured
  // 0.3-0.4 %); an indexing mistake in any block would be off by the size of the values.
  CHECK(relative_error(bf16.out, fp32.out) < 1e-2);
  CHECK(relative_error(bf16.lse, fp32.lse) < 1e-3);
  CHECK(relative_error(bf16.dq, fp32.dq) < 1e-2);
  CHECK(relative_error(bf16.dk, fp32.dk) < 1e-2);
  CHECK(relative_error(bf16.dv, fp32.dv) < 1e-2);
}

// Forward and backward against the definition in double: o = softmax(scale q k^T + causal) v,
// dv = P^T dy, dS = P * (dy v^T - rowsum(P * dy v^T)), dq = scale dS k, dk = scale dS^T q, the
// KV heads' gradients summed over their group. T = 300: three query blocks, the last partial, and
// rows and keys that end inside kernel tiles; head dim 40 ends inside a tile's columns.
TEST_CASE("Cpu attention forward and backward equal the definition over several query blocks, fp32 and bf16") {
  Cpu cpu;
  const std::int64_t batch = 2, seq = 300, heads = 4, kv_heads = 2, dim = 40, group = heads / kv_heads;
  const float scale = 0.15f;
  auto random = [&](Shape shape, std::uint64_t seed) {
    Tensor<float, Cpu> t(cpu, shape);
    cpu::fill_normal<float>(cpu, t.view(), seed, 0, 0.0f, 1.0f);
    return t;
  };
  for (const GemmCompute compute : {GemmCompute::fp32, GemmCompute::bf16}) {
    const bool bf16_products = compute == GemmCompute::bf16;
    CAPTURE(bf16_products);
    auto q = random({batch, seq, heads, dim}, 11), k = random({batch, seq, kv_heads, dim}, 12);
    auto v = random({batch, seq, kv_heads, dim}, 13), dy = random({batch, seq, heads, dim}, 14);
    // bf16 products multiply the operands rounded; give the definition the rounded q, k, v, dy,
    // so that only the rounding of P and dS (also rounded before their products) remains.
    if (bf16_products)
      for (Tensor<float, Cpu>* t : {&q, &k, &v, &dy})
        for (std::int64_t i = 0; i < t->numel(); ++i) t->data()[i] = nanochat::round_to_bf16(t->data()[i]);
    Tensor<float, Cpu> out(cpu, q.shape()), lse(cpu, {batch, heads, seq}), dq(cpu, q.shape()), dk(cpu, k.shape()),
        dv(cpu, v.shape());
    cpu::attention_forward(cpu, out.view(), lse.view(), q.view(), k.view(), v.view(), scale, compute);
    cpu::attention_backward(cpu, dq.view(), dk.view(), dv.view(), dy.view(), lse.view(), q.view(), k.view(), v.view(),
                            scale, compute);
    const auto at = [&](const Tensor<float, Cpu>& t, std::int64_t b, std::int64_t i, std::int64_t h, std::int64_t d) {
      return static_cast<double>(t.data()[((b * seq + i) * t.shape()[2] + h) * dim + d]);
    };
    std::vector<double> want_out(static_cast<std::size_t>(out.numel())), want_dq(want_out.size()),
        want_dk(static_cast<std::size_t>(k.numel())), want_dv(want_dk.size());
    const auto index = [&](std::int64_t b, std::int64_t i, std::int64_t hh, std::int64_t nh, std::int64_t d) {
      return static_cast<std::size_t>(((b * seq + i) * nh + hh) * dim + d);
    };
    for (std::int64_t b = 0; b < batch; ++b)
      for (std::int64_t h = 0; h < heads; ++h) {
        const std::int64_t kv = h / group;
        for (std::int64_t i = 0; i < seq; ++i) {
          std::vector<double> p(static_cast<std::size_t>(i + 1)), dp(p.size());
          double max = -1e300, sum = 0, pdp = 0;
          for (std::int64_t j = 0; j <= i; ++j) {
            double s = 0, g = 0;
            for (std::int64_t d = 0; d < dim; ++d) {
              s += at(q, b, i, h, d) * at(k, b, j, kv, d);
              g += at(dy, b, i, h, d) * at(v, b, j, kv, d);
            }
            p[static_cast<std::size_t>(j)] = scale * s;
            dp[static_cast<std::size_t>(j)] = g;
            max = std::max(max, scale * s);
          }
          for (double& x : p) sum += (x = std::exp(x - max));
          for (std::size_t j = 0; j < p.size(); ++j) pdp += (p[j] /= sum) * dp[j];
          for (std::int64_t j = 0; j <= i; ++j) {
            const double pj = p[static_cast<std::size_t>(j)], ds = pj * (dp[static_cast<std::size_t>(j)] - pdp);
            for (std::int64_t d = 0; d < dim; ++d) {
              want_out[index(b, i, h, heads, d)] += pj * at(v, b, j, kv, d);
              want_dv[index(b, j, kv, kv_heads, d)] += pj * at(dy, b, i, h, d);
              want_dq[index(b, i, h, heads, d)] += scale * ds * at(k, b, j, kv, d);
              want_dk[index(b, j, kv, kv_heads, d)] += scale * ds * at(q, b, i, h, d);
            }
          }
        }
      }
    const auto error = [](const Tensor<float, Cpu>& got, const std::vector<double>& want) {
      double diff = 0, norm = 0;
      for (std::size_t i = 0; i < want.size(); ++i) {
        diff += (got.data()[i] - want[i]) * (got.data()[i] - want[i]);
        norm += want[i] * want[i];
      }
      return std::sqrt(diff / norm);
    };
    // fp32: rounding only. bf16: P and dS rounded to 8 bits before their products.
    const double tolerance = bf16_products ? 1e-2 : 1e-5;
    CHECK(error(out, want_out) < tolerance);
    CHECK(error(dq, want_dq) < tolerance);
    CHECK(error(dk, want_dk) < tolerance);
    CHECK(error(dv, want_dv) < tolerance);
  }
}

TEST_CASE("Cpu RMSNorm equals the definition, and its backward equals finite differences") {
  Cpu cpu;
  const std::int64_t rows = 3, dim = 37;
  const auto x = random_values<float>(rows * dim, 5);
  const auto dy = random_values<float>(rows * dim, 6);
  auto tx = upload(cpu, {rows, dim}, x), tdy = upload(cpu, {rows, dim}, dy);
  Tensor<float, Cpu> y(cpu, {rows, dim}), dx(cpu, {rows, dim});
  Tensor<float, Cpu> r(cpu, {rows});
  const float eps = rmsnorm_default_eps<float>();
  cpu::rmsnorm_forward<float>(cpu, y.view(), r.view(), tx.view());
  cpu::rmsnorm_backward<float>(cpu, dx.view(), tdy.view(), tx.view(), r.view());
  const auto y_host = to_host(cpu, y.view()), dx_host = to_host(cpu, dx.view());

  // Loss L = sum(dy * rmsnorm(x)) in double; dL/dx by central differences.
  auto loss_row = [&](std::vector<double> row, std::int64_t i) {
    double ms = 0;
    for (double v : row) ms += v * v;
    const double rr = 1.0 / std::sqrt(ms / dim + eps);
    double l = 0;
    for (std::int64_t j = 0; j < dim; ++j) l += dy[static_cast<std::size_t>(i * dim + j)] * row[static_cast<std::size_t>(j)] * rr;
    return l;
  };
  for (std::int64_t i = 0; i < rows; ++i) {
    std::vector<double> row(x.begin() + i * dim, x.begin() + (i + 1) * dim);
    double ms = 0;
    for (double v : row) ms += v * v;
    const double rr = 1.0 / std::sqrt(ms / dim + eps);
    for (std::int64_t j = 0; j < dim; ++j) {
      const auto at = static_cast<std::size_t>(i * dim + j);
      CHECK(y_host[at] == doctest::Approx(row[static_cast<std::size_t>(j)] * rr).epsilon(1e-6));
      const double h = 1e-5;
      auto plus = row, minus = row;
      plus[static_cast<std::size_t>(j)] += h;
      minus[static_cast<std::size_t>(j)] -= h;
      const double fd = (loss_row(plus, i) - loss_row(minus, i)) / (2 * h);
      CHECK(dx_host[at] == doctest::Approx(fd).epsilon(1e-4).scale(1.0));
    }
  }
}

TEST_CASE("Cpu RMSNorm and relu^2 with a bf16 output round the fp32 result once") {
  // The producers of a bf16 Config's Linear inputs: the bits of bf16(float op), and RMSNorm's
  // saved statistics are the float op's.
  Cpu cpu;
  const std::int64_t rows = 5, dim = 70;
  auto x = upload(cpu, {rows, dim}, random_values<float>(rows * dim, 11));
  Tensor<float, Cpu> y(cpu, {rows, dim}), r(cpu, {rows}), r16(cpu, {rows});
  Tensor<bf16, Cpu> y16(cpu, {rows, dim});
  cpu::rmsnorm_forward<float>(cpu, y.view(), r.view(), x.view());
  cpu::rmsnorm_forward(cpu, y16.view(), r16.view(), x.view());
  auto rounded = [](std::vector<float> v) {
    for (float& e : v) e = round_to_bf16(e);
    return v;
  };
  CHECK(as_float(to_host(cpu, y16.view())) == rounded(to_host(cpu, y.view())));
  CHECK(to_host(cpu, r16.view()) == to_host(cpu, r.view()));
  CHECK(as_float(to_host(cpu, y16.view())) != to_host(cpu, y.view()));  // it did round

  cpu::relu_squared_forward(cpu, y.view(), x.view());
  cpu::relu_squared_forward(cpu, y16.view(), x.view());
  CHECK(as_float(to_host(cpu, y16.view())) == rounded(to_host(cpu, y.view())));
  CHECK(as_float(to_host(cpu, y16.view())) != to_host(cpu, y.view()));
}

TEST_CASE("Cuda gemm on the emulated device matches Cpu: transposes, odd sizes, batches, strides") {
  cuda::EmulatedDevice device;
  Cuda cuda(device);
  check_gemm_matches_cpu(cuda);
  CHECK(device.live_allocations() == 0);  // every temporary tensor gave its memory back
}

TEST_CASE("Cuda RMSNorm on the emulated device matches Cpu, forward and backward") {
  cuda::EmulatedDevice device;
  Cuda cuda(device);
  check_rmsnorm_shapes(cuda);
}

TEST_CASE("Cuda FlashAttention-2 on the emulated device matches Cpu attention, forward and backward") {
  cuda::EmulatedDevice device;
  Cuda cuda(device);
  check_attention_shapes(cuda);
}

TEST_CASE("Cuda scratch grows to the largest request and is kept") {
  cuda::EmulatedDevice device;
  Cuda cuda(device);
  void* first = cuda.scratch(100);
  CHECK(device.allocate_calls() == 1);
  CHECK(cuda.scratch(60) == first);
  CHECK(device.allocate_calls() == 1);
  void* grown = cuda.scratch(1000);
  CHECK(device.allocate_calls() == 2);
  CHECK(device.live_allocations() == 1);  // the smaller buffer was released
  CHECK_NOTHROW(cuda.fill_zero(grown, 1000));  // all of it is device memory
}

TEST_CASE("Cuda attention backward allocates its delta once, then reuses it") {
  cuda::EmulatedDevice device;
  Cuda cuda(device);  // fresh: no scratch yet
  auto make = [&](Shape shape) { return Tensor<float, Cuda>(cuda, shape); };
  auto q = make({1, 9, 2, 64}), k = make({1, 9, 1, 64}), lse = make({1, 2, 9}), dq = make({1, 9, 2, 64}),
       dk = make({1, 9, 1, 64}), dv = make({1, 9, 1, 64});
  cuda.fill_zero(q.data(), q.bytes());
  cuda.fill_zero(k.data(), k.bytes());
  cuda.fill_zero(lse.data(), lse.bytes());
  const auto backward = [&] {
    cuda::attention_backward(cuda, dq.view(), dk.view(), dv.view(), q.view(), lse.view(), q.view(), k.view(), k.view(), 1.0f);
  };
  const std::size_t before = device.allocate_calls();
  backward();
  CHECK(device.allocate_calls() == before + 1);  // the scratch, grown to delta's size
  backward();
  CHECK(device.allocate_calls() == before + 1);  // and kept
}

TEST_CASE("Cuda attention refuses what its kernels do not handle, naming it") {
  cuda::EmulatedDevice device;
  Cuda cuda(device);
  auto make = [&](Shape shape) { return Tensor<float, Cuda>(cuda, shape); };
  auto q = make({1, 5, 2, 40}), k = make({1, 5, 1, 40}), out = make({1, 5, 2, 40}), lse = make({1, 2, 5});
  CHECK_THROWS_WITH(cuda::attention_forward(cuda, out.view(), lse.view(), q.view(), k.view(), k.view(), 1.0f),
                    doctest::Contains("head dim 40 is not supported (64 or 128)"));
  auto q64 = make({1, 5, 2, 64}), k64 = make({1, 5, 1, 64}), out64 = make({1, 5, 2, 64});
  CHECK_THROWS_WITH(cuda::attention_forward(cuda, out64.view(), lse.view(), q64.view(), k64.view(), k64.view(), 1.0f,
                                            GemmCompute::fp32),
                    doctest::Contains("fp32 products are not available"));
  auto q3 = make({1, 5, 3, 64});
  CHECK_THROWS_WITH(cuda::attention_backward(cuda, q3.view(), k64.view(), k64.view(), q3.view(), make({1, 3, 5}).view(),
                                             q3.view(), make({1, 5, 2, 64}).view(), make({1, 5, 2, 64}).view(), 1.0f),
                    doctest::Contains("3 query heads do not split into groups over 2 KV heads"));
  // Heads are the grid's y: both passes refuse more than it holds, saying how many it does.
  const Shape many_heads{1, 1, 65536, 64}, one_kv{1, 1, 1, 64}, many_lse{1, 65536, 1};
  auto qh = make(many_heads), kh = make(one_kv), outh = make(many_heads), lseh = make(many_lse);
  CHECK_THROWS_WITH(cuda::attention_forward(cuda, outh.view(), lseh.view(), qh.view(), kh.view(), kh.view(), 1.0f),
                    doctest::Contains("65536 heads x 1 batch rows exceed the grid (at most 65535 of each)"));
  CHECK_THROWS_WITH(cuda::attention_backward(cuda, outh.view(), kh.view(), kh.view(), qh.view(), lseh.view(), qh.view(),
                                             kh.view(), kh.view(), 1.0f),
                    doctest::Contains("attention_backward: 65536 heads x 1 batch rows exceed the grid"));
}

TEST_CASE("Philox fills are bit-identical on Cpu and on the emulated Cuda device") {
  cuda::EmulatedDevice device;
  Cuda cuda(device);
  check_fill_normal_bit_identical(cuda);
}

TEST_CASE("gemm shape errors name the operands and their shapes") {
  Cpu cpu;
  Tensor<float, Cpu> a(cpu, {3, 4}), b(cpu, {5, 6}), c(cpu, {3, 6});
  CHECK_THROWS_WITH(cpu::gemm(cpu, c.view(), a.view(), b.view()),
                    doctest::Contains("inner dimensions differ: op(A) from A [3, 4] has K = 4 but "
                                      "op(B) from B [5, 6] has K = 5"));
  Tensor<float, Cpu> c_bad(cpu, {3, 7});
  Tensor<float, Cpu> b_ok(cpu, {4, 6});
  CHECK_THROWS_WITH(cpu::gemm(cpu, c_bad.view(), a.view(), b_ok.view()),
                    doctest::Contains("op(B) from B with shape [4, 6] has 6 columns but C with "
                                      "shape [3, 7] has 7"));
  Tensor<float, Cpu> a3(cpu, {2, 3, 4});
  CHECK_THROWS_WITH(cpu::gemm(cpu, c.view(), a3.view(), b_ok.view()),
                    doctest::Contains("needs a batched (rank-3) C"));
}

TEST_CASE("the emulated device rejects what a GPU would corrupt or reject") {
  cuda::EmulatedDevice device;
  Cuda cuda(device);
  Tensor<float, Cuda> t(cuda, {4});
  std::vector<float> host(8);
  CHECK_THROWS_WITH(cuda.copy_from_host(t.data(), host.data(), 8 * sizeof(float)),
                    doctest::Contains("copy destination of 32 bytes at offset 0 overruns its "
                                      "allocation of 16 bytes"));
  CHECK_THROWS_WITH(device.free(host.data()), doctest::Contains("not a live device allocation"));
  // cuBLASLt rejects a leading dimension smaller than the rows of a column-major matrix.
  cuda::LtMatmul op{};
  op.trans_a = op.trans_b = cuda::LtOp::n;
  op.a = {cuda::LtType::f32, 4, 4, 3, 1, 0};
  op.b = op.c = op.d = {cuda::LtType::f32, 4, 4, 4, 1, 0};
  CHECK_THROWS_WITH(device.matmul(op, 1.0f, t.data(), t.data(), 0.0f, t.data(), t.data()),
                    doctest::Contains("A has leading dimension 3 smaller than its 4 rows"));
  op.a.ld = 4;
  CHECK_THROWS_WITH(device.matmul(op, 1.0f, host.data(), t.data(), 0.0f, t.data(), t.data()),
                    doctest::Contains("matmul A"));  // a host pointer would fault on the GPU
  CHECK_THROWS_WITH(device.matmul(op, 1.0f, t.data(), t.data(), 0.0f, t.data(), t.data()),
                    doctest::Contains("overruns its allocation of 16 bytes"));  // 4x4 needs 64
  op.c.type = op.d.type = cuda::LtType::bf16;
  CHECK_THROWS_WITH(device.matmul(op, 1.0f, t.data(), t.data(), 0.0f, t.data(), t.data()),
                    doctest::Contains("not a supported combination"));
}
