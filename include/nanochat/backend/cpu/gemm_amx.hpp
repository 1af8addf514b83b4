#pragma once
// GEMM with GemmCompute::bf16 on Intel AMX (Sapphire Rapids and later): C = alpha * op(A) op(B)
// + beta * C with float or bf16 A and B, float C; float operands are rounded to bf16 while
// packing and the tile unit sums their products in fp32 (TDPBF16PS, 1024 multiply-adds per
// instruction). On this project's 2-core Xeon it is 2-3x the fp32 kernel (docs/benchmarks.md).
//
// The blocking follows the fp32 kernel's (gemm_avx512.hpp), with AMX's shapes: a 32 x 32 tile of
// C is four 16 x 16 fp32 tile registers, fed by two 16-row A tiles (rows of 32 bf16 along k) and
// two B tiles in the VNNI layout the instruction wants (each 32-bit word a pair of k for one
// column). op(A) is packed as 32-row panels of bf16 rows; op(B) as 32-column panels of pair words.
// A whole tile with alpha 1 and beta 0 or 1 is loaded and stored by the tile unit in C itself;
// every other alpha, beta and ragged edge goes through a scratch tile and a small epilogue.
//
// Linux gives a process the tile registers only after it asks (arch_prctl); cpu_features.hpp asks
// once, where the CPU has AMX. Compiled for AMX in every x86-64 Linux build (x86_target.hpp);
// gemm.hpp calls it only where the CPU has it and Linux granted it. Elsewhere GemmCompute::bf16
// runs on AVX512_BF16 (gemm_avx512_bf16.hpp) or the fp32 kernel on rounded operands.

#include "nanochat/backend/cpu/x86_target.hpp"

#if defined(NANOCHAT_X86_KERNELS) && defined(__linux__)
#define NANOCHAT_CPU_AMX 1

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "nanochat/backend/cpu/avx512_vector.hpp"
#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/backend/cpu/cpu_features.hpp"
#include "nanochat/backend/cpu/gemm_avx512.hpp"
#include "nanochat/backend/cpu/gemm_threads.hpp"
#include "nanochat/core/bf16.hpp"
#include "nanochat/core/error.hpp"
#include "nanochat/core/gemm_shape.hpp"

NANOCHAT_TARGET_BEGIN(NANOCHAT_TARGET_AMX)

