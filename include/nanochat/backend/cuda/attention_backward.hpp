#pragma once
// Causal self-attention backward on the Cuda backend, FlashAttention-2's way: the scores are
// recomputed from q, k and the forward's log-sum-exp (p = exp(scale q k^T - lse)), never stored.
// Two kernels, each owning what it writes, so nothing is accumulated across blocks:
//   dq: one block per (64-query tile, head, batch row). A first walk over the keys forms
//       delta_i = sum_j p_ij dp_ij (dp = dy v^T; the softmax backward's row term, which
//       FlashAttention-2 reads as rowsum(dy * out): this op's signature, the Cpu backend's, has no
//       out), a second forms ds = p (dp - delta) and dq = scale ds k. delta goes to a [B, H, T]
//       buffer (the backend's scratch) for the other kernel.
//   dk, dv: one block per (64-key tile, KV head, batch row), 4 warps of 16 keys, walking the
//       32-query tiles from its diagonal on for every query head of the group (GQA's sum over
//       the group stays in registers): p^T and dp^T from k q^T and v dy^T, dv += p^T dy,
//       dk += scale ds^T q.
// Products on tensor cores (mma.sync bf16, fp32 accumulation); p and ds rounded to bf16 for them.

#include <algorithm>
#include <cstdint>
#include <math.h>

#include "nanochat/backend/cuda/attention_tiles.hpp"
#include "nanochat/backend/cuda/cuda.hpp"

namespace nanochat::cuda {

template <int D>
struct FlashAttentionBackwardDqKernel {
  static constexpr const char* name = "flash_attention_backward_dq";
  static constexpr std::size_t shared_bytes =
      attention_tiles::tile_bytes<D>(2 * flash_attention::query_tile + 2 * flash_attention::key_tile);

  NANOCHAT_HOST_DEVICE void operator()(float* dq, float* delta, const float* dout, const float* lse, const float* q,
                                       const float* k, const float* v, AttentionShape s, float scale) const {
    using namespace attention_tiles;
    using simt::MmaAccumulator;
    constexpr int Br = flash_attention::query_tile, Bc = flash_attention::key_tile;
    const int seq = static_cast<int>(s.seq);
    const int q0 = static_cast<int>(simt::grid_dim().x - 1 - simt::block_idx().x) * Br;  // longest first, as the forward
    const std::int64_t h = simt::block_idx().y, b = simt::block_idx().z;
    const std::int64_t kv_head = h / s.group();
    bf16* q_tile = simt::dynamic_shared<bf16>();
    bf16* dy_tile = q_tile + Br * tile_stride<D>;
    bf16* k_tile = dy_tile + Br * tile_stride<D>;
    bf16* v_tile = k_tile + Bc * tile_stride<D>;
    const std::int64_t q_offset = ((b * s.seq + q0) * s.heads + h) * D, q_stride = s.heads * D;
    const std::int64_t kv_stride = s.kv_heads * D;
    load_tile<D>(q_tile, q + q_offset, q_stride, Br, std::min(Br, seq - q0));
    load_tile<D>(dy_tile, dout + q_offset, q_stride, Br, std::min(Br, seq - q0));

    const int row0 = static_cast<int>(simt::warp_id()) * warp_rows;
    const int row[2] = {q0 + row0 + element_row(0), q0 + row0 + element_row(2)};
    const float* row_lse = lse + (b * s.heads + h) * s.seq;
    const float shift[2] = {row[0] < seq ? row_lse[row[0]] : 0.0f, row[1] < seq ? row_lse[row[1]] : 0.0f};
    const int keys_end = std::min(seq, q0 + Br);
    // p and dp of one key tile: p (masked to 0 past the diagonal) in `p`, dp in `dp`.
    MmaAccumulator p[Bc / 8], dp[Bc / 8];
    const auto probabilities = [&](int k0) {
      simt::sync_threads();  // the previous K and V tiles are consumed (and Q, dy written)
      const std::int64_t kv_offset = ((b * s.seq + k0) * s.kv_heads + kv_head) * D;
      load_tile<D>(k_tile, k + kv_offset, kv_stride, Bc, std::min(Bc, seq - k0));
      load_tile<D>(v_tile, v + kv_offset, kv_stride, Bc, std::min(Bc, seq - k0));
      simt::sync_threads();
      scores<D, Bc>(p, q_tile, row0, k_tile);
      scores<D, Bc>(dp, dy_tile, row0, v_tile);
      for (int j = 0; j < Bc / 8; ++j)
        for (unsigned i = 0; i < 4; ++i) {
          const int col = k0 + 8 * j + element_col(i), r = static_cast<int>(i / 2);
          p[j].c[i] = col <= row[r] && col < seq ? ::expf(p[j].c[i] * scale - shift[r]) : 0.0f;
        }
    };
    float row_delta[2] = {0.0f, 0.0f};
    for (int k0 = 0; k0 < keys_end; k0 += Bc) {
      probabilities(k0);
      for (int j = 0; j < Bc / 8; ++j)
        for (unsigned i = 0; i < 4; ++i) row_delta[i / 2] += p[j].c[i] * dp[j].c[i];
    }
    for (float& d : row_delta) d = quad_reduce(d, simt::Sum{});
    MmaAccumulator dq_acc[D / 8] = {};
    for (int k0 = 0; k0 < keys_end; k0 += Bc) {
      probabilities(k0);
      for (int j = 0; j < Bc / 8; ++j)
        for (unsigned i = 0; i < 4; ++i) p[j].c[i] *= dp[j].c[i] - row_delta[i / 2];  // ds
      accumulate<D, Bc>(dq_acc, p, k_tile);
    }
    for (int j = 0; j < D / 8; ++j)
      for (unsigned i = 0; i < 4; ++i) {
        const int r = static_cast<int>(i / 2);
        if (row[r] < seq) dq[((b * s.seq + row[r]) * s.heads + h) * D + 8 * j + element_col(i)] = scale * dq_acc[j].c[i];
      }
    if (simt::lane_id() % 4 == 0)
      for (int r = 0; r < 2; ++r)
        if (row[r] < seq) delta[(b * s.heads + h) * s.seq + row[r]] = row_delta[r];
  }
};

template <int D>
struct FlashAttentionBackwardDkDvKernel {
  static constexpr const char* name = "flash_attention_backward_dkdv";
  static constexpr std::size_t shared_bytes =
      attention_tiles::tile_bytes<D>(2 * flash_attention::key_tile + 2 * flash_attention::gradient_query_tile) +
      2 * flash_attention::gradient_query_tile * sizeof(float);

