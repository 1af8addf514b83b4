#pragma once
// Causal self-attention on the Cpu backend, with grouped KV heads (query head h reads KV head
// h / (H / Hkv), as PyTorch's enable_gqa does). Per (batch, head) it is GEMMs around a row-wise
// causal softmax.
//
// Query rows go in blocks of block_rows, so that a block's scores, probabilities and their
// gradients (block_rows x T, per-thread scratch) stay in L2 through every pass over them. The
// forward keeps only each row's log-sum-exp; the backward recomputes a block's probabilities from
// it (one more product of the scores, exp(s - lse)) instead of reading a [B, H, T, T] tensor back
// from memory: activation memory grows with T, not T^2 (at nanochat's T = 2048 the probabilities
// would be 16 MB per head and sequence, per layer).
//
// The products whose right-hand operand is a head's K or V (the scores q k^T, p v, and in the
// backward dy v^T and ds k) read it through a HeadOperand: with AVX-512 the head is packed once
// into the GEMM kernel's panels (gemm_avx512.hpp) and every block multiplies against that copy,
// each block in one product over all its keys, the diagonal's position telling the kernel which
// tiles are masked (skipped) and how deep each row's probabilities reach, instead of packing K
// and V again for every block and splitting each product in two at the diagonal (3-6 % faster on
// the d8 shapes, docs/benchmarks.md). Without AVX-512, and for bf16 products where a bf16 kernel
// multiplies (AVX512_BF16 or AMX, gemm_kernel.hpp), each product is gemm calls on the unpacked
// head, the keys before the block dense and the block's own keys with the causal structure told
// to the GEMM. The products with a per-block right-hand side (dv += p^T dy, dk += ds^T q) are gemm calls.
// Layouts: q, out [B, T, H, D]; k, v [B, T, Hkv, D]; lse [B, H, T].

#include <algorithm>
#include <cstdint>

#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/backend/cpu/gemm.hpp"
#include "nanochat/core/attention_shape.hpp"
#include "nanochat/core/simd_math.hpp"

namespace nanochat::cpu {

namespace attention_detail {

inline constexpr std::int64_t block_rows = 128;
// Owners of the per-thread scratch (distinct, so that the GEMMs' packing keeps its own): a
// block's scores and probabilities, and in the backward their gradients.
struct Probabilities;
struct ScoreGradients;

inline GemmOptions dense(GemmCompute compute) { return {Triangle::full, Triangle::full, compute}; }
// The causal structure of the diagonal block's products, in the given compute type.
inline GemmOptions lower_c(GemmCompute compute) { return {Triangle::lower, Triangle::full, compute}; }  // scores: j <= i
inline GemmOptions lower_a(GemmCompute compute) { return {Triangle::full, Triangle::lower, compute}; }  // P, dS
inline GemmOptions upper_a(GemmCompute compute) { return {Triangle::full, Triangle::upper, compute}; }  // P^T, dS^T

// Head h of batch row b as a [T, D] view with row stride heads * D.
template <class T>
TensorView<T, Cpu> head(const TensorView<T, Cpu>& x, std::int64_t b, std::int64_t h) {
  const std::int64_t seq = x.size(1), heads = x.size(2), dim = x.size(3);
  return {x.data() + (b * seq * heads + h) * dim, Shape{seq, dim}, Strides{heads * dim, 1}};
}

// Rows [begin, end) of a [T, .] view.
template <class T>
TensorView<T, Cpu> rows(const TensorView<T, Cpu>& x, std::int64_t begin, std::int64_t end) {
  return x.slice(0, begin, end);
}

// Columns [0, i0) (the keys before a block starting at row i0) and [i0, i1) (its own keys).
template <class T>
TensorView<T, Cpu> past(const TensorView<T, Cpu>& x, std::int64_t i0) {
  return x.slice(1, 0, i0);
}
template <class T>
TensorView<T, Cpu> own(const TensorView<T, Cpu>& x, std::int64_t i0, std::int64_t i1) {
  return x.slice(1, i0, i1);
}

// This thread's block_rows x T scratch of the given owner.
template <class Owner>
CpuView<float> block_scratch(const AttentionShape& d) {
  const Shape shape{std::min(d.seq, block_rows), d.seq};
  return {thread_scratch<float, Owner>(static_cast<std::size_t>(shape.numel())), shape};
}

// Whether the heads are packed for the kernel (see the top of the file): where the process's GEMM
// for this compute type is the AVX-512 fp32 kernel, whose panels the packed heads are.
inline bool packs_heads(GemmCompute compute) {
#if !defined(__AVX512F__)
  (void)compute;
  return false;
#else
  return gemm_kernels().of(compute) == GemmKernel::avx512;
#endif
}

// How a head's [T, D] K or V is the right-hand operand op(B) of a block's product: by_key, op(B)
// = X^T (a column per position, D deep: scores q k^T, dp = dy v^T); by_position, op(B) = X (the
// positions are the depth, a column per head dim: p v, ds k).
enum class HeadLayout { by_key, by_position };

// Owners of the packed heads' scratch (K for the scores, V, and K by position for dq in the
// backward) and of a block's packed left-hand rows.
struct ScoreKeys;
struct Values;
struct GradientKeys;
struct PackedRows;

// A head's K or V as op(B) of the block products: the view, and with packs_heads its packed copy
// (this thread's scratch of Owner, valid until the thread packs another head for that owner).
template <class Owner>
class HeadOperand {
 public:
  HeadOperand(const CpuView<const float>& x, [[maybe_unused]] HeadLayout layout, GemmCompute compute)
      : x_(x), compute_(compute) {
#if defined(__AVX512F__)
    if (!packs_heads(compute)) return;
    using avx512::nr;
    const std::int64_t seq = x.size(0), dim = x.size(1);
    const bool by_key = layout == HeadLayout::by_key;
    const std::int64_t columns = by_key ? seq : dim, depth = by_key ? dim : seq;
    float* out = thread_scratch<float, Owner>(static_cast<std::size_t>((columns + nr - 1) / nr * nr * depth));
    // pack() takes op(B)'s columns as its rows: X's rows by key, X's columns (transposed) by position.
    if (compute == GemmCompute::bf16) avx512::detail::pack<true>(x.data(), x.stride(0), !by_key, 0, columns, 0, depth, nr, out);
    else avx512::detail::pack<false>(x.data(), x.stride(0), !by_key, 0, columns, 0, depth, nr, out);
    packed_ = out;
#endif
  }

