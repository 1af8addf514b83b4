#pragma once
// GEMM on the Cpu backend: C = alpha * op(A) op(B) + beta * C with a float C and float or bf16
// operands (bf16 x bf16 gives the products a GPU's bf16 matmul gives, exact in fp32; float x
// bf16 is a Linear with bf16 weights). The kernel is chosen at run time (gemm_kernel.hpp): on a
// CPU with AVX-512 the backend's own (gemm_avx512.hpp); elsewhere OpenBLAS's sgemm, after
// widening bf16 operands into per-thread scratch. GemmCompute::bf16 rounds float operands to bf16
// first: on AMX (gemm_amx.hpp) the tile unit multiplies them, on AVX512_BF16
// (gemm_avx512_bf16.hpp) VDPBF16PS; elsewhere the fp32 paths multiply the rounded values (the
// same products, summed in another order).

#include <cblas.h>

#include <cstdint>
#include <limits>
#include <type_traits>

#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/backend/cpu/gemm_amx.hpp"
#include "nanochat/backend/cpu/gemm_avx512.hpp"
#include "nanochat/backend/cpu/gemm_avx512_bf16.hpp"
#include "nanochat/backend/cpu/gemm_kernel.hpp"
#include "nanochat/core/bf16.hpp"
#include "nanochat/core/gemm_shape.hpp"

namespace nanochat::cpu {

namespace detail {
inline CBLAS_TRANSPOSE cblas_op(Transpose t) { return t == Transpose::yes ? CblasTrans : CblasNoTrans; }

inline blasint blas_int(std::int64_t v, const char* what) {
  NANOCHAT_CHECK(v <= static_cast<std::int64_t>(std::numeric_limits<blasint>::max()), "gemm: ",
                 what, " = ", v, " does not fit OpenBLAS's integer type");
  return static_cast<blasint>(v);
}

// Whether sgemm needs a float copy of an operand: bf16 is widened, float only when rounded.
template <class T>
bool needs_copy(bool round) {
  return !std::is_same_v<T, float> || round;
}

// One operand of a batch entry as float rows for sgemm: in place, or copied (widened, rounded to
// bf16 when `round`) to `space` (rows x cols floats).
template <class T>
const float* as_float(CpuView<const T> x, std::int64_t offset, std::int64_t ld, bool round, float* space,
                      std::int64_t& ld_out) {
  if constexpr (std::is_same_v<T, float>) {
    if (!round) {
      ld_out = ld;
      return x.data() + offset;
    }
  }
  const std::int64_t rows = x.size(-2), cols = x.size(-1);
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t j = 0; j < cols; ++j)
      space[r * cols + j] = static_cast<float>(bf16(static_cast<float>(x.data()[offset + r * ld + j])));
  ld_out = cols;
  return space;
}

// Every batch entry through OpenBLAS. An operand shared by all entries (batch stride 0) is copied
// once. A triangle of op(X) op(X)^T (the same operand, transposed once: Newton–Schulz) goes to
// ssyrk, which computes only that triangle; otherwise sgemm computes all of C, which agrees
// wherever the triangles define it.
template <class TA, class TB>
void openblas_gemm(const GemmShape& g, CpuView<const TA> a, CpuView<const TB> b, float* c, float alpha, float beta,
                   GemmOptions options) {
  const bool round = options.compute == GemmCompute::bf16;
  const std::int64_t a_size = needs_copy<TA>(round) ? a.size(-2) * a.size(-1) : 0;
  const std::int64_t b_size = needs_copy<TB>(round) ? b.size(-2) * b.size(-1) : 0;
  // One request (a second could move the first), per thread (attention calls gemm in parallel).
  float* space = thread_scratch<float>(static_cast<std::size_t>(a_size + b_size));
  const bool symmetric = options.c != Triangle::full && g.m == g.n && g.trans_a != g.trans_b && g.lda == g.ldb &&
                         g.stride_a == g.stride_b &&
                         static_cast<const void*>(a.data()) == static_cast<const void*>(b.data());
  const float* wa = nullptr;
  const float* wb = nullptr;
  std::int64_t lda = 0, ldb = 0;
  for (std::int64_t i = 0; i < g.batch; ++i) {
    if (i == 0 || g.stride_a != 0) wa = as_float(a, i * g.stride_a, g.lda, round, space, lda);
    float* ci = c + i * g.stride_c;
    if (symmetric) {
      cblas_ssyrk(CblasRowMajor, options.c == Triangle::upper ? CblasUpper : CblasLower, cblas_op(g.trans_a),
                  blas_int(g.m, "N"), blas_int(g.k, "K"), alpha, wa, blas_int(lda, "lda"), beta, ci,
                  blas_int(g.ldc, "ldc"));
      continue;
    }
    if (i == 0 || g.stride_b != 0) wb = as_float(b, i * g.stride_b, g.ldb, round, space + a_size, ldb);
    cblas_sgemm(CblasRowMajor, cblas_op(g.trans_a), cblas_op(g.trans_b), blas_int(g.m, "M"), blas_int(g.n, "N"),
                blas_int(g.k, "K"), alpha, wa, blas_int(lda, "lda"), wb, blas_int(ldb, "ldb"), beta, ci,
                blas_int(g.ldc, "ldc"));
  }
}

// One GEMM on the given kernel (one this machine runs: gemm_kernel_missing).
template <class TA, class TB>
void gemm(GemmKernel kernel, CpuView<float> c, CpuView<const TA> a, CpuView<const TB> b, Transpose trans_a, Transpose trans_b, float alpha,
          float beta, GemmOptions options) {
  const GemmShape g = gemm_shape(c, a, b, trans_a, trans_b);
  if (g.batch == 0 || g.m == 0 || g.n == 0) return;
  NANOCHAT_CHECK(options.compute == GemmCompute::bf16 || kernel == GemmKernel::avx512 || kernel == GemmKernel::openblas,
                 "gemm: the ", gemm_kernel_name(kernel), " kernel computes only in bf16");
  if (kernel == GemmKernel::openblas) {
    openblas_gemm(g, a, b, c.data(), alpha, beta, options);
    return;
  }
#if defined(NANOCHAT_X86_KERNELS)
  for (std::int64_t i = 0; i < g.batch; ++i) {
    const TA* ai = a.data() + i * g.stride_a;
    const TB* bi = b.data() + i * g.stride_b;
    float* ci = c.data() + i * g.stride_c;
    switch (kernel) {
      case GemmKernel::amx:
#if defined(NANOCHAT_CPU_AMX)
        amx::gemm(g, ai, bi, ci, alpha, beta, options);
        break;
#else
        [[fallthrough]];
#endif
      case GemmKernel::avx512_bf16: avx512_bf16::gemm(g, ai, bi, ci, alpha, beta, options); break;
      default: avx512::gemm(g, ai, bi, ci, alpha, beta, options); break;
    }
  }
#endif
}
}  // namespace detail

