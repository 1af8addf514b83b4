#pragma once
// Shape rules of causal self-attention with grouped KV heads, shared by every backend:
// q, out [B, T, heads, D]; k, v [B, T, kv_heads, D]; lse [B, heads, T]; every tensor contiguous
// (the kernels address heads by that layout), and kv_heads dividing heads.

#include <cstdint>

#include "nanochat/core/error.hpp"
#include "nanochat/core/macros.hpp"
#include "nanochat/core/tensor.hpp"

namespace nanochat {

struct AttentionShape {
  std::int64_t batch, seq, heads, kv_heads, dim;
  // Query heads per KV head; the Cuda kernels read it too.
  NANOCHAT_HOST_DEVICE std::int64_t group() const { return heads / kv_heads; }
};

template <class TQ, class TK, class TV, class TL, class B>
AttentionShape attention_shape(const TensorView<TQ, B>& qv, const TensorView<TK, B>& kv, const TensorView<TV, B>& vv,
                               const TensorView<TL, B>& lse, const char* op) {
  const Shape &q = qv.shape(), &k = kv.shape(), &v = vv.shape();
  NANOCHAT_CHECK(q.rank() == 4 && k.rank() == 4, op, ": q ", q, " and k ", k, " must be [B, T, heads, D]");
  NANOCHAT_CHECK(qv.is_contiguous() && kv.is_contiguous() && vv.is_contiguous() && lse.is_contiguous(), op,
                 ": q, k, v and lse must be contiguous");
  const AttentionShape d{q[0], q[1], q[2], k[2], q[3]};
  check_shape(k, Shape{d.batch, d.seq, d.kv_heads, d.dim}, cat(op, ": k"));
  check_shape(v, k, cat(op, ": v"));
  check_shape(lse.shape(), Shape{d.batch, d.heads, d.seq}, cat(op, ": lse"));
  NANOCHAT_CHECK(d.kv_heads > 0 && d.heads % d.kv_heads == 0, op, ": ", d.heads,
                 " query heads do not split into groups over ", d.kv_heads, " KV heads");
  return d;
}

// The forward's output: q's shape, contiguous.
template <class TO, class TQ, class B>
void check_attention_output(const TensorView<TO, B>& out, const TensorView<TQ, B>& q) {
  check_shape(out.shape(), q.shape(), "attention_forward: out");
  NANOCHAT_CHECK(out.is_contiguous(), "attention_forward: out must be contiguous");
}

// The backward's gradients: each the shape of what it differentiates, all contiguous.
template <class TG, class TD, class TQ, class TK, class B>
void check_attention_gradients(const TensorView<TG, B>& dq, const TensorView<TG, B>& dk, const TensorView<TG, B>& dv,
                               const TensorView<TD, B>& dout, const TensorView<TQ, B>& q, const TensorView<TK, B>& k) {
  check_shape(dq.shape(), q.shape(), "attention_backward: dq");
  check_shape(dk.shape(), k.shape(), "attention_backward: dk");
  check_shape(dv.shape(), k.shape(), "attention_backward: dv");
  check_shape(dout.shape(), q.shape(), "attention_backward: dout");
  NANOCHAT_CHECK(dq.is_contiguous() && dk.is_contiguous() && dv.is_contiguous() && dout.is_contiguous(),
                 "attention_backward: dq, dk, dv and dout must be contiguous");
}

}  // namespace nanochat
