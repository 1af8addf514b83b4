#pragma once
// The fp32 GEMM (gemm_avx512.hpp) of a Linear, C = alpha * A W^T + beta * C, with the weight W
// [n, k] packed once ahead instead of on every call. At 32 decoding rows every Linear goes
// through gemm, and packing its whole weight matrix per call cost as much as the product
// (docs/benchmarks.md); a served model's weights do not change, so the packing is done when they
// are loaded.
//
// The layout is the one gemm_packed builds per call, kept for every block: for each block of nc
// columns, for each block of kc depth, the block's panels of nr columns (the blocking and the
// loop nest are avx512::blocking and gemm_cooperative's), so a product walks the same tiles in
// the same order and gives the same bits as gemm on the same operands. Float weights are packed
// as the fp32 kernel's float panels (avx512::pack). bf16 weights stay bf16, in the pair words of
// the bf16 kernels (bf16_pairs::pack), half the bytes a float panel reads; this kernel widens
// each pair in registers (exact) and multiplies in fp32, the products and order of the fp32
// kernel on widened panels.

#include "nanochat/backend/cpu/x86_target.hpp"

#if defined(NANOCHAT_X86_KERNELS)

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/backend/cpu/cpu_features.hpp"
#include "nanochat/backend/cpu/gemm_avx512.hpp"
#include "nanochat/backend/cpu/gemm_kernel.hpp"
#include "nanochat/backend/cpu/gemm_pack_bf16_pairs.hpp"
#include "nanochat/backend/cpu/gemm_threads.hpp"
#include "nanochat/core/bf16.hpp"
#include "nanochat/core/gemm_shape.hpp"
#include "nanochat/core/macros.hpp"

namespace nanochat::cpu::prepacked {

// The element of a packed weight: a float panel's float, or a word of two bf16 along k.
template <class W>
using panel_t = std::conditional_t<std::is_same_v<W, bf16>, std::uint32_t, float>;

// Panel elements per line for `depth` of k.
template <class W>
constexpr std::int64_t units(std::int64_t depth) {
  return std::is_same_v<W, bf16> ? (depth + 1) / 2 : depth;
}

// Elements of a packed [n, k] weight: every panel whole (columns rounded up to nr; a pair
// panel's odd depth padded to a whole word).
template <class W>
constexpr std::int64_t packed_elements(std::int64_t n, std::int64_t k) {
  return (n + avx512::nr - 1) / avx512::nr * avx512::nr * units<W>(k);
}

// Where the block of columns [j0, j0 + nc) and depth [k0, k0 + kc) starts: the blocks before j0
// are all nc wide and k deep, then this column block's depth blocks before k0 (kc is even, so a
// pair never straddles two blocks).
template <class W>
constexpr std::int64_t block_offset(std::int64_t n, std::int64_t k, std::int64_t j0, std::int64_t k0) {
  static_assert(avx512::kc % 2 == 0, "a block's depth must hold whole pairs");
  return j0 * units<W>(k) + avx512::blocking.block_columns(n - j0) * units<W>(k0);
}

// Whether this machine runs the prepacked product: the AVX-512 fp32 kernel is this process's
// (not OpenBLAS: no AVX-512, or NANOCHAT_CPU_GEMM=openblas), and for bf16 weights the CPU has
// AVX512_BF16, the target bf16_pairs::pack is compiled for.
template <class W>
bool runs() {
  if (gemm_kernels().fp32 != GemmKernel::avx512) return false;
  return std::is_same_v<W, float> || cpu_features().avx512_bf16_usable();
}

}  // namespace nanochat::cpu::prepacked

NANOCHAT_TARGET_BEGIN(NANOCHAT_TARGET_AVX512)

