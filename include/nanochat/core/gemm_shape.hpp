#pragma once
// The shape rules of gemm, shared by every backend: C = alpha * op(A) * op(B) + beta * C on
// row-major views of rank 2, or rank 3 for a batch. A rank-2 A or B next to a rank-3 C is used for
// every batch entry (batch stride 0), which is how one weight matrix meets a batch of activations.
// Rows must be contiguous (last stride 1); the leading dimension is the stride of the row index,
// so strided sub-views work without copies.

#include <cstdint>
#include <tuple>

#include "nanochat/core/error.hpp"
#include "nanochat/core/tensor.hpp"

namespace nanochat {

enum class Transpose : bool { no = false, yes = true };

// A triangle of a square matrix: lower holds (i, j) with j <= i, upper j >= i.
enum class Triangle : std::uint8_t { full, lower, upper };

// How the products are formed. bf16: each operand element is rounded to bf16 (nearest, ties to
// even) and the products are summed in fp32, as a GPU's bf16 matmul under PyTorch's autocast;
// denormals may be flushed to zero. fp32 multiplies the operands as they are.
enum class GemmCompute : std::uint8_t { fp32, bf16 };

// What a caller knows about or allows for a product, so a backend may skip work. `c`: only that
// triangle of C is wanted, the rest is left unspecified. `a`: op(A) is zero outside that
// triangle (causal attention's probabilities). A backend may ignore the triangles: the result is
// the same where it is defined (for finite op(B): a skipped zero of op(A) times an Inf or NaN of
// op(B) does not make NaN). `compute` is a contract, not a hint.
struct GemmOptions {
  Triangle c = Triangle::full;
  Triangle a = Triangle::full;
  GemmCompute compute = GemmCompute::fp32;
};

struct GemmShape {
  std::int64_t batch, m, n, k;
  std::int64_t lda, ldb, ldc;                 // row-major leading dimensions (elements)
  std::int64_t stride_a, stride_b, stride_c;  // batch strides (elements); 0 broadcasts
  Transpose trans_a, trans_b;
};

template <class TC, class TA, class TB, class B>
GemmShape gemm_shape(const TensorView<TC, B>& c, const TensorView<TA, B>& a,
                     const TensorView<TB, B>& b, Transpose trans_a, Transpose trans_b) {
  auto check_rank = [](int rank, const char* name, const Shape& shape) {
    NANOCHAT_CHECK(rank == 2 || rank == 3, "gemm: ", name, " must have rank 2 or 3, got shape ",
                   shape);
  };
  check_rank(c.rank(), "C", c.shape());
  check_rank(a.rank(), "A", a.shape());
  check_rank(b.rank(), "B", b.shape());
  NANOCHAT_CHECK(c.rank() == 3 || (a.rank() == 2 && b.rank() == 2), "gemm: C has shape ",
                 c.shape(), " but a batched A ", a.shape(), " or B ", b.shape(),
                 " needs a batched (rank-3) C");
  for (auto [name, stride, shape] : {std::tuple{"A", a.stride(-1), a.shape()},
                                     std::tuple{"B", b.stride(-1), b.shape()},
                                     std::tuple{"C", c.stride(-1), c.shape()}}) {
    NANOCHAT_CHECK(stride == 1, "gemm: ", name, " with shape ", shape,
                   " must have contiguous rows (last stride 1), got stride ", stride);
  }

  GemmShape g{};
  g.trans_a = trans_a;
  g.trans_b = trans_b;
  g.batch = c.rank() == 3 ? c.size(0) : 1;
  g.m = c.size(-2);
  g.n = c.size(-1);
  const std::int64_t a_rows = a.size(-2), a_cols = a.size(-1);
  const std::int64_t b_rows = b.size(-2), b_cols = b.size(-1);
  const bool ta = trans_a == Transpose::yes, tb = trans_b == Transpose::yes;
  g.k = ta ? a_rows : a_cols;
  const std::int64_t a_m = ta ? a_cols : a_rows;
  const std::int64_t b_k = tb ? b_cols : b_rows, b_n = tb ? b_rows : b_cols;
  NANOCHAT_CHECK(a_m == g.m, "gemm: op(A) from A with shape ", a.shape(),
                 ta ? " (transposed)" : "", " has ", a_m, " rows but C with shape ", c.shape(),
                 " has ", g.m);
  NANOCHAT_CHECK(b_n == g.n, "gemm: op(B) from B with shape ", b.shape(),
                 tb ? " (transposed)" : "", " has ", b_n, " columns but C with shape ", c.shape(),
                 " has ", g.n);
  NANOCHAT_CHECK(b_k == g.k, "gemm: inner dimensions differ: op(A) from A ", a.shape(),
                 ta ? " (transposed)" : "", " has K = ", g.k, " but op(B) from B ", b.shape(),
                 tb ? " (transposed)" : "", " has K = ", b_k);
  for (auto [name, rank, size0] : {std::tuple{"A", a.rank(), a.rank() == 3 ? a.size(0) : 0},
                                   std::tuple{"B", b.rank(), b.rank() == 3 ? b.size(0) : 0}}) {
    NANOCHAT_CHECK(rank == 2 || size0 == g.batch, "gemm: ", name, " has batch ", size0,
                   " but C has batch ", g.batch);
  }
  NANOCHAT_CHECK(g.k > 0, "gemm: the inner dimension K of A ", a.shape(), " and B ", b.shape(),
                 " is 0");
  g.lda = a.stride(-2);
  g.ldb = b.stride(-2);
  g.ldc = c.stride(-2);
  NANOCHAT_CHECK(g.lda >= a_cols && g.ldb >= b_cols && g.ldc >= g.n,
                 "gemm: a row stride is smaller than its row (rows would overlap)");
  g.stride_a = a.rank() == 3 ? a.stride(0) : 0;
  g.stride_b = b.rank() == 3 ? b.stride(0) : 0;
  g.stride_c = c.rank() == 3 ? c.stride(0) : 0;
  return g;
}

}  // namespace nanochat
