#pragma once
// Causal self-attention on the Cpu backend, with grouped KV heads (query head h reads KV head
// h / (H / Hkv), as PyTorch's enable_gqa does). Per (batch, head) it is two GEMMs around a
// row-wise causal softmax; the probabilities are kept for the backward pass. Every GEMM is told
// the causal structure (only the lower triangle of the scores is wanted; the probabilities are
// zero above the diagonal), so the kernel skips the masked half tile by tile.
// Layouts: q, out [B, T, H, D]; k, v [B, T, Hkv, D]; probs [B, H, T, T].

#include <algorithm>
#include <cstdint>

#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/backend/cpu/gemm.hpp"
#include "nanochat/core/simd_math.hpp"

namespace nanochat::cpu {

namespace attention_detail {

struct Dims {
  std::int64_t batch, seq, heads, kv_heads, dim;
  std::int64_t group() const { return heads / kv_heads; }
};

// The causal structure of each product, in the given compute type.
inline GemmOptions lower_c(GemmCompute compute) { return {Triangle::lower, Triangle::full, compute}; }  // scores: j <= i
inline GemmOptions lower_a(GemmCompute compute) { return {Triangle::full, Triangle::lower, compute}; }  // P, dS
inline GemmOptions upper_a(GemmCompute compute) { return {Triangle::full, Triangle::upper, compute}; }  // P^T, dS^T

inline Dims check(const Shape& q, const Shape& k, const Shape& v, const Shape& probs, const char* op) {
  NANOCHAT_CHECK(q.rank() == 4 && k.rank() == 4, op, ": q ", q, " and k ", k,
                 " must be [B, T, heads, D]");
  const Dims d{q[0], q[1], q[2], k[2], q[3]};
  check_shape(k, Shape{d.batch, d.seq, d.kv_heads, d.dim}, cat(op, ": k"));
  check_shape(v, k, cat(op, ": v"));
  check_shape(probs, Shape{d.batch, d.heads, d.seq, d.seq}, cat(op, ": probs"));
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

template <class T>
TensorView<T, Cpu> matrix(const TensorView<T, Cpu>& probs, std::int64_t b, std::int64_t h) {
  const std::int64_t seq = probs.size(2);
  return {probs.data() + (b * probs.size(1) + h) * seq * seq, Shape{seq, seq}};
}

}  // namespace attention_detail

// out = softmax(scale * q k^T + causal mask) v; probs keeps the softmax (zeros above the
// diagonal). `compute` is the two products' (the softmax is fp32 either way).
inline void attention_forward(Cpu& cpu, CpuView<float> out, CpuView<float> probs,
                              CpuView<const float> q, CpuView<const float> k,
                              CpuView<const float> v, float scale, GemmCompute compute = GemmCompute::fp32) {
  using namespace attention_detail;
  const Dims d = check(q.shape(), k.shape(), v.shape(), probs.shape(), "attention_forward");
  check_shape(out.shape(), q.shape(), "attention_forward: out");
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t b = 0; b < d.batch; ++b)
    for (std::int64_t h = 0; h < d.heads; ++h) {
      const std::int64_t kv = h / d.group();
      const CpuView<float> p = matrix(probs, b, h);
      gemm(cpu, p, head(q, b, h), head(k, b, kv), Transpose::no, Transpose::yes, scale, 0.0f, lower_c(compute));
      for (std::int64_t i = 0; i < d.seq; ++i) {
        float* row = p.data() + i * d.seq;
        softmax_in_place(row, i + 1);
        std::fill(row + i + 1, row + d.seq, 0.0f);
      }
      gemm(cpu, head(out, b, h), CpuView<const float>(p), head(v, b, kv), Transpose::no, Transpose::no, 1.0f, 0.0f,
           lower_a(compute));
    }
}

// Gradients of q, k, v (overwritten, not accumulated) from dout; dprobs is [B, H, T, T] scratch.
// `compute` as the forward's.
inline void attention_backward(Cpu& cpu, CpuView<float> dq, CpuView<float> dk, CpuView<float> dv,
                               CpuView<float> dprobs, CpuView<const float> dout,
                               CpuView<const float> probs, CpuView<const float> q,
                               CpuView<const float> k, CpuView<const float> v, float scale,
                               GemmCompute compute = GemmCompute::fp32) {
  using namespace attention_detail;
  const Dims d = check(q.shape(), k.shape(), v.shape(), probs.shape(), "attention_backward");
  check_shape(dq.shape(), q.shape(), "attention_backward: dq");
  check_shape(dk.shape(), k.shape(), "attention_backward: dk");
  check_shape(dv.shape(), v.shape(), "attention_backward: dv");
  check_shape(dout.shape(), q.shape(), "attention_backward: dout");
  check_shape(dprobs.shape(), probs.shape(), "attention_backward: dprobs");
  // One task per KV head: the query heads of its group add into the same dk, dv.
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t b = 0; b < d.batch; ++b)
    for (std::int64_t kv = 0; kv < d.kv_heads; ++kv) {
      const CpuView<float> dkh = head(dk, b, kv), dvh = head(dv, b, kv);
      const CpuView<const float> kh = head(k, b, kv), vh = head(v, b, kv);
      for (std::int64_t h = kv * d.group(); h < (kv + 1) * d.group(); ++h) {
        const float beta = h == kv * d.group() ? 0.0f : 1.0f;
        const CpuView<const float> p = matrix(probs, b, h), dy = head(dout, b, h);
        const CpuView<float> ds = matrix(dprobs, b, h);
        gemm(cpu, dvh, p, dy, Transpose::yes, Transpose::no, 1.0f, beta, upper_a(compute));
        gemm(cpu, ds, dy, vh, Transpose::no, Transpose::yes, 1.0f, 0.0f, lower_c(compute));
        // Softmax backward: ds = p * (dp - sum_j p dp), zero above the diagonal (p is 0 there).
        for (std::int64_t i = 0; i < d.seq; ++i) {
          float* g = ds.data() + i * d.seq;
          const float* pr = p.data() + i * d.seq;
          float dot = 0.0f;
          for (std::int64_t j = 0; j <= i; ++j) dot += pr[j] * g[j];
          for (std::int64_t j = 0; j <= i; ++j) g[j] = pr[j] * (g[j] - dot);
          std::fill(g + i + 1, g + d.seq, 0.0f);
        }
        gemm(cpu, head(dq, b, h), CpuView<const float>(ds), kh, Transpose::no, Transpose::no, scale, 0.0f,
             lower_a(compute));
        gemm(cpu, dkh, CpuView<const float>(ds), head(q, b, h), Transpose::yes, Transpose::no, scale, beta,
             upper_a(compute));
      }
    }
}

}  // namespace nanochat::cpu
