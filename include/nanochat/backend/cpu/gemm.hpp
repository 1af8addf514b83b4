#pragma once
// GEMM on the Cpu backend through OpenBLAS: sgemm for float, sbgemm for bf16 inputs with a float
// result (bf16 products are exact in fp32, so this matches a GPU's bf16 x bf16 -> fp32 matmul).

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
  if (g.m == 0 || g.n == 0) return;
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

inline void gemm(Cpu&, CpuView<float> c, CpuView<const bf16> a, CpuView<const bf16> b,
                 Transpose trans_a = Transpose::no, Transpose trans_b = Transpose::no,
                 float alpha = 1.0f, float beta = 0.0f) {
  const GemmShape g = gemm_shape(c, a, b, trans_a, trans_b);
  static_assert(sizeof(bfloat16) == sizeof(bf16), "OpenBLAS's bfloat16 is 16 bits like ours");
  detail::for_each_batch(g, [&](std::int64_t oa, std::int64_t ob, std::int64_t oc) {
    cblas_sbgemm(CblasRowMajor, detail::cblas_op(g.trans_a), detail::cblas_op(g.trans_b),
                 detail::blas_int(g.m, "M"), detail::blas_int(g.n, "N"), detail::blas_int(g.k, "K"),
                 alpha, reinterpret_cast<const bfloat16*>(a.data() + oa),
                 detail::blas_int(g.lda, "lda"), reinterpret_cast<const bfloat16*>(b.data() + ob),
                 detail::blas_int(g.ldb, "ldb"), beta, c.data() + oc, detail::blas_int(g.ldc, "ldc"));
  });
}

}  // namespace nanochat::cpu
