#pragma once
// GEMM on the Cpu backend through OpenBLAS's sgemm, for float operands and for bf16 operands
// with a float result.

#include <cblas.h>

#include <cstdint>
#include <limits>

#include "nanochat/backend/cpu/cpu.hpp"
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

template <class Call>
void for_each_batch(const GemmShape& g, Call&& call) {
  if (g.batch == 0 || g.m == 0 || g.n == 0) return;
  for (std::int64_t i = 0; i < g.batch; ++i) {
    call(i * g.stride_a, i * g.stride_b, i * g.stride_c);
  }
}
}  // namespace detail

// C = alpha * op(A) * op(B) + beta * C; with beta == 0, C is not read (it may hold NaN).
inline void gemm(Cpu&, CpuView<float> c, CpuView<const float> a, CpuView<const float> b,
                 Transpose trans_a = Transpose::no, Transpose trans_b = Transpose::no,
                 float alpha = 1.0f, float beta = 0.0f) {
  const GemmShape g = gemm_shape(c, a, b, trans_a, trans_b);
  detail::for_each_batch(g, [&](std::int64_t oa, std::int64_t ob, std::int64_t oc) {
    cblas_sgemm(CblasRowMajor, detail::cblas_op(g.trans_a), detail::cblas_op(g.trans_b),
                detail::blas_int(g.m, "M"), detail::blas_int(g.n, "N"), detail::blas_int(g.k, "K"),
                alpha, a.data() + oa, detail::blas_int(g.lda, "lda"), b.data() + ob,
                detail::blas_int(g.ldb, "ldb"), beta, c.data() + oc, detail::blas_int(g.ldc, "ldc"));
  });
}

// bf16 inputs, float result. Debian's OpenBLAS has no sbgemm, so each operand is widened to
// float (exact) in the Cpu workspace and multiplied by sgemm: the same numbers as a GPU's
// bf16 x bf16 -> fp32 matmul, whose products are exact in fp32.
inline void gemm(Cpu& cpu, CpuView<float> c, CpuView<const bf16> a, CpuView<const bf16> b,
                 Transpose trans_a = Transpose::no, Transpose trans_b = Transpose::no,
                 float alpha = 1.0f, float beta = 0.0f) {
  const GemmShape g = gemm_shape(c, a, b, trans_a, trans_b);
  const std::int64_t a_rows = a.size(-2), a_cols = a.size(-1);
  const std::int64_t b_rows = b.size(-2), b_cols = b.size(-1);
  float* a_wide = cpu.workspace(static_cast<std::size_t>(a_rows * a_cols + b_rows * b_cols));
  float* b_wide = a_wide + a_rows * a_cols;
  auto widen = [](const bf16* src, std::int64_t rows, std::int64_t cols, std::int64_t ld, float* dst) {
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t j = 0; j < cols; ++j) dst[r * cols + j] = static_cast<float>(src[r * ld + j]);
  };
  std::int64_t widened_b = -1;  // batch offset of B currently widened (B is often broadcast)
  detail::for_each_batch(g, [&](std::int64_t oa, std::int64_t ob, std::int64_t oc) {
    widen(a.data() + oa, a_rows, a_cols, g.lda, a_wide);
    if (ob != widened_b) {
      widen(b.data() + ob, b_rows, b_cols, g.ldb, b_wide);
      widened_b = ob;
    }
    cblas_sgemm(CblasRowMajor, detail::cblas_op(g.trans_a), detail::cblas_op(g.trans_b),
                detail::blas_int(g.m, "M"), detail::blas_int(g.n, "N"), detail::blas_int(g.k, "K"),
                alpha, a_wide, detail::blas_int(a_cols, "lda"), b_wide,
                detail::blas_int(b_cols, "ldb"), beta, c.data() + oc, detail::blas_int(g.ldc, "ldc"));
  });
}

}  // namespace nanochat::cpu
