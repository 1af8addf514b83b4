#pragma once
// GEMM with GemmCompute::bf16 on AVX512_BF16 (Zen 4, Cooper Lake, Sapphire Rapids and later): C =
// alpha * op(A) op(B) + beta * C for float or bf16 operands, float C. The operands are rounded to
// bf16 while packing (float ones; bf16 ones are copied) in pairs along the depth
// (gemm_pack_bf16_pairs.hpp), and VDPBF16PS adds the two products of a pair into each fp32 lane:
// 32 multiply-adds per instruction where the fp32 kernel's FMA does 16.
//
// The blocking and the threads' sharing are the fp32 kernel's (gemm_avx512.hpp,
// gemm_threads.hpp), with words of two bf16 where it has floats: an mr x 32 tile of C in 2 * mr
// zmm accumulators, fed per pair of k by two zmm of B (32 columns' pairs) and one broadcast pair
// of each A row. An odd depth pads its last pair with zero; the options' triangles skip whole
// tiles of C and cut a tile's k-stretch to where op(A) is nonzero, widened to whole pairs (the
// extra k read zeros of op(A)). Denormal operands and results are flushed to zero by the
// instruction, which GemmCompute::bf16 allows.

#include "nanochat/backend/cpu/x86_target.hpp"

#if defined(NANOCHAT_X86_KERNELS)

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "nanochat/backend/cpu/avx512_vector.hpp"
#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/backend/cpu/gemm_avx512.hpp"
#include "nanochat/backend/cpu/gemm_pack_bf16_pairs.hpp"
#include "nanochat/backend/cpu/gemm_threads.hpp"
#include "nanochat/core/gemm_shape.hpp"
#include "nanochat/core/macros.hpp"

NANOCHAT_TARGET_BEGIN(NANOCHAT_TARGET_AVX512_BF16)