  // c[0, bs) x [0, i1) = alpha a X[0, i1)^T for the block of query rows [i0, i1) (bs = i1 - i0,
  // row r of c and a is query i0 + r), by_key: entries j <= i0 + r are formed, whole kernel tiles
  // past the diagonal are left unwritten, and the rest of a tile the diagonal crosses holds
  // products the caller overwrites.
  void scores(Cpu& cpu, const CpuView<float>& c, const CpuView<const float>& a, std::int64_t i0, std::int64_t i1,
              float alpha) const {
#if defined(__AVX512F__)
    if (packed_ != nullptr) {
      using avx512::mr, avx512::nr;
      const std::int64_t bs = i1 - i0, dim = a.size(1);
      float* ap = pack_rows(a, dim);
      for (std::int64_t ir = 0; ir < bs; ir += mr) {
        const std::int64_t rows = std::min(mr, bs - ir), last = i0 + ir + rows - 1;  // its last query
        for (std::int64_t jr = 0; jr <= last; jr += nr)
          avx512::detail::kernel(dim, ap + ir * dim, packed_ + jr * dim, c.data() + ir * c.stride(0) + jr,
                                 c.stride(0), rows, std::min(nr, i1 - jr), alpha, 0.0f);
      }
      return;
    }
#endif
    if (i0 > 0) gemm(cpu, past(c, i0), a, rows(x_, 0, i0), Transpose::no, Transpose::yes, alpha, 0.0f, dense(compute_));
    gemm(cpu, own(c, i0, i1), a, rows(x_, i0, i1), Transpose::no, Transpose::yes, alpha, 0.0f, lower_c(compute_));
  }

