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
// would be 16 MB per head and sequence, per layer). Each product of a block is two GEMMs: the keys
// before the block (dense) and the block's own keys, where the causal structure is told to the
// GEMM (only the lower triangle of the scores is wanted; the probabilities are zero above the
// diagonal) so the kernel skips the masked half.
// Layouts: q, out [B, T, H, D]; k, v [B, T, Hkv, D]; lse [B, H, T].

#include <algorithm>
#include <cstdint>

#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/backend/cpu/gemm.hpp"
#include "nanochat/core/simd_math.hpp"

namespace nanochat::cpu {

namespace attention_detail {

inline constexpr std::int64_t block_rows = 128;
// Owners of the per-thread scratch (distinct, so that the GEMMs' packing keeps its own): a
// block's scores and probabilities, and in the backward their gradients.
struct Probabilities;
struct ScoreGradients;

struct Dims {
  std::int64_t batch, seq, heads, kv_heads, dim;
  std::int64_t group() const { return heads / kv_heads; }
};

inline GemmOptions dense(GemmCompute compute) { return {Triangle::full, Triangle::full, compute}; }
// The causal structure of the diagonal block's products, in the given compute type.
inline GemmOptions lower_c(GemmCompute compute) { return {Triangle::lower, Triangle::full, compute}; }  // scores: j <= i
inline GemmOptions lower_a(GemmCompute compute) { return {Triangle::full, Triangle::lower, compute}; }  // P, dS
inline GemmOptions upper_a(GemmCompute compute) { return {Triangle::full, Triangle::upper, compute}; }  // P^T, dS^T

// The shapes agree and every tensor is contiguous (the kernels address heads by their layout).
inline Dims check(const CpuView<const float>& qv, const CpuView<const float>& kv, const CpuView<const float>& vv,
                  const CpuView<const float>& lse, const char* op) {
  const Shape &q = qv.shape(), &k = kv.shape(), &v = vv.shape();
  NANOCHAT_CHECK(q.rank() == 4 && k.rank() == 4, op, ": q ", q, " and k ", k,
                 " must be [B, T, heads, D]");
  NANOCHAT_CHECK(qv.is_contiguous() && kv.is_contiguous() && vv.is_contiguous() && lse.is_contiguous(), op,
                 ": q, k, v and lse must be contiguous");
  const Dims d{q[0], q[1], q[2], k[2], q[3]};
  check_shape(k, Shape{d.batch, d.seq, d.kv_heads, d.dim}, cat(op, ": k"));
  check_shape(v, k, cat(op, ": v"));
  check_shape(lse.shape(), Shape{d.batch, d.heads, d.seq}, cat(op, ": lse"));
  NANOCHAT_CHECK(d.kv_heads > 0 && d.heads % d.kv_heads == 0, op, ": ", d.heads,
                 " query heads do not split into groups over ", d.kv_heads, " KV heads");
  return d;
}

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
CpuView<float> block_scratch(const Dims& d) {
  const Shape shape{std::min(d.seq, block_rows), d.seq};
  return {thread_scratch<float, Owner>(static_cast<std::size_t>(shape.numel())), shape};
}

// s = scale q_b k^T over the keys [0, i1) of a block of query rows [i0, i1) (row i - i0 of s is
// query i), past keys dense and the block's own lower triangle; the rest of the own part is left.
inline void block_scores(Cpu& cpu, const CpuView<float>& s, const CpuView<const float>& qb, const CpuView<const float>& kh,
                         std::int64_t i0, std::int64_t i1, float scale, GemmCompute compute) {
  if (i0 > 0) gemm(cpu, past(s, i0), qb, rows(kh, 0, i0), Transpose::no, Transpose::yes, scale, 0.0f, dense(compute));
  gemm(cpu, own(s, i0, i1), qb, rows(kh, i0, i1), Transpose::no, Transpose::yes, scale, 0.0f, lower_c(compute));
}

}  // namespace attention_detail

// out = softmax(scale * q k^T + causal mask) v, and each row's log-sum-exp of the masked scores
// in lse for the backward. `compute` is the products' (the softmax is fp32 either way).
inline void attention_forward(Cpu& cpu, CpuView<float> out, CpuView<float> lse, CpuView<const float> q,
                              CpuView<const float> k, CpuView<const float> v, float scale,
                              GemmCompute compute = GemmCompute::fp32) {
  using namespace attention_detail;
  const Dims d = check(q, k, v, lse, "attention_forward");
  check_shape(out.shape(), q.shape(), "attention_forward: out");
  NANOCHAT_CHECK(out.is_contiguous(), "attention_forward: out must be contiguous");
  // Heads are handed out one at a time: the host slows one vCPU at a time, and a static split
  // would leave the other waiting (as it did in the GEMMs, gemm_threads.hpp).
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (std::int64_t b = 0; b < d.batch; ++b)
    for (std::int64_t h = 0; h < d.heads; ++h) {
      const std::int64_t kv = h / d.group();
      const CpuView<const float> qh = head(q, b, h), kh = head(k, b, kv), vh = head(v, b, kv);
      const CpuView<float> oh = head(out, b, h), probs = block_scratch<Probabilities>(d);
      float* row_lse = lse.data() + (b * d.heads + h) * d.seq;
      for (std::int64_t i0 = 0; i0 < d.seq; i0 += block_rows) {
        const std::int64_t i1 = std::min(d.seq, i0 + block_rows);
        const CpuView<float> p = past(rows(probs, 0, i1 - i0), i1), ob = rows(oh, i0, i1);
        block_scores(cpu, p, rows(qh, i0, i1), kh, i0, i1, scale, compute);
        for (std::int64_t i = i0; i < i1; ++i) {
          float* row = p.data() + (i - i0) * p.stride(0);
          row_lse[i] = softmax_in_place(row, i + 1);
          std::fill(row + i + 1, row + i1, 0.0f);  // the triangular products read whole kernel tiles
        }
        if (i0 > 0) gemm(cpu, ob, past(p, i0), rows(vh, 0, i0), Transpose::no, Transpose::no, 1.0f, 0.0f, dense(compute));
        gemm(cpu, ob, own(p, i0, i1), rows(vh, i0, i1), Transpose::no, Transpose::no, 1.0f, i0 > 0 ? 1.0f : 0.0f,
             lower_a(compute));
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
  const Dims d = check(q, k, v, lse, "attention_backward");
  check_shape(dq.shape(), q.shape(), "attention_backward: dq");
  check_shape(dk.shape(), k.shape(), "attention_backward: dk");
  check_shape(dv.shape(), v.shape(), "attention_backward: dv");
  check_shape(dout.shape(), q.shape(), "attention_backward: dout");
  NANOCHAT_CHECK(dq.is_contiguous() && dk.is_contiguous() && dv.is_contiguous() && dout.is_contiguous(),
                 "attention_backward: dq, dk, dv and dout must be contiguous");
  constexpr auto no = Transpose::no, yes = Transpose::yes;
  // One task per KV head (handed out as the forward's heads): the query heads of its group add
  // into the same dk, dv, which every block adds into.
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (std::int64_t b = 0; b < d.batch; ++b)
    for (std::int64_t kv = 0; kv < d.kv_heads; ++kv) {
      const CpuView<float> probs = block_scratch<Probabilities>(d), grads = block_scratch<ScoreGradients>(d);
      const CpuView<float> dkh = head(dk, b, kv), dvh = head(dv, b, kv);
      const CpuView<const float> kh = head(k, b, kv), vh = head(v, b, kv);
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
          const CpuView<float> dqb = rows(dqh, i0, i1);
          // p = exp(s - lse): the forward's probabilities, zero above the diagonal.
          block_scores(cpu, p, qb, kh, i0, i1, scale, compute);
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
          if (i0 > 0) gemm(cpu, past(ds, i0), dyb, rows(vh, 0, i0), no, yes, 1.0f, 0.0f, dense(compute));
          gemm(cpu, own(ds, i0, i1), dyb, rows(vh, i0, i1), no, yes, 1.0f, 0.0f, lower_c(compute));
          for (std::int64_t i = i0; i < i1; ++i) {
            float* g = ds.data() + (i - i0) * ds.stride(0);
            softmax_backward_in_place(g, p.data() + (i - i0) * p.stride(0), i + 1);
            std::fill(g + i + 1, g + i1, 0.0f);
          }
          // dq = scale ds k;  dk += scale ds^T q
          if (i0 > 0) gemm(cpu, dqb, past(ds, i0), rows(kh, 0, i0), no, no, scale, 0.0f, dense(compute));
          gemm(cpu, dqb, own(ds, i0, i1), rows(kh, i0, i1), no, no, scale, i0 > 0 ? 1.0f : 0.0f, lower_a(compute));
          if (i0 > 0) gemm(cpu, rows(dkh, 0, i0), past(ds, i0), qb, yes, no, scale, 1.0f, dense(compute));
          gemm(cpu, rows(dkh, i0, i1), own(ds, i0, i1), qb, yes, no, scale, 1.0f, upper_a(compute));
        }
      }
    }
}

}  // namespace nanochat::cpu
