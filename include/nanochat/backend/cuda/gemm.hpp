#pragma once
// GEMM on the Cuda backend through cuBLASLt. Our tensors are row-major and cuBLASLt is
// column-major; a row-major X is the column-major X^T, so C = op(A) op(B) is computed as
// C^T = op(B)^T op(A)^T: the operands swap places and keep their transpose flags.

#include <limits>
#include <type_traits>

#include "nanochat/backend/cuda/cuda.hpp"
#include "nanochat/core/bf16.hpp"
#include "nanochat/core/gemm_shape.hpp"

namespace nanochat::cuda {

template <class T>
constexpr LtType lt_type() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, bf16>,
                "cuBLASLt GEMM takes float or bf16 operands");
  return std::is_same_v<T, float> ? LtType::f32 : LtType::bf16;
}

// The descriptors of the column-major problem equal to the row-major GemmShape g.
inline LtMatmul lt_matmul_for(const GemmShape& g, LtType inputs, LtType outputs) {
  const bool ta = g.trans_a == Transpose::yes, tb = g.trans_b == Transpose::yes;
  const auto batch = static_cast<std::int32_t>(g.batch);
  const auto u = [](std::int64_t v) { return static_cast<std::uint64_t>(v); };
  LtMatmul op{};
  op.trans_a = tb ? LtOp::t : LtOp::n;  // cuBLASLt's A is our B
  op.trans_b = ta ? LtOp::t : LtOp::n;  // cuBLASLt's B is our A
  op.a = {inputs, u(tb ? g.k : g.n), u(tb ? g.n : g.k), g.ldb, batch, g.stride_b};
  op.b = {inputs, u(ta ? g.m : g.k), u(ta ? g.k : g.m), g.lda, batch, g.stride_a};
  op.c = {outputs, u(g.n), u(g.m), g.ldc, batch, g.stride_c};
  op.d = op.c;
  return op;
}

inline namespace NANOCHAT_CUDA_ABI {

// C = alpha * op(A) * op(B) + beta * C; float, or bf16 inputs with a float or bf16 result.
// A and B may be read-only or mutable views (the element type is deduced either way). Options:
// GemmCompute::bf16 with float inputs is cuBLASLt's FAST_16BF (the tensor cores on bf16 copies);
// the triangles are not used (cuBLASLt computes all of C, which agrees wherever they define it).
template <class TC, class TA, class TB>
  requires(std::is_same_v<std::remove_const_t<TA>, std::remove_const_t<TB>> &&
           (std::is_same_v<std::remove_const_t<TA>, float>
                ? std::is_same_v<TC, float>
                : std::is_same_v<std::remove_const_t<TA>, bf16> &&
                      (std::is_same_v<TC, float> || std::is_same_v<TC, bf16>)))
void gemm(Cuda& cuda, CudaView<TC> c, CudaView<TA> a, CudaView<TB> b,
          Transpose trans_a = Transpose::no, Transpose trans_b = Transpose::no, float alpha = 1.0f,
          float beta = 0.0f, GemmOptions options = {}) {
  const GemmShape g = gemm_shape(c, a, b, trans_a, trans_b);
  if (g.batch == 0 || g.m == 0 || g.n == 0) return;
  NANOCHAT_CHECK(g.batch <= std::numeric_limits<std::int32_t>::max(), "gemm: batch ", g.batch,
                 " exceeds cuBLASLt's 32-bit batch count");
  LtMatmul op = lt_matmul_for(g, lt_type<std::remove_const_t<TA>>(), lt_type<TC>());
  if (options.compute == GemmCompute::bf16 && std::is_same_v<std::remove_const_t<TA>, float>)
    op.compute = LtCompute::f32_fast_bf16;  // bf16 operands are bf16 already
  cuda.device().matmul(op, alpha, b.data(), a.data(), beta, c.data(), c.data());
}

}  // namespace NANOCHAT_CUDA_ABI
}  // namespace nanochat::cuda