namespace nanochat::cpu::amx {

inline constexpr std::int64_t tile = 32;   // rows and columns of C per kernel call
inline constexpr std::int64_t kc = 512;    // depth of a packed block (A panel 32 KB, B panel 32 KB)
inline constexpr std::int64_t mc = 256;    // rows of a packed A block
inline constexpr std::int64_t nc = 1024;   // columns of a packed B block
inline constexpr GemmBlocking blocking{tile, tile, kc, mc, nc};
static_assert(blocking.whole_panels(), "mc and nc must be whole numbers of tiles");

namespace detail {

using avx512::all16;
using avx512::first_lanes;
using avx512::load16;
using avx512::transpose16;

// Eight 16-row x 64-byte tiles: 0-3 accumulate C, 4-5 hold A, 6-7 hold B.
struct alignas(64) TileConfig {
  std::uint8_t palette = 1;
  std::uint8_t start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t bytes_per_row[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  std::uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};

// A constant in static storage: built on the stack, GCC 12 may drop the stores that fill it in
// before ldtilecfg reads it (it did in a small test), leaving every tile unconfigured and the
// first tile instruction faulting.
inline constexpr TileConfig tile_config{};

inline void load_tile_config() { _tile_loadconfig(&tile_config); }

// 32 floats as 32 bf16 (nearest, ties to even), lo first.
inline __m512i to_bf16(__m512 lo, __m512 hi) { return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)); }

// Rows [r0, r0 + rows) x depth [k0, k0 + depth) of op(A) (element (i, k) at a[i * lda + k], or
// a[k * lda + i] when transposed) as panels of 32 rows of kpad bf16 each, zero-padded. A float A
// is rounded to bf16; a bf16 A is widened and rounded back, which gives its own bits.
template <class TA>
void pack_a(const TA* a, std::int64_t lda, bool transposed, std::int64_t r0, std::int64_t rows,
                   std::int64_t k0, std::int64_t depth, std::int64_t kpad, std::uint16_t* out) {
  for (std::int64_t p = 0; p * tile < rows; ++p) {
    std::uint16_t* panel = out + p * tile * kpad;
    for (std::int64_t g = 0; g < tile; g += 16) {
      const std::int64_t first = p * tile + g, valid = std::clamp<std::int64_t>(rows - first, 0, 16);
      if (!transposed) {
        for (std::int64_t i = 0; i < 16; ++i) {
          std::uint16_t* dst = panel + (g + i) * kpad;
          if (i >= valid) {
            std::memset(dst, 0, static_cast<std::size_t>(kpad) * 2);
            continue;
          }
          const TA* src = a + (r0 + first + i) * lda + k0;
          std::int64_t k = 0;
          for (; k + 32 <= depth; k += 32)
            _mm512_store_si512(dst + k, to_bf16(load16(src + k, all16), load16(src + k + 16, all16)));
          for (; k < kpad; k += 32)
            _mm512_store_si512(dst + k, to_bf16(load16(src + k, first_lanes(depth - k)),
                                                load16(src + k + 16, first_lanes(depth - k - 16))));
        }
        continue;
      }
      // Transposed: 16 k x 16 rows at a time, transposed in registers.
      const __mmask16 lanes = first_lanes(valid);
      for (std::int64_t k = 0; k < kpad; k += 16) {
        __m512 r[16];
        for (std::int64_t j = 0; j < 16; ++j)
          r[j] = k + j < depth ? load16(a + (k0 + k + j) * lda + r0 + first, lanes) : _mm512_setzero_ps();
        transpose16(r);
        for (std::int64_t i = 0; i < 16; ++i)
          _mm256_store_si256(reinterpret_cast<__m256i*>(panel + (g + i) * kpad + k),
                             reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(r[i])));
      }
    }
  }
}

// Columns [c0, c0 + cols) x depth [k0, k0 + depth) of op(B) (element (k, n) at b[k * ldb + n], or
// b[n * ldb + k] when transposed) as VNNI panels of 32 columns: row q of a panel holds, for each
// column, the word (op(B)(2q, n), op(B)(2q + 1, n)); kpad / 2 rows, zero-padded.
template <class TB>
void pack_b(const TB* b, std::int64_t ldb, bool transposed, std::int64_t c0, std::int64_t cols, std::int64_t k0,
            std::int64_t depth, std::int64_t kpad, std::uint16_t* out) {
  // Interleaves two rows of 16 bf16 (the low and high halves of a vector) into 16 pair words.
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
                                              22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  for (std::int64_t p = 0; p * tile < cols; ++p) {
    std::uint16_t* panel = out + p * tile * kpad;
    for (std::int64_t g = 0; g < tile; g += 16) {
      const std::int64_t first = p * tile + g, valid = std::clamp<std::int64_t>(cols - first, 0, 16);
      if (transposed) {
        // Column n is row n of b: its consecutive pairs of k are already its words; 16 columns x
        // 16 words are transposed as 32-bit lanes.
        for (std::int64_t k = 0; k < kpad; k += 32) {
          __m512 words[16];
          for (std::int64_t n = 0; n < 16; ++n) {
            const TB* src = b + (c0 + first + n) * ldb + k0 + k;
            if (n >= valid) {
              words[n] = _mm512_setzero_ps();
            } else if constexpr (std::is_same_v<TB, float>) {
              words[n] = _mm512_castsi512_ps(to_bf16(_mm512_maskz_loadu_ps(first_lanes(depth - k), src),
                                                     _mm512_maskz_loadu_ps(first_lanes(depth - k - 16), src + 16)));
            } else {
              const std::int64_t left = std::clamp<std::int64_t>(depth - k, 0, 32);
              const __mmask32 m = left == 32 ? ~__mmask32(0) : (__mmask32(1) << left) - 1;
              words[n] = _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(m, src));
            }
          }
          transpose16(words);
          for (std::int64_t q = 0; q < 16; ++q)
            _mm512_store_ps(reinterpret_cast<float*>(panel + (k / 2 + q) * 2 * tile + 2 * g), words[q]);
        }
        continue;
      }
      // Rows 2q and 2q + 1 of b, interleaved.
      const __mmask16 lanes = first_lanes(valid);
      for (std::int64_t q = 0; q < kpad / 2; ++q) {
        const std::int64_t k = 2 * q;
        const TB* row0 = b + (k0 + k) * ldb + c0 + first;
        __m512i pair;
        if constexpr (std::is_same_v<TB, float>) {
          pair = to_bf16(k < depth ? _mm512_maskz_loadu_ps(lanes, row0) : _mm512_setzero_ps(),
                         k + 1 < depth ? _mm512_maskz_loadu_ps(lanes, row0 + ldb) : _mm512_setzero_ps());
        } else {
          const __m256i lo = k < depth ? _mm256_maskz_loadu_epi16(lanes, row0) : _mm256_setzero_si256();
          const __m256i hi = k + 1 < depth ? _mm256_maskz_loadu_epi16(lanes, row0 + ldb) : _mm256_setzero_si256();
          pair = _mm512_maskz_inserti64x4(avx512::all8, _mm512_maskz_inserti64x4(avx512::all8, _mm512_setzero_si512(), lo, 0), hi, 1);
        }
        _mm512_store_si512(panel + q * 2 * tile + 2 * g, _mm512_permutexvar_epi16(interleave, pair));
      }
    }
  }
}