  // c = alpha p X[0, i1) + beta c for the block of query rows [i0, i1), by_position: p [bs, i1)
  // is zero past the diagonal (row r, columns j > i0 + r), where it is not read.
  void weighted_sum(Cpu& cpu, const CpuView<float>& c, const CpuView<const float>& p, std::int64_t i0,
                    std::int64_t i1, float alpha, float beta) const {
#if defined(__AVX512F__)
    if (packed_ != nullptr) {
      using avx512::mr, avx512::nr;
      const std::int64_t bs = i1 - i0, dim = c.size(1), seq = x_.size(0);
      float* ap = pack_rows(p, i1);
      for (std::int64_t ir = 0; ir < bs; ir += mr) {
        const std::int64_t rows = std::min(mr, bs - ir), depth = std::min(i1, i0 + ir + rows);
        for (std::int64_t jr = 0; jr < dim; jr += nr)
          avx512::detail::kernel(depth, ap + ir * i1, packed_ + jr * seq, c.data() + ir * c.stride(0) + jr,
                                 c.stride(0), rows, std::min(nr, dim - jr), alpha, beta);
      }
      return;
    }
#endif
    const float own_beta = i0 > 0 ? 1.0f : beta;
    if (i0 > 0) gemm(cpu, c, past(p, i0), rows(x_, 0, i0), Transpose::no, Transpose::no, alpha, beta, dense(compute_));
    gemm(cpu, c, own(p, i0, i1), rows(x_, i0, i1), Transpose::no, Transpose::no, alpha, own_beta, lower_a(compute_));
  }