namespace nanochat::cpu::prepacked {

namespace detail {

// The fp32 kernel (avx512::detail::kernel) on a B panel of bf16 pair words: word q of column j
// holds k = 2q in its low half and 2q + 1 in its high half, each widened to float by a shift or a
// mask (exact), then the same fused multiply-adds in the same order. An odd depth's last word has
// a zero high half, which is not multiplied (0 * Inf would be NaN where the definition has none).
[[gnu::noinline]] inline void kernel_bf16_pairs(std::int64_t depth, const float* a, const std::uint32_t* b, float* c,
                                                std::int64_t ldc, std::int64_t rows, std::int64_t cols, float alpha,
                                                float beta) {
  using avx512::mr;
  using avx512::nr;
  __m512 acc[mr][2];
NANOCHAT_UNROLL
  for (int i = 0; i < mr; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  // acc += (next k of A's rows) x (b0, b1), the fp32 kernel's step.
  const auto step = [&](__m512 b0, __m512 b1) __attribute__((always_inline)) {
NANOCHAT_UNROLL
    for (int i = 0; i < mr; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
    a += mr;
  };
  // Masked forms: the unmasked intrinsics start from an undefined vector, which GCC 12 warns of.
  const auto low = [](__m512i w) { return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(avx512::all16, w, 16)); };
  const __m512i high_half = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  const auto high = [&high_half](__m512i w) {
    return _mm512_castsi512_ps(_mm512_maskz_and_epi32(avx512::all16, w, high_half));
  };
  for (std::int64_t q = 0; q < depth / 2; ++q) {
    const __m512i w0 = _mm512_load_si512(b), w1 = _mm512_load_si512(b + 16);
    step(low(w0), low(w1));
    step(high(w0), high(w1));
    b += nr;
  }
  if (depth % 2 != 0) step(low(_mm512_load_si512(b)), low(_mm512_load_si512(b + 16)));
  avx512::detail::store_tile(acc, c, ldc, rows, cols, alpha, beta);
}

}  // namespace detail

// Packs w [n, k] (rows contiguous, row stride ldw) into `out` (packed_elements<W>(n, k)
// elements, 64-byte aligned) with the existing packers, block by block.
template <class W>
void pack_weight(const W* w, std::int64_t ldw, std::int64_t n, std::int64_t k, panel_t<W>* out) {
  const std::int64_t nc = avx512::nc, kc = avx512::kc;
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (std::int64_t j0 = 0; j0 < n; j0 += nc)
    for (std::int64_t k0 = 0; k0 < k; k0 += kc) {
      const std::int64_t cols = std::min(nc, n - j0), depth = std::min(kc, k - k0);
      panel_t<W>* block = out + block_offset<W>(n, k, j0, k0);
      // A weight row is a column of op(B) = W^T, contiguous in k.
      if constexpr (std::is_same_v<W, bf16>)
        bf16_pairs::pack(w, ldw, /*along_k=*/true, j0, cols, k0, depth, units<W>(depth), avx512::nr, block);
      else
        avx512::detail::pack<false>(w, ldw, /*transposed=*/false, j0, cols, k0, depth, avx512::nr, block);
    }
}

// c [m, n] (row stride ldc) = alpha * a [m, k] (row stride lda) times the packed weight's W^T +
// beta * c, over the threads unless called inside a parallel region; with beta == 0, c is not
// read. The same bits as gemm(c, a, w, no, yes) on the AVX-512 fp32 kernel.
template <class W>
void gemm(const float* a, std::int64_t lda, const panel_t<W>* w, float* c, std::int64_t ldc, std::int64_t m,
          std::int64_t n, std::int64_t k, float alpha, float beta) {
  using avx512::blocking;
  GemmShape g{};
  g.batch = 1;
  g.m = m;
  g.n = n;
  g.k = k;
  g.lda = lda;
  g.ldb = k;
  g.ldc = ldc;
  g.trans_a = Transpose::no;
  g.trans_b = Transpose::yes;
  const int threads = gemm_threads(g);
  const std::int64_t depth_max = std::min(blocking.kc, k);
  // Each thread's A region starts on its own cache line.
  const std::int64_t a_size = (depth_max * blocking.chunk_rows(m) + 15) / 16 * 16;
  float* a_space = thread_scratch<float>(static_cast<std::size_t>(threads * a_size));
  const auto pack_b = [](std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t) noexcept {};
  const auto multiply = [&](int thread, std::int64_t row0, std::int64_t rows, std::int64_t j0, std::int64_t col0,
                            std::int64_t col1, std::int64_t k0, std::int64_t depth, float beta_k) noexcept {
    float* ap = a_space + thread * a_size;
    avx512::detail::pack<false>(a, lda, /*transposed=*/false, row0, rows, k0, depth, blocking.mr, ap);
    const panel_t<W>* block = w + block_offset<W>(n, k, j0, k0);
    const std::int64_t panel_units = units<W>(depth);
    for (std::int64_t ir = 0; ir < rows; ir += blocking.mr)
      for (std::int64_t jr = col0; jr < col1; jr += blocking.nr) {
        float* tile = c + (row0 + ir) * ldc + j0 + jr;
        const std::int64_t tile_rows = std::min(blocking.mr, rows - ir), tile_cols = std::min(blocking.nr, col1 - jr);
        if constexpr (std::is_same_v<W, bf16>)
          detail::kernel_bf16_pairs(depth, ap + ir * depth, block + jr * panel_units, tile, ldc, tile_rows, tile_cols,
                                    alpha, beta_k);
        else
          avx512::detail::kernel(depth, ap + ir * depth, block + jr * panel_units, tile, ldc, tile_rows, tile_cols,
                                 alpha, beta_k);
      }
  };
  gemm_cooperative(g, blocking, threads, beta, pack_b, multiply);
}

}  // namespace nanochat::cpu::prepacked

NANOCHAT_TARGET_END

#endif  // NANOCHAT_X86_KERNELS