// out (a 32 x 32 fp32 tile, `stride` bytes between rows) = the product of an A panel (rows of
// kpad bf16) and a B panel over `depth` (a multiple of 32), plus out's previous value when
// `accumulate`.
inline void kernel(std::int64_t depth, const std::uint16_t* a, std::int64_t kpad, const std::uint16_t* b, float* out,
                   std::int64_t stride, bool accumulate) {
  // GCC 12's tile loads are asm statements that do not declare reading memory: without this
  // barrier the stores that packed the panels (and C) could be moved past them or dropped.
  asm volatile("" ::: "memory");
  const std::int64_t lower = 16 * stride / 4;  // the second 16 rows, in floats
  if (accumulate) {
    _tile_loadd(0, out, stride);
    _tile_loadd(1, out + 16, stride);
    _tile_loadd(2, out + lower, stride);
    _tile_loadd(3, out + lower + 16, stride);
  } else {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  const std::int64_t a_stride = kpad * 2;  // bytes between the rows of an A panel
  for (std::int64_t k = 0; k < depth; k += 32) {
    _tile_loadd(4, a + k, a_stride);
    _tile_loadd(5, a + 16 * kpad + k, a_stride);
    _tile_loadd(6, b + k * tile, 4 * tile);  // 16 pair rows, columns 0-15
    _tile_loadd(7, b + k * tile + tile, 4 * tile);  // columns 16-31
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, out, stride);
  _tile_stored(1, out + 16, stride);
  _tile_stored(2, out + lower, stride);
  _tile_stored(3, out + lower + 16, stride);
}

// C = alpha op(A) op(B) + beta C over the threads (gemm_threads.hpp), each thread's rows of op(A)
// packed in chunks of up to mc and multiplied tile column by tile column of the shared B block. The
// options' triangles skip whole tiles of C and cut the k-stretch of a tile to where op(A) is
// nonzero, in the tile unit's steps of 32 (the extra k read zeros); a tile whose stretch is empty
// still applies beta.
template <class TA, class TB>
void gemm_packed(const GemmShape& g, const TA* a, const TB* b, float* c, float alpha, float beta,
                 GemmOptions options) {
  const bool ta = g.trans_a == Transpose::yes, tb = g.trans_b == Transpose::yes;
  const int threads = gemm_threads(g);
  // Depth padded to the tile unit's 32 bf16 per row.
  const auto kpad_of = [](std::int64_t depth) { return (depth + 31) / 32 * 32; };
  const std::int64_t kpad_max = kpad_of(std::min(kc, g.k));
  const std::int64_t b_size = kpad_max * blocking.block_columns(g.n), a_size = kpad_max * blocking.chunk_rows(g.m);
  std::uint16_t* bp = thread_scratch<std::uint16_t>(static_cast<std::size_t>(b_size + threads * a_size));
  const auto pack_b_part = [&](std::int64_t col0, std::int64_t cols, std::int64_t j0, std::int64_t k0,
                               std::int64_t depth) noexcept {
    const std::int64_t kpad = kpad_of(depth);
    pack_b(b, g.ldb, tb, j0 + col0, cols, k0, depth, kpad, bp + col0 * kpad);
  };
  const auto multiply = [&](int thread, std::int64_t row0, std::int64_t rows, std::int64_t j0, std::int64_t col0,
                            std::int64_t col1, std::int64_t k0, std::int64_t depth, float beta_k) noexcept {
    const std::int64_t kpad = kpad_of(depth);
    std::uint16_t* ap = bp + b_size + thread * a_size;
    pack_a(a, g.lda, ta, row0, rows, k0, depth, kpad, ap);
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta_k);
    alignas(64) float product[tile * tile];
    load_tile_config();
    for (std::int64_t jr = col0; jr < col1; jr += tile) {
      const std::int64_t cols = std::min(tile, col1 - jr);
      const __mmask16 left = first_lanes(cols), right = first_lanes(cols - 16);
      for (std::int64_t ir = 0; ir < rows; ir += tile) {
        const std::int64_t row = row0 + ir, col = j0 + jr;
        if (options.c == Triangle::upper && row > col + tile - 1) break;
        if (options.c == Triangle::lower && col > row + tile - 1) continue;
        std::int64_t k_lo = 0, k_hi = kpad;  // within the block, multiples of 32
        if (options.a == Triangle::lower) k_hi = std::clamp<std::int64_t>(row + tile - k0, 0, kpad);
        if (options.a == Triangle::upper) k_lo = std::clamp<std::int64_t>(row - k0, 0, kpad);
        if (k_hi <= k_lo) {
          if (beta_k == 1.0f) continue;
          k_hi = k_lo;  // nothing to add, but C = beta * C still
        }
        const std::uint16_t* at = ap + ir * kpad + k_lo;
        const std::uint16_t* bt = bp + jr * kpad + k_lo * tile;
        float* ct = c + row * g.ldc + col;
        // A whole tile of C with C = product + {0, 1} * C: the tile unit loads and stores C itself.
        if (alpha == 1.0f && (beta_k == 0.0f || beta_k == 1.0f) && cols == tile && rows - ir >= tile) {
          kernel(k_hi - k_lo, at, kpad, bt, ct, g.ldc * 4, beta_k == 1.0f);
          continue;
        }
        kernel(k_hi - k_lo, at, kpad, bt, product, 4 * tile, false);
        // C = alpha * product + beta_k * C over the tile's valid rows and columns.
        for (std::int64_t i = 0; i < std::min(tile, rows - ir); ++i) {
          float* ci = ct + i * g.ldc;
          __m512 r0 = _mm512_mul_ps(va, _mm512_load_ps(product + i * tile));
          __m512 r1 = _mm512_mul_ps(va, _mm512_load_ps(product + i * tile + 16));
          if (beta_k != 0.0f) {
            r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(left, ci), r0);
            r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(right, ci + 16), r1);
          }
          _mm512_mask_storeu_ps(ci, left, r0);
          _mm512_mask_storeu_ps(ci + 16, right, r1);
        }
      }
    }
    _tile_release();
  };
  gemm_cooperative(g, blocking, threads, beta, pack_b_part, multiply);
}

}  // namespace detail
}  // namespace nanochat::cpu::amx

NANOCHAT_TARGET_END

namespace nanochat::cpu::amx {

// One (batch entry of a) GEMM computing in bf16, over the threads unless called inside a parallel
// region. Without the tile state (cpu_features().amx()) the tile instructions would fault, so
// that is an error.
template <class TA, class TB>
void gemm(const GemmShape& g, const TA* a, const TB* b, float* c, float alpha, float beta, GemmOptions options) {
  NANOCHAT_CHECK(cpu_features().amx(), "amx::gemm: this CPU has no AMX or Linux did not grant this process the tile state");
  detail::gemm_packed(g, a, b, c, alpha, beta, options);
}

}  // namespace nanochat::cpu::amx

#endif  // AMX