// C = alpha * op(A) * op(B) + beta * C; with beta == 0, C is not read (it may hold NaN). The
// options say how the products are formed (fp32 or bf16) and what structure lets the kernel skip
// work (a wanted triangle of C, a triangular op(A)). The kernel is this process's choice for the
// compute type (gemm_kernels()).
inline void gemm(Cpu&, CpuView<float> c, CpuView<const float> a, CpuView<const float> b,
                 Transpose trans_a = Transpose::no, Transpose trans_b = Transpose::no, float alpha = 1.0f,
                 float beta = 0.0f, GemmOptions options = {}) {
  detail::gemm(gemm_kernels().of(options.compute), c, a, b, trans_a, trans_b, alpha, beta, options);
}

inline void gemm(Cpu&, CpuView<float> c, CpuView<const bf16> a, CpuView<const bf16> b,
                 Transpose trans_a = Transpose::no, Transpose trans_b = Transpose::no, float alpha = 1.0f,
                 float beta = 0.0f, GemmOptions options = {}) {
  detail::gemm(gemm_kernels().of(options.compute), c, a, b, trans_a, trans_b, alpha, beta, options);
}

inline void gemm(Cpu&, CpuView<float> c, CpuView<const float> a, CpuView<const bf16> b,
                 Transpose trans_a = Transpose::no, Transpose trans_b = Transpose::no, float alpha = 1.0f,
                 float beta = 0.0f, GemmOptions options = {}) {
  detail::gemm(gemm_kernels().of(options.compute), c, a, b, trans_a, trans_b, alpha, beta, options);
}

// bf16 x float: a Linear's bf16-stored activation times its float weight (bf16 Configs).
inline void gemm(Cpu&, CpuView<float> c, CpuView<const bf16> a, CpuView<const float> b,
                 Transpose trans_a = Transpose::no, Transpose trans_b = Transpose::no, float alpha = 1.0f,
                 float beta = 0.0f, GemmOptions options = {}) {
  detail::gemm(gemm_kernels().of(options.compute), c, a, b, trans_a, trans_b, alpha, beta, options);
}

// gemm on a kernel named by the caller, for tests and benchmarks that compare them: an error
// where this machine cannot run it, or where it cannot compute `options.compute`.
template <class TA, class TB>
void gemm_on(GemmKernel kernel, Cpu&, CpuView<float> c, CpuView<const TA> a, CpuView<const TB> b, Transpose trans_a,
             Transpose trans_b, float alpha, float beta, GemmOptions options) {
  const std::string missing = gemm_kernel_missing(kernel, cpu_features());
  NANOCHAT_CHECK(missing.empty(), "gemm: the ", gemm_kernel_name(kernel), " kernel needs ", missing);
  detail::gemm(kernel, c, a, b, trans_a, trans_b, alpha, beta, options);
}

}  // namespace nanochat::cpu