namespace nanochat::cpu::avx512_bf16 {

inline constexpr std::int64_t mr = 12;   // rows of C per kernel call: 24 accumulators + 3 registers
inline constexpr std::int64_t nr = 32;   // columns of C per kernel call: two zmm
inline constexpr std::int64_t kc = 512;  // depth of a packed block (256 pairs)
inline constexpr std::int64_t mc = 120;  // rows of a packed A block
inline constexpr std::int64_t nc = 512;  // columns of a packed B block (512 KB)
inline constexpr GemmBlocking blocking{mr, nr, kc, mc, nc};
static_assert(blocking.whole_panels(), "mc and nc must be whole numbers of panels");

namespace detail {

// C[0:rows, 0:cols] = alpha * (A panel x B panel) + beta * C over `pairs` words of depth, rows <=
// mr, cols <= nr; the panels are zero-padded, so the tile is computed whole. With beta == 0, C is
// not read. Never inlined, as the fp32 kernel (register allocation).
[[gnu::noinline]] inline void kernel(std::int64_t pairs, const std::uint32_t* a, const std::uint32_t* b, float* c,
                                     std::int64_t ldc, std::int64_t rows, std::int64_t cols, float alpha, float beta) {
  __m512 acc[mr][2];
NANOCHAT_UNROLL
  for (int i = 0; i < mr; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (std::int64_t q = 0; q < pairs; ++q) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(b), b1 = (__m512bh)_mm512_load_si512(b + 16);
NANOCHAT_UNROLL
    for (int i = 0; i < mr; ++i) {
      // Not _mm512_set1_epi32: Clang 16 crashes (segfaults) compiling that broadcast into VDPBF16PS.
      const __m512bh ai = (__m512bh)_mm512_maskz_broadcastd_epi32(avx512::all16, _mm_cvtsi32_si128(static_cast<int>(a[i])));
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
    }
    a += mr;
    b += nr;
  }
  avx512::detail::store_tile(acc, c, ldc, rows, cols, alpha, beta);
}

// C = alpha op(A) op(B) + beta C over the threads, as avx512::detail::gemm_packed, in pairs.
template <class TA, class TB>
void gemm_packed(const GemmShape& g, const TA* a, const TB* b, float* c, float alpha, float beta,
                 GemmOptions options) {
  const bool ta = g.trans_a == Transpose::yes, tb = g.trans_b == Transpose::yes;
  const int threads = gemm_threads(g);
  const auto pairs_of = [](std::int64_t depth) { return (depth + 1) / 2; };
  const std::int64_t pairs_max = pairs_of(std::min(kc, g.k));
  const std::int64_t b_size = pairs_max * blocking.block_columns(g.n);
  // Each thread's A region starts on its own cache line.
  const std::int64_t a_size = (pairs_max * blocking.chunk_rows(g.m) + 15) / 16 * 16;
  std::uint32_t* bp = thread_scratch<std::uint32_t>(static_cast<std::size_t>(b_size + threads * a_size));
  const auto pack_b = [&](std::int64_t col0, std::int64_t cols, std::int64_t j0, std::int64_t k0,
                          std::int64_t depth) noexcept {
    // The lines are op(B)'s columns, contiguous in k exactly when B is transposed.
    const std::int64_t pairs = pairs_of(depth);
    bf16_pairs::pack(b, g.ldb, tb, j0 + col0, cols, k0, depth, pairs, nr, bp + col0 * pairs);
  };
  const auto multiply = [&](int thread, std::int64_t row0, std::int64_t rows, std::int64_t j0, std::int64_t col0,
                            std::int64_t col1, std::int64_t k0, std::int64_t depth, float beta_k) noexcept {
    const std::int64_t pairs = pairs_of(depth);
    std::uint32_t* ap = bp + b_size + thread * a_size;
    bf16_pairs::pack(a, g.lda, !ta, row0, rows, k0, depth, pairs, mr, ap);
    for (std::int64_t ir = 0; ir < rows; ir += mr) {
      const std::int64_t row = row0 + ir;
      for (std::int64_t jr = col0; jr < col1; jr += nr) {
        const std::int64_t col = j0 + jr;
        if (options.c == Triangle::upper && row > col + nr - 1) continue;
        if (options.c == Triangle::lower && col > row + mr - 1) break;
        // The stretch [k_lo, k_hi) of this block where the tile's rows of op(A) are nonzero, as
        // whole pairs [q_lo, q_hi) (k0 is even).
        std::int64_t k_lo = k0, k_hi = k0 + depth;
        if (options.a == Triangle::lower) k_hi = std::min(k_hi, row + mr);
        if (options.a == Triangle::upper) k_lo = std::max(k_lo, row);
        const std::int64_t q_lo = std::min((k_lo - k0) / 2, pairs);
        std::int64_t q_hi = std::clamp<std::int64_t>((k_hi - k0 + 1) / 2, q_lo, pairs);
        if (k_hi <= k_lo) {
          if (beta_k == 1.0f) continue;
          q_hi = q_lo;  // nothing to add, but C = beta * C still
        }
        kernel(q_hi - q_lo, ap + ir * pairs + q_lo * mr, bp + jr * pairs + q_lo * nr, c + row * g.ldc + col, g.ldc,
               std::min(mr, rows - ir), std::min(nr, col1 - jr), alpha, beta_k);
      }
    }
  };
  gemm_cooperative(g, blocking, threads, beta, pack_b, multiply);
}

}  // namespace detail

// One (batch entry of a) GEMM computing in bf16, over the threads unless called inside a parallel
// region. Only where the CPU has AVX512_BF16 (cpu_features.hpp).
template <class TA, class TB>
void gemm(const GemmShape& g, const TA* a, const TB* b, float* c, float alpha, float beta, GemmOptions options) {
  detail::gemm_packed(g, a, b, c, alpha, beta, options);
}

}  // namespace nanochat::cpu::avx512_bf16

NANOCHAT_TARGET_END

#endif  // NANOCHAT_X86_KERNELS
