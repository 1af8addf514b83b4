#pragma once
// GEMM on the Cpu backend: C = alpha * op(A) op(B) + beta * C with a float C and float or bf16
// operands (bf16 x bf16 gives the products a GPU's bf16 matmul gives, exact in fp32; float x
// bf16 is a Linear with bf16 weights). With AVX-512 the backend's own kernel runs
// (gemm_avx512.hpp); elsewhere OpenBLAS's sgemm, after widening bf16 operands into per-thread
// scratch. GemmCompute::bf16 rounds float operands to bf16 first: on AMX (gemm_amx.hpp) the tile
// unit multiplies them; elsewhere the fp32 paths multiply the rounded values (the same products,
// summed in another order).

#include <cblas.h>

#include <cstdint>
#include <limits>
#include <type_traits>

#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/backend/cpu/gemm_amx.hpp"
#include "nanochat/backend/cpu/gemm_avx512.hpp"
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

#if !defined(__AVX512F__)
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
#endif

template <class TA, class TB>
void gemm(CpuView<float> c, CpuView<const TA> a, CpuView<const TB> b, Transpose trans_a, Transpose trans_b, float alpha,
          float beta, GemmOptions options) {
  const GemmShape g = gemm_shape(c, a, b, trans_a, trans_b);
  if (g.batch == 0 || g.m == 0 || g.n == 0) return;
#if defined(__AVX512F__)
  for (std::int64_t i = 0; i < g.batch; ++i) {
    const std::int64_t oa = i * g.stride_a, ob = i * g.stride_b;
    float* ci = c.data() + i * g.stride_c;
#if defined(NANOCHAT_CPU_AMX)
    // The tile unit takes the bf16 products of a float A.
    if constexpr (std::is_same_v<TA, float>) {
      if (options.compute == GemmCompute::bf16 && amx::usable()) {
        amx::gemm(g, a.data() + oa, b.data() + ob, ci, alpha, beta, options);
        continue;
      }
    }
#endif
    avx512::gemm(g, a.data() + oa, b.data() + ob, ci, alpha, beta, options);
  }
#else
  openblas_gemm(g, a, b, c.data(), alpha, beta, options);
#endif
}
}  // namespace detail

// C = alpha * op(A) * op(B) + beta * C; with beta == 0, C is not read (it may hold NaN). The
// options say how the products are formed (fp32 or bf16) and what structure lets the kernel skip
// work (a wanted triangle of C, a triangular op(A)).
inline void gemm(Cpu&, CpuView<float> c, CpuView<const float> a, CpuView<const float> b,
                 Transpose trans_a = Transpose::no, Transpose trans_b = Transpose::no, float alpha = 1.0f,
                 float beta = 0.0f, GemmOptions options = {}) {
  detail::gemm(c, a, b, trans_a, trans_b, alpha, beta, options);
}

inline void gemm(Cpu&, CpuView<float> c, CpuView<const bf16> a, CpuView<const bf16> b,
                 Transpose trans_a = Transpose::no, Transpose trans_b = Transpose::no, float alpha = 1.0f,
                 float beta = 0.0f, GemmOptions options = {}) {
  detail::gemm(c, a, b, trans_a, trans_b, alpha, beta, options);
}

inline void gemm(Cpu&, CpuView<float> c, CpuView<const float> a, CpuView<const bf16> b,
                 Transpose trans_a = Transpose::no, Transpose trans_b = Transpose::no, float alpha = 1.0f,
                 float beta = 0.0f, GemmOptions options = {}) {
  detail::gemm(c, a, b, trans_a, trans_b, alpha, beta, options);
}

// bf16 x float: a Linear's bf16-stored activation times its float weight (bf16 Configs).
inline void gemm(Cpu&, CpuView<float> c, CpuView<const bf16> a, CpuView<const float> b,
                 Transpose trans_a = Transpose::no, Transpose trans_b = Transpose::no, float alpha = 1.0f,
                 float beta = 0.0f, GemmOptions options = {}) {
  detail::gemm(c, a, b, trans_a, trans_b, alpha, beta, options);
}

}  // namespace nanochat::cpu
