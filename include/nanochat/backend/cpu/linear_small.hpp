#pragma once
// A Linear layer on the Cpu backend: out[n, o] = beta * out[n, o] + sum_k in[n, k] w[o, k], with
// w [out, in] as PyTorch stores it, in float or bf16 (inference weights: widened to float as they
// are read, products and sums in fp32, so bf16 weights give the fp32 result of the rounded
// weights).
//
// For up to 16 rows (decode: one token per sequence) gemm packs the whole weight matrix on every
// call, which costs more than the product. The streaming kernel here reads each weight row from
// memory once and uses it for every input row, so batch-1 decode runs at the speed of reading the
// weights. With AVX-512 it keeps a tile of input rows x weight rows in zmm accumulators (each x
// load feeds several weight rows, each weight load every input row of the tile), so batch-8
// decode runs near the FMA peak instead of the load ports'; the lanes are summed at the end of
// each tile by a shuffle tree, 16 sums at a time.

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include <immintrin.h>
#define NANOCHAT_LINEAR_AVX512 1
#endif

#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/backend/cpu/gemm.hpp"
#include "nanochat/core/bf16.hpp"
#include "nanochat/core/macros.hpp"

namespace nanochat::cpu {

// Rows up to which linear_forward takes the weight-streaming path instead of gemm.
inline constexpr std::int64_t linear_small_rows = 16;

namespace detail {

inline void store_scaled(float& dst, float sum, float beta) { dst = beta == 0.0f ? sum : beta * dst + sum; }

// The streaming product in plain C++ (any target): one weight row at a time for 1-3 input rows,
// four input rows by four weight rows for more. x [rows, k], w [outs, k], y [rows, outs].
template <class W>
void linear_rows_portable(const float* x, const W* w, float* y, std::int64_t rows, std::int64_t k,
                          std::int64_t outs, float beta) {
  const auto one = [&](std::int64_t o) {
    const W* wr = w + o * k;
    for (std::int64_t n = 0; n < rows; ++n) {
      const float* xr = x + n * k;
      float s = 0.0f;
#pragma omp simd reduction(+ : s)
      for (std::int64_t i = 0; i < k; ++i) s += static_cast<float>(wr[i]) * xr[i];
      store_scaled(y[n * outs + o], s, beta);
    }
  };
  if (rows < 4) {
#pragma omp parallel for schedule(static)
    for (std::int64_t o = 0; o < outs; ++o) one(o);
    return;
  }
  const std::int64_t blocks = outs / 4;
#pragma omp parallel for schedule(static)
  for (std::int64_t blk = 0; blk < blocks; ++blk) {
    const W* w0 = w + blk * 4 * k;
    const W* w1 = w0 + k;
    const W* w2 = w1 + k;
    const W* w3 = w2 + k;
    std::int64_t n = 0;
    for (; n + 4 <= rows; n += 4) {  // 8 loads feed 16 products
      const float* x0 = x + n * k;
      const float* x1 = x0 + k;
      const float* x2 = x1 + k;
      const float* x3 = x2 + k;
      float a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
      float a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
#pragma omp simd reduction(+ : a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33)
      for (std::int64_t i = 0; i < k; ++i) {
        const float v0 = static_cast<float>(w0[i]), v1 = static_cast<float>(w1[i]);
        const float v2 = static_cast<float>(w2[i]), v3 = static_cast<float>(w3[i]);
        const float u0 = x0[i], u1 = x1[i], u2 = x2[i], u3 = x3[i];
        a00 += v0 * u0; a01 += v1 * u0; a02 += v2 * u0; a03 += v3 * u0;
        a10 += v0 * u1; a11 += v1 * u1; a12 += v2 * u1; a13 += v3 * u1;
        a20 += v0 * u2; a21 += v1 * u2; a22 += v2 * u2; a23 += v3 * u2;
        a30 += v0 * u3; a31 += v1 * u3; a32 += v2 * u3; a33 += v3 * u3;
      }
      const float sums[4][4] = {{a00, a01, a02, a03}, {a10, a11, a12, a13}, {a20, a21, a22, a23}, {a30, a31, a32, a33}};
      for (std::int64_t r = 0; r < 4; ++r)
        for (std::int64_t j = 0; j < 4; ++j) store_scaled(y[(n + r) * outs + blk * 4 + j], sums[r][j], beta);
    }
    for (; n < rows; ++n) {
      const float* xr = x + n * k;
      float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
      for (std::int64_t i = 0; i < k; ++i) {
        const float xi = xr[i];
        s0 += static_cast<float>(w0[i]) * xi;
        s1 += static_cast<float>(w1[i]) * xi;
        s2 += static_cast<float>(w2[i]) * xi;
        s3 += static_cast<float>(w3[i]) * xi;
      }
      const float sums[4] = {s0, s1, s2, s3};
      for (std::int64_t j = 0; j < 4; ++j) store_scaled(y[n * outs + blk * 4 + j], sums[j], beta);
    }
  }
  for (std::int64_t o = blocks * 4; o < outs; ++o) one(o);
}

#ifdef NANOCHAT_LINEAR_AVX512

using avx512::all16;
using avx512::all8;
using avx512::first_lanes;
using avx512::load16;

// Lane i of the result is the sum of the 16 lanes of v[i]: pairs of vectors are interleaved and
// added within 128-bit lanes, then the 128-bit lanes across vectors (45 instructions for 16 sums,
// against about 8 per vector for a separate reduction each).
[[gnu::always_inline]] inline __m512 lane_sums16(const __m512* v) {
  __m512 t[8], u[4];
  NANOCHAT_UNROLL
  for (int p = 0; p < 8; ++p)  // lane L: v[2p] partials at positions 0 and 2, v[2p+1] at 1 and 3
    t[p] = _mm512_add_ps(_mm512_maskz_unpacklo_ps(all16, v[2 * p], v[2 * p + 1]),
                         _mm512_maskz_unpackhi_ps(all16, v[2 * p], v[2 * p + 1]));
  NANOCHAT_UNROLL
  for (int q = 0; q < 4; ++q) {  // lane L, position j: v[4q + j] summed over lane L
    const __m512d a = _mm512_castps_pd(t[2 * q]), b = _mm512_castps_pd(t[2 * q + 1]);
    u[q] = _mm512_add_ps(_mm512_castpd_ps(_mm512_maskz_unpacklo_pd(all8, a, b)),
                         _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(all8, a, b)));
  }
  const auto fold = [](__m512 a, __m512 b) {  // [a.L0+a.L1, a.L2+a.L3, b.L0+b.L1, b.L2+b.L3]
    return _mm512_add_ps(_mm512_maskz_shuffle_f32x4(all16, a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_maskz_shuffle_f32x4(all16, a, b, _MM_SHUFFLE(3, 1, 3, 1)));
  };
  return fold(fold(u[0], u[1]), fold(u[2], u[3]));
}

// R input rows (x, row stride k) against O weight rows (w, row stride k), R * O <= 16, into
// y[r * outs + o] for o < valid (beta as in linear_forward). Every loop over registers, here and
// in lane_sums16, is unrolled: one that is not leaves the accumulators in memory, stored at
// every FMA. The weights one tile ahead are
// prefetched: the hardware prefetcher stops at 4 KB pages, and at 8 rows a tile computes long
// enough that its cache misses would stall the FMAs.
template <int R, int O, class W>
[[gnu::always_inline]] inline void linear_tile(const float* x, const W* w, std::int64_t k, float* y,
                                               std::int64_t outs, float beta, std::int64_t valid) {
  static_assert(R * O <= 16, "linear_tile: at most 16 accumulators");
  __m512 acc[16];
  NANOCHAT_UNROLL
  for (int j = 0; j < 16; ++j) acc[j] = _mm512_setzero_ps();
  const auto step = [&](std::int64_t i, __mmask16 lanes) __attribute__((always_inline)) {
    __m512 wv[O];
    NANOCHAT_UNROLL
    for (int o = 0; o < O; ++o) wv[o] = load16(w + o * k + i, lanes);
    NANOCHAT_UNROLL
    for (int r = 0; r < R; ++r) {
      __m512 xv = load16(x + r * k + i, lanes);
      // Keeps x in a register: folded into each FMA as a memory operand it would be loaded O
      // times, and the loads, not the FMAs, would bound the loop.
      __asm__("" : "+v"(xv));
      NANOCHAT_UNROLL
      for (int o = 0; o < O; ++o) acc[r * O + o] = _mm512_fmadd_ps(xv, wv[o], acc[r * O + o]);
    }
  };
  const std::int64_t ahead = O * k;
  std::int64_t i = 0;
  for (; i + 16 <= k; i += 16) {
    NANOCHAT_UNROLL
    for (int o = 0; o < O; ++o) _mm_prefetch(reinterpret_cast<const char*>(w + o * k + i + ahead), _MM_HINT_T0);
    step(i, all16);
  }
  if (i < k) step(i, first_lanes(k - i));
  alignas(64) float sums[16];
  _mm512_store_ps(sums, lane_sums16(acc));
  if (valid == O && beta == 0.0f) {
    NANOCHAT_UNROLL
    for (int r = 0; r < R; ++r)
      NANOCHAT_UNROLL
      for (int o = 0; o < O; ++o) y[r * outs + o] = sums[r * O + o];
  } else {
    for (int r = 0; r < R; ++r)
      for (std::int64_t o = 0; o < valid; ++o) store_scaled(y[r * outs + o], sums[r * O + o], beta);
  }
}

// Tiles of up to MaxR input rows by O weight rows; the threads split the weight rows, so each
// reads its share of the matrix once. A last block with fewer than O weight rows starts O rows
// before the end and stores only its new outputs (no extra instantiations); outs < O reads
// rows past the matrix, so it runs the portable kernel instead.
template <int O, int MaxR, class W>
void linear_rows_tiled(const float* x, const W* w, float* y, std::int64_t rows, std::int64_t k,
                       std::int64_t outs, float beta) {
  const std::int64_t blocks = (outs + O - 1) / O;
#pragma omp parallel for schedule(static)
  for (std::int64_t blk = 0; blk < blocks; ++blk) {
    const std::int64_t o0 = std::min(blk * O, outs - O), skip = blk * O - o0;
    const W* wb = w + o0 * k;
    for (std::int64_t n = 0; n < rows; n += MaxR) {
      const std::int64_t r = std::min<std::int64_t>(MaxR, rows - n);
      // Writes go to y at (n, o0 + skip); the tile's first `skip` outputs were written by the
      // previous block, so they are computed again but not stored.
      const auto tile = [&]<int Rs>() {
        if (skip == 0) {
          linear_tile<Rs, O>(x + n * k, wb, k, y + n * outs + o0, outs, beta, O);
        } else {
          alignas(64) float part[MaxR * O];
          linear_tile<Rs, O>(x + n * k, wb, k, part, O, 0.0f, O);
          for (std::int64_t rr = 0; rr < Rs; ++rr)
            for (std::int64_t j = skip; j < O; ++j) store_scaled(y[(n + rr) * outs + o0 + j], part[rr * O + j], beta);
        }
      };
      if (r == MaxR) {
        tile.template operator()<MaxR>();
      } else {
        [&]<int... Rs>(std::integer_sequence<int, Rs...>) {
          ((r == Rs + 1 ? tile.template operator()<Rs + 1>() : void()), ...);
        }(std::make_integer_sequence<int, MaxR - 1>{});
      }
    }
  }
}

// Tiles of 16 accumulators: 8 input rows x 2 weight rows for 8 or more rows (10 loads feed 16
// FMAs), 4 x 4 for 4-7, and more weight rows below, where more loads in flight matter more
// than reuse.
template <class W>
void linear_rows_avx512(const float* x, const W* w, float* y, std::int64_t rows, std::int64_t k,
                        std::int64_t outs, float beta) {
  if (outs < 16) {
    linear_rows_portable(x, w, y, rows, k, outs, beta);
  } else if (rows >= 8) {
    linear_rows_tiled<2, 8>(x, w, y, rows, k, outs, beta);
  } else if (rows >= 4) {
    linear_rows_tiled<4, 4>(x, w, y, rows, k, outs, beta);
  } else if (rows == 3) {
    linear_rows_tiled<5, 3>(x, w, y, rows, k, outs, beta);
  } else if (rows == 2) {
    linear_rows_tiled<8, 2>(x, w, y, rows, k, outs, beta);
  } else {
    linear_rows_tiled<16, 1>(x, w, y, rows, k, outs, beta);
  }
}

#endif  // NANOCHAT_LINEAR_AVX512

template <class W>
void linear_rows(const float* x, const W* w, float* y, std::int64_t rows, std::int64_t k, std::int64_t outs,
                 float beta) {
#ifdef NANOCHAT_LINEAR_AVX512
  linear_rows_avx512(x, w, y, rows, k, outs, beta);
#else
  linear_rows_portable(x, w, y, rows, k, outs, beta);
#endif
}

// out = beta * out + in w^T: the streaming kernel for up to linear_small_rows contiguous rows,
// else many_rows(), a GEMM of the same product (gemm, or one on the weight packed ahead:
// linear_packed.hpp), called after the shapes are checked.
template <class W, class ManyRows>
void linear_forward_impl(CpuView<float> out, CpuView<const float> in, CpuView<const W> w, float beta,
                         const ManyRows& many_rows) {
  NANOCHAT_CHECK(in.rank() == 2 && w.rank() == 2 && out.rank() == 2, "linear_forward: out ", out.shape(),
                 ", in ", in.shape(), " and w ", w.shape(), " must be matrices");
  const std::int64_t rows = in.size(0), k = in.size(1), outs = w.size(0);
  NANOCHAT_CHECK(w.size(1) == k, "linear_forward: w ", w.shape(), " does not take inputs ", in.shape());
  check_shape(out.shape(), Shape{rows, outs}, "linear_forward: out");
  if (rows > linear_small_rows || !in.is_contiguous() || !w.is_contiguous() || !out.is_contiguous()) {
    many_rows();
    return;
  }
  linear_rows(in.data(), w.data(), out.data(), rows, k, outs, beta);
}

template <class W>
void linear_forward_impl(Cpu& cpu, CpuView<float> out, CpuView<const float> in, CpuView<const W> w, float beta) {
  linear_forward_impl(out, in, w, beta, [&] { gemm(cpu, out, in, w, Transpose::no, Transpose::yes, 1.0f, beta); });
}

}  // namespace detail

inline void linear_forward(Cpu& cpu, CpuView<float> out, CpuView<const float> in, CpuView<const float> w,
                           float beta = 0.0f) {
  detail::linear_forward_impl(cpu, out, in, w, beta);
}

// bf16 weights (inference), float activations and result.
inline void linear_forward(Cpu& cpu, CpuView<float> out, CpuView<const float> in, CpuView<const bf16> w,
                           float beta = 0.0f) {
  detail::linear_forward_impl(cpu, out, in, w, beta);
}

}  // namespace nanochat::cpu
