#pragma once
// Causal self-attention forward on the Cuda backend, FlashAttention-2's way: one block per
// (64-query tile, head, batch row), 4 warps of 16 queries; the block walks the 64-key tiles up to
// its diagonal with the query tile and one K and V tile in shared memory (bf16), keeps each row's
// running max and sum (online softmax, fp32) and its output in registers, and saves each row's
// log-sum-exp for the backward. Products on tensor cores (mma.sync bf16, fp32 accumulation): q k^T
// and p v, p rounded to bf16 as FlashAttention-2 does. GQA: query head h reads KV head
// h / group (AttentionShape::group(): heads / kv_heads). Head dim 64 or 128.

#include <algorithm>
#include <cstdint>
#include <math.h>

#include "nanochat/backend/cuda/attention_tiles.hpp"
#include "nanochat/backend/cuda/cuda.hpp"

namespace nanochat::cuda {

template <int D>
struct FlashAttentionForwardKernel {
  static constexpr const char* name = "flash_attention_forward";
  static constexpr std::size_t shared_bytes =
      attention_tiles::tile_bytes<D>(flash_attention::query_tile + 2 * flash_attention::key_tile);

  NANOCHAT_HOST_DEVICE void operator()(float* out, float* lse, const float* q, const float* k, const float* v,
                                       AttentionShape s, float scale) const {
    using namespace attention_tiles;
    using simt::MmaAccumulator;
    constexpr int Br = flash_attention::query_tile, Bc = flash_attention::key_tile;
    const int seq = static_cast<int>(s.seq);
    // The last query tiles, which walk the most key tiles, are issued first (FlashAttention-2's
    // order): the short ones then fill the last wave instead of a long one running alone.
    const int q0 = static_cast<int>(simt::grid_dim().x - 1 - simt::block_idx().x) * Br;
    const std::int64_t h = simt::block_idx().y, b = simt::block_idx().z;
    const std::int64_t kv_head = h / s.group();
    bf16* q_tile = simt::dynamic_shared<bf16>();
    bf16* k_tile = q_tile + Br * tile_stride<D>;
    bf16* v_tile = k_tile + Bc * tile_stride<D>;
    const std::int64_t q_stride = s.heads * D, kv_stride = s.kv_heads * D;
    load_tile<D>(q_tile, q + ((b * s.seq + q0) * s.heads + h) * D, q_stride, Br, std::min(Br, seq - q0));

    const int row0 = static_cast<int>(simt::warp_id()) * warp_rows;
    const int row[2] = {q0 + row0 + element_row(0), q0 + row0 + element_row(2)};
    float max[2] = {-INFINITY, -INFINITY}, sum[2] = {0.0f, 0.0f};  // sum: this lane's part of the row
    MmaAccumulator o[D / 8] = {};
    const int keys_end = std::min(seq, q0 + Br);  // causal: no key past the tile's last query
    for (int k0 = 0; k0 < keys_end; k0 += Bc) {
      simt::sync_threads();  // the previous K and V tiles are consumed (and the Q tile written)
      const std::int64_t kv_offset = ((b * s.seq + k0) * s.kv_heads + kv_head) * D;
      load_tile<D>(k_tile, k + kv_offset, kv_stride, Bc, std::min(Bc, seq - k0));
      load_tile<D>(v_tile, v + kv_offset, kv_stride, Bc, std::min(Bc, seq - k0));
      simt::sync_threads();
      MmaAccumulator p[Bc / 8];
      scores<D, Bc>(p, q_tile, row0, k_tile);
      float tile_max[2] = {max[0], max[1]};
      for (int j = 0; j < Bc / 8; ++j)
        for (unsigned i = 0; i < 4; ++i) {
          const int col = k0 + 8 * j + element_col(i), r = static_cast<int>(i / 2);
          const float x = col <= row[r] && col < seq ? p[j].c[i] * scale : -INFINITY;
          p[j].c[i] = x;
          tile_max[r] = ::fmaxf(tile_max[r], x);
        }
      for (int r = 0; r < 2; ++r) {
        // Key 0 is in every row's first tile, so the running max is finite from then on.
        const float new_max = quad_reduce(tile_max[r], simt::Max{});
        const float rescale = ::expf(max[r] - new_max);
        sum[r] *= rescale;
        for (auto& acc : o) {
          acc.c[2 * r] *= rescale;
          acc.c[2 * r + 1] *= rescale;
        }
        max[r] = new_max;
      }
      for (int j = 0; j < Bc / 8; ++j)
        for (unsigned i = 0; i < 4; ++i) {
          const float e = ::expf(p[j].c[i] - max[i / 2]);
          p[j].c[i] = e;
          sum[i / 2] += e;
        }
      accumulate<D, Bc>(o, p, v_tile);
    }
    for (int r = 0; r < 2; ++r) sum[r] = quad_reduce(sum[r], simt::Sum{});
    for (int j = 0; j < D / 8; ++j)
      for (unsigned i = 0; i < 4; ++i) {
        const int r = static_cast<int>(i / 2);
        if (row[r] < seq) out[((b * s.seq + row[r]) * s.heads + h) * D + 8 * j + element_col(i)] = o[j].c[i] / sum[r];
      }
    if (simt::lane_id() % 4 == 0)
      for (int r = 0; r < 2; ++r)
        if (row[r] < seq) lse[(b * s.heads + h) * s.seq + row[r]] = max[r] + ::logf(sum[r]);
  }
};

inline namespace NANOCHAT_CUDA_ABI {

// out = softmax(scale q k^T + causal mask) v and each row's log-sum-exp, as the Cpu backend's
// attention_forward; q, k, v are read in fp32 and rounded to bf16 for the products, which is the
// only compute this op has (GemmCompute::bf16).
inline void attention_forward(Cuda& cuda, CudaView<float> out, CudaView<float> lse, CudaView<const float> q,
                              CudaView<const float> k, CudaView<const float> v, float scale,
                              GemmCompute compute = GemmCompute::bf16) {
  const AttentionShape s = attention_shape(q, k, v, lse, "attention_forward");
  check_attention_output(out, q);
  flash_attention::check_supported(s, compute, "attention_forward");
  if (s.batch == 0 || s.seq == 0 || s.heads == 0) return;
  const Dim3 grid{flash_attention::tiles(s.seq, flash_attention::query_tile), static_cast<unsigned>(s.heads),
                  static_cast<unsigned>(s.batch)};
  const auto run = [&]<int D>(FlashAttentionForwardKernel<D> kernel) {
    launch(cuda.device(), {grid, {attention_tiles::block_threads, 1, 1}, kernel.shared_bytes}, kernel, out.data(),
           lse.data(), q.data(), k.data(), v.data(), s, scale);
  };
  if (s.dim == 64) run(FlashAttentionForwardKernel<64>{});
  else run(FlashAttentionForwardKernel<128>{});
}

}  // namespace NANOCHAT_CUDA_ABI
}  // namespace nanochat::cuda