  NANOCHAT_HOST_DEVICE void operator()(float* dk, float* dv, const float* dout, const float* lse, const float* delta,
                                       const float* q, const float* k, const float* v, AttentionShape s,
                                       float scale) const {
    using namespace attention_tiles;
    using simt::MmaAccumulator;
    constexpr int Bk = flash_attention::key_tile, Bq = flash_attention::gradient_query_tile;
    const int seq = static_cast<int>(s.seq);
    const int k0 = static_cast<int>(simt::block_idx().x) * Bk;  // longest first already: key 0 sees every query
    const std::int64_t kv_head = simt::block_idx().y, b = simt::block_idx().z;
    const std::int64_t group = s.group();
    bf16* k_tile = simt::dynamic_shared<bf16>();
    bf16* v_tile = k_tile + Bk * tile_stride<D>;
    bf16* q_tile = v_tile + Bk * tile_stride<D>;
    bf16* dy_tile = q_tile + Bq * tile_stride<D>;
    float* lse_tile = reinterpret_cast<float*>(dy_tile + Bq * tile_stride<D>);
    float* delta_tile = lse_tile + Bq;
    const std::int64_t kv_offset = ((b * s.seq + k0) * s.kv_heads + kv_head) * D, kv_stride = s.kv_heads * D;
    const std::int64_t q_stride = s.heads * D;
    load_tile<D>(k_tile, k + kv_offset, kv_stride, Bk, std::min(Bk, seq - k0));
    load_tile<D>(v_tile, v + kv_offset, kv_stride, Bk, std::min(Bk, seq - k0));

    const int row0 = static_cast<int>(simt::warp_id()) * warp_rows;
    const int key[2] = {k0 + row0 + element_row(0), k0 + row0 + element_row(2)};
    MmaAccumulator dk_acc[D / 8] = {}, dv_acc[D / 8] = {};
    for (std::int64_t h = kv_head * group; h < (kv_head + 1) * group; ++h) {
      const float* head_lse = lse + (b * s.heads + h) * s.seq;
      const float* head_delta = delta + (b * s.heads + h) * s.seq;
      for (int q0 = k0; q0 < seq; q0 += Bq) {  // causal: no query before the tile's first key
        simt::sync_threads();  // the previous query tiles are consumed (and K, V written)
        const std::int64_t q_offset = ((b * s.seq + q0) * s.heads + h) * D;
        const int valid = std::min(Bq, seq - q0);
        load_tile<D>(q_tile, q + q_offset, q_stride, Bq, valid);
        load_tile<D>(dy_tile, dout + q_offset, q_stride, Bq, valid);
        for (int i = static_cast<int>(simt::linear_thread()); i < Bq; i += block_threads) {
          lse_tile[i] = i < valid ? head_lse[q0 + i] : 0.0f;
          delta_tile[i] = i < valid ? head_delta[q0 + i] : 0.0f;
        }
        simt::sync_threads();
        MmaAccumulator p[Bq / 8], ds[Bq / 8];  // transposed: a row per key, a column per query
        scores<D, Bq>(p, k_tile, row0, q_tile);
        scores<D, Bq>(ds, v_tile, row0, dy_tile);
        for (int j = 0; j < Bq / 8; ++j)
          for (unsigned i = 0; i < 4; ++i) {
            const int col = 8 * j + element_col(i), query = q0 + col;
            const bool causal = query >= key[i / 2] && query < seq;
            const float pij = causal ? ::expf(p[j].c[i] * scale - lse_tile[col]) : 0.0f;
            p[j].c[i] = pij;
            ds[j].c[i] = pij * (ds[j].c[i] - delta_tile[col]);
          }
        accumulate<D, Bq>(dv_acc, p, dy_tile);
        accumulate<D, Bq>(dk_acc, ds, q_tile);
      }
    }
    for (int j = 0; j < D / 8; ++j)
      for (unsigned i = 0; i < 4; ++i) {
        const int r = static_cast<int>(i / 2);
        if (key[r] >= seq) continue;
        const std::int64_t at = ((b * s.seq + key[r]) * s.kv_heads + kv_head) * D + 8 * j + element_col(i);
        dk[at] = scale * dk_acc[j].c[i];
        dv[at] = dv_acc[j].c[i];
      }
  }
};

inline namespace NANOCHAT_CUDA_ABI {

// Gradients of q, k, v (overwritten) from dout and the forward's lse, as the Cpu backend's
// attention_backward; GemmCompute::bf16 only, as the forward.
inline void attention_backward(Cuda& cuda, CudaView<float> dq, CudaView<float> dk, CudaView<float> dv,
                               CudaView<const float> dout, CudaView<const float> lse, CudaView<const float> q,
                               CudaView<const float> k, CudaView<const float> v, float scale,
                               GemmCompute compute = GemmCompute::bf16) {
  const AttentionShape s = attention_shape(q, k, v, lse, "attention_backward");
  check_attention_gradients(dq, dk, dv, dout, q, k);
  flash_attention::check_supported(s, compute, "attention_backward");
  if (s.batch == 0 || s.seq == 0 || s.heads == 0) return;
  // delta lives from the dq kernel to the dk/dv kernel: the backend's scratch.
  float* delta = static_cast<float*>(cuda.scratch(static_cast<std::size_t>(s.batch * s.heads * s.seq) * sizeof(float)));
  const Dim3 block{attention_tiles::block_threads, 1, 1};
  const auto b = static_cast<unsigned>(s.batch);
  const auto run = [&]<int D>(FlashAttentionBackwardDqKernel<D> dq_kernel, FlashAttentionBackwardDkDvKernel<D> dkdv_kernel) {
    launch(cuda.device(), {{flash_attention::tiles(s.seq, flash_attention::query_tile), static_cast<unsigned>(s.heads), b},
                           block, dq_kernel.shared_bytes},
           dq_kernel, dq.data(), delta, dout.data(), lse.data(), q.data(), k.data(), v.data(), s, scale);
    launch(cuda.device(), {{flash_attention::tiles(s.seq, flash_attention::key_tile), static_cast<unsigned>(s.kv_heads), b},
                           block, dkdv_kernel.shared_bytes},
           dkdv_kernel, dk.data(), dv.data(), dout.data(), lse.data(), static_cast<const float*>(delta),
           q.data(), k.data(), v.data(), s, scale);
  };
  if (s.dim == 64) run(FlashAttentionBackwardDqKernel<64>{}, FlashAttentionBackwardDkDvKernel<64>{});
  else run(FlashAttentionBackwardDqKernel<128>{}, FlashAttentionBackwardDkDvKernel<128>{});
}

}  // namespace NANOCHAT_CUDA_ABI
}  // namespace nanochat::cuda
