#pragma once
// What the FlashAttention-2 kernels (attention_forward.hpp, attention_backward.hpp) share: their
// tile sizes and the shapes they handle, and the warp-level pieces: bf16 tiles of a head's rows in shared memory, mma fragments read from
// them, and the two products every pass is made of. A block has 4 warps; each warp owns 16 rows
// (one mma's M) of the block's row tile and multiplies them against a whole shared tile.
//   scores:     S[16, N]  = X[rows, D] Y[N, D]^T  (q k^T, dy v^T, k q^T, v dy^T)
//   accumulate: O[16, D] += P[16, N] Y[N, D]     (p v, ds k, p^T dy, ds^T q), with P taken from
//               the scores' accumulators: mma's C layout of two adjacent n8 tiles is its A
//               layout of one k16 step, so P never goes through shared memory.

#include <cstddef>
#include <cstdint>
#include <limits>

#include "nanochat/backend/cuda/simt.hpp"
#include "nanochat/backend/cuda/simt_mma.hpp"
#include "nanochat/core/attention_shape.hpp"
#include "nanochat/core/bf16.hpp"
#include "nanochat/core/error.hpp"
#include "nanochat/core/gemm_shape.hpp"

namespace nanochat::cuda {

namespace flash_attention {

inline constexpr int query_tile = 64;  // forward and dq: queries per block (4 warps x 16)
inline constexpr int key_tile = 64;    // forward and dq: keys per step; dk/dv: keys per block
inline constexpr int gradient_query_tile = 32;  // dk/dv: queries per step (registers: dk and dv are 2 x D / 2 floats)

// Kernels index rows with int, and the last tile's rows run up to query_tile past T.
inline constexpr std::int64_t max_seq = std::numeric_limits<int>::max() - query_tile;

// What the kernels handle; the rest is refused up front with the reason. Heads and batch rows
// are the grid's y and z.
inline void check_supported(const AttentionShape& s, GemmCompute compute, const char* op) {
  NANOCHAT_CHECK(compute == GemmCompute::bf16, op,
                 " on the Cuda backend multiplies on bf16 tensor cores; fp32 products are not available");
  NANOCHAT_CHECK(s.dim == 64 || s.dim == 128, op, " on the Cuda backend: head dim ", s.dim,
                 " is not supported (64 or 128)");
  NANOCHAT_CHECK(s.seq <= max_seq, op, ": sequence length ", s.seq, " is out of range (at most ", max_seq, ")");
  NANOCHAT_CHECK(s.heads <= simt::max_grid_yz && s.batch <= simt::max_grid_yz, op, ": ", s.heads, " heads x ",
                 s.batch, " batch rows exceed the grid (at most ", simt::max_grid_yz, " of each)");
}

inline unsigned tiles(std::int64_t seq, int tile) { return static_cast<unsigned>((seq + tile - 1) / tile); }

}  // namespace flash_attention

namespace attention_tiles {

inline constexpr int warps = 4;
inline constexpr int block_threads = warps * simt::warp_size;
inline constexpr int warp_rows = 16;
// A shared row holds D + 8 bf16: consecutive rows start 16 bytes further along the banks, so the
// 8 rows of 16 bytes each phase of an ldmatrix reads fall in distinct banks.
template <int D>
inline constexpr int tile_stride = D + 8;

template <int D>
constexpr std::size_t tile_bytes(int rows) {
  return static_cast<std::size_t>(rows) * tile_stride<D> * sizeof(bf16);
}

// tile[r][c] = bf16(rows[r * row_stride + c]) for the first `valid` of `tile_rows` rows, zero for
// the rest (a partial tile past T), by all threads of the block.
template <int D>
NANOCHAT_HOST_DEVICE inline void load_tile(bf16* tile, const float* rows, std::int64_t row_stride, int tile_rows,
                                           int valid) {
  for (int i = static_cast<int>(simt::linear_thread()); i < tile_rows * D; i += block_threads) {
    const int r = i / D, c = i % D;
    tile[r * tile_stride<D> + c] = r < valid ? bf16(rows[r * row_stride + c]) : bf16(0.0f);
  }
}

// The fragments come through ldmatrix (simt_mma.hpp), every lane pointing at one 16-byte row
// piece of the tile; x4 loads four 8x8 matrices, which here are one A or two B fragments.

// A fragment: rows [row0, row0 + 16) and columns [k0, k0 + 16) of a tile. Lanes 0-15 point at
// the 16 rows at k0, lanes 16-31 at the same rows at k0 + 8: matrices (rows 0-7, k0), (8-15, k0),
// (0-7, k0 + 8), (8-15, k0 + 8) are A's registers 0 to 3.
template <int D>
NANOCHAT_HOST_DEVICE inline simt::MmaA load_a(const bf16* tile, int row0, int k0) {
  const int lane = static_cast<int>(simt::lane_id());
  simt::MmaA a;
  simt::load_matrices<4>(a.reg, tile + (row0 + lane % 16) * tile_stride<D> + k0 + 8 * (lane / 16));
  return a;
}

// B fragments of a transposed tile, B[k][n] = tile[n0 + n][k0 + k] (the tile's rows are B's
// columns), for the two 8-column blocks at n0 and n0 + 8: lane l points at row n0 + 8 (l / 16) +
// l % 8, column k0 + 8 ((l / 8) % 2), so the matrices are (n0, k0), (n0, k0 + 8), (n0 + 8, k0),
// (n0 + 8, k0 + 8).
template <int D>
NANOCHAT_HOST_DEVICE inline void load_b_transposed(simt::MmaB& first, simt::MmaB& second, const bf16* tile, int n0,
                                                   int k0) {
  const int lane = static_cast<int>(simt::lane_id());
  std::uint32_t regs[4];
  simt::load_matrices<4>(regs, tile + (n0 + 8 * (lane / 16) + lane % 8) * tile_stride<D> + k0 + 8 * ((lane / 8) % 2));
  first = {{regs[0], regs[1]}};
  second = {{regs[2], regs[3]}};
}

// B fragments of a tile as it stands, B[k][n] = tile[k0 + k][n0 + n], for the two 8-column blocks
// at n0 and n0 + 8: the same matrices read transposed (ldmatrix .trans), lane l pointing at row
// k0 + 8 ((l / 8) % 2) + l % 8, column n0 + 8 (l / 16).
template <int D>
NANOCHAT_HOST_DEVICE inline void load_b(simt::MmaB& first, simt::MmaB& second, const bf16* tile, int k0, int n0) {
  const int lane = static_cast<int>(simt::lane_id());
  std::uint32_t regs[4];
  simt::load_matrices<4, true>(regs, tile + (k0 + 8 * ((lane / 8) % 2) + lane % 8) * tile_stride<D> + n0 + 8 * (lane / 16));
  first = {{regs[0], regs[1]}};
  second = {{regs[2], regs[3]}};
}

// s[j] = the 16 x 8 block j of X[row0 .. row0 + 16) Y[0 .. N)^T, fp32.
template <int D, int N>
NANOCHAT_HOST_DEVICE inline void scores(simt::MmaAccumulator (&s)[N / 8], const bf16* x, int row0, const bf16* y) {
  static_assert(D % 16 == 0 && N % 16 == 0, "whole mma steps and pairs of 8-column blocks");
  for (auto& acc : s) acc = {};
  for (int k0 = 0; k0 < D; k0 += 16) {
    const simt::MmaA a = load_a<D>(x, row0, k0);
    for (int j = 0; j < N / 8; j += 2) {
      simt::MmaB first, second;
      load_b_transposed<D>(first, second, y, 8 * j, k0);
      simt::mma_bf16_m16n8k16(s[j], a, first, s[j]);
      simt::mma_bf16_m16n8k16(s[j + 1], a, second, s[j + 1]);
    }
  }
}

// o += P Y[0 .. N) with P [16, N] in the scores' layout, rounded to bf16 for the tensor cores.
template <int D, int N>
NANOCHAT_HOST_DEVICE inline void accumulate(simt::MmaAccumulator (&o)[D / 8], const simt::MmaAccumulator (&p)[N / 8],
                                            const bf16* y) {
  static_assert(D % 16 == 0 && N % 16 == 0, "whole mma steps and pairs of 8-column blocks");
  const auto pair = [](float low, float high) { return simt::pack_bf16x2(bf16(low), bf16(high)); };
  for (int kk = 0; kk < N / 16; ++kk) {
    const simt::MmaAccumulator &left = p[2 * kk], &right = p[2 * kk + 1];
    const simt::MmaA a{{pair(left.c[0], left.c[1]), pair(left.c[2], left.c[3]), pair(right.c[0], right.c[1]),
                        pair(right.c[2], right.c[3])}};
    for (int j = 0; j < D / 8; j += 2) {
      simt::MmaB first, second;
      load_b<D>(first, second, y, 16 * kk, 8 * j);
      simt::mma_bf16_m16n8k16(o[j], a, first, o[j]);
      simt::mma_bf16_m16n8k16(o[j + 1], a, second, o[j + 1]);
    }
  }
}

// Reductions over the 4 lanes that hold one row of an accumulator (lanes 4g .. 4g + 3).
template <class Op>
NANOCHAT_HOST_DEVICE inline float quad_reduce(float value, Op op) {
  value = op(value, simt::shfl_xor(value, 1));
  return op(value, simt::shfl_xor(value, 2));
}

// Which rows and columns of its 16 x 8 block accumulator element i of this lane is.
NANOCHAT_HOST_DEVICE inline int element_row(unsigned i) {
  return static_cast<int>(simt::mma_layout::c_row(simt::lane_id(), i));
}
NANOCHAT_HOST_DEVICE inline int element_col(unsigned i) {
  return static_cast<int>(simt::mma_layout::c_col(simt::lane_id(), i));
}

}  // namespace attention_tiles
}  // namespace nanochat::cuda