 private:
#if defined(__AVX512F__)
  // The block's left-hand rows [bs, depth) in the kernel's panels of mr rows.
  float* pack_rows(const CpuView<const float>& a, std::int64_t depth) const {
    using avx512::mr;
    const std::int64_t bs = a.size(0);
    float* ap = thread_scratch<float, PackedRows>(static_cast<std::size_t>((bs + mr - 1) / mr * mr * depth));
    if (compute_ == GemmCompute::bf16) avx512::detail::pack<true>(a.data(), a.stride(0), false, 0, bs, 0, depth, mr, ap);
    else avx512::detail::pack<false>(a.data(), a.stride(0), false, 0, bs, 0, depth, mr, ap);
    return ap;
  }
  const float* packed_ = nullptr;
#endif
  CpuView<const float> x_;
  GemmCompute compute_;
};

}  // namespace attention_detail

// out = softmax(scale * q k^T + causal mask) v, and each row's log-sum-exp of the masked scores
// in lse for the backward. `compute` is the products' (the softmax is fp32 either way).
inline void attention_forward(Cpu& cpu, CpuView<float> out, CpuView<float> lse, CpuView<const float> q,
                              CpuView<const float> k, CpuView<const float> v, float scale,
                              GemmCompute compute = GemmCompute::fp32) {
  using namespace attention_detail;
  const AttentionShape d = attention_shape(q, k, v, lse, "attention_forward");
  check_attention_output(out, q);
  // Heads are handed out one at a time: the host slows one vCPU at a time, and a static split
  // would leave the other waiting (as it did in the GEMMs, gemm_threads.hpp).
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (std::int64_t b = 0; b < d.batch; ++b)
    for (std::int64_t h = 0; h < d.heads; ++h) {
      const std::int64_t kv = h / d.group();
      const CpuView<const float> qh = head(q, b, h);
      const HeadOperand<ScoreKeys> keys(head(k, b, kv), HeadLayout::by_key, compute);
      const HeadOperand<Values> values(head(v, b, kv), HeadLayout::by_position, compute);
      const CpuView<float> oh = head(out, b, h), probs = block_scratch<Probabilities>(d);
      float* row_lse = lse.data() + (b * d.heads + h) * d.seq;
      for (std::int64_t i0 = 0; i0 < d.seq; i0 += block_rows) {
        const std::int64_t i1 = std::min(d.seq, i0 + block_rows);
        const CpuView<float> p = past(rows(probs, 0, i1 - i0), i1);
        keys.scores(cpu, p, rows(qh, i0, i1), i0, i1, scale);
        for (std::int64_t i = i0; i < i1; ++i) {
          float* row = p.data() + (i - i0) * p.stride(0);
          row_lse[i] = softmax_in_place(row, i + 1);
          std::fill(row + i + 1, row + i1, 0.0f);  // the products read whole kernel tiles
        }
        values.weighted_sum(cpu, rows(oh, i0, i1), p, i0, i1, 1.0f, 0.0f);
      }
    }
}

// Gradients of q, k, v (overwritten, not accumulated) from dout, with the forward's lse. `compute`
// as the forward's: the recomputed scores are the forward's own, bit for bit.
inline void attention_backward(Cpu& cpu, CpuView<float> dq, CpuView<float> dk, CpuView<float> dv,
                               CpuView<const float> dout, CpuView<const float> lse, CpuView<const float> q,
                               CpuView<const float> k, CpuView<const float> v, float scale,
                               GemmCompute compute = GemmCompute::fp32) {
  using namespace attention_detail;
  const AttentionShape d = attention_shape(q, k, v, lse, "attention_backward");
  check_attention_gradients(dq, dk, dv, dout, q, k);
  constexpr auto no = Transpose::no, yes = Transpose::yes;
  // One task per KV head (handed out as the forward's heads): the query heads of its group add
  // into the same dk, dv, which every block adds into.
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (std::int64_t b = 0; b < d.batch; ++b)
    for (std::int64_t kv = 0; kv < d.kv_heads; ++kv) {
      const CpuView<float> probs = block_scratch<Probabilities>(d), grads = block_scratch<ScoreGradients>(d);
      const CpuView<float> dkh = head(dk, b, kv), dvh = head(dv, b, kv);
      // Packed once for every query head of the group and every block.
      const HeadOperand<ScoreKeys> keys(head(k, b, kv), HeadLayout::by_key, compute);
      const HeadOperand<Values> values(head(v, b, kv), HeadLayout::by_key, compute);
      const HeadOperand<GradientKeys> keys_by_position(head(k, b, kv), HeadLayout::by_position, compute);
      for (std::int64_t t = 0; t < d.seq; ++t) {
        std::fill_n(dkh.data() + t * dkh.stride(0), d.dim, 0.0f);
        std::fill_n(dvh.data() + t * dvh.stride(0), d.dim, 0.0f);
      }
      for (std::int64_t h = kv * d.group(); h < (kv + 1) * d.group(); ++h) {
        const CpuView<const float> dyh = head(dout, b, h), qh = head(q, b, h);
        const CpuView<float> dqh = head(dq, b, h);
        const float* row_lse = lse.data() + (b * d.heads + h) * d.seq;
        for (std::int64_t i0 = 0; i0 < d.seq; i0 += block_rows) {
          const std::int64_t i1 = std::min(d.seq, i0 + block_rows);
          const CpuView<const float> dyb = rows(dyh, i0, i1), qb = rows(qh, i0, i1);
          const CpuView<float> p = past(rows(probs, 0, i1 - i0), i1), ds = past(rows(grads, 0, i1 - i0), i1);
          // p = exp(s - lse): the forward's probabilities, zero above the diagonal.
          keys.scores(cpu, p, qb, i0, i1, scale);
          for (std::int64_t i = i0; i < i1; ++i) {
            float* row = p.data() + (i - i0) * p.stride(0);
            const float shift = row_lse[i];
            map_vec(row, i + 1, [&](FloatVec x) { return simd_exp(x - shift); });
            std::fill(row + i + 1, row + i1, 0.0f);
          }
          // dv += p^T dy
          if (i0 > 0) gemm(cpu, rows(dvh, 0, i0), past(p, i0), dyb, yes, no, 1.0f, 1.0f, dense(compute));
          gemm(cpu, rows(dvh, i0, i1), own(p, i0, i1), dyb, yes, no, 1.0f, 1.0f, upper_a(compute));
          // dp = dy v^T, then the softmax backward: ds = p * (dp - sum_j p dp), zero above the
          // diagonal.
          values.scores(cpu, ds, dyb, i0, i1, 1.0f);
          for (std::int64_t i = i0; i < i1; ++i) {
            float* g = ds.data() + (i - i0) * ds.stride(0);
            softmax_backward_in_place(g, p.data() + (i - i0) * p.stride(0), i + 1);
            std::fill(g + i + 1, g + i1, 0.0f);
          }
          // dq = scale ds k;  dk += scale ds^T q
          keys_by_position.weighted_sum(cpu, rows(dqh, i0, i1), ds, i0, i1, scale, 0.0f);
          if (i0 > 0) gemm(cpu, rows(dkh, 0, i0), past(ds, i0), qb, yes, no, scale, 1.0f, dense(compute));
          gemm(cpu, rows(dkh, i0, i1), own(ds, i0, i1), qb, yes, no, scale, 1.0f, upper_a(compute));
        }
      }
    }
}

}  // namespace nanochat::cpu
