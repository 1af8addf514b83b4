#pragma once
// fp32 GEMM with AVX-512, the Cpu backend's own: C = alpha * op(A) op(B) + beta * C, for float
// or bf16 operands (bf16 is widened while packing, which is exact), float C.
//
// The structure is BLIS's: op(B) is packed in blocks of kc x nc into panels of nr columns,
// op(A) in blocks of mc x kc into panels of mr rows, and a register-blocked kernel multiplies one
// A panel by one B panel into an mr x nr tile of C held in 2 * mr zmm registers. Packing makes
// every transpose case the same kernel and keeps its loads sequential. The multiply loop takes
// where B's panels come from: packed here per call, or a served model's weights packed once
// ahead (gemm_prepacked.hpp; bf16 as pair words the kernel widens). The kernel walks one A
// panel (24 KB, in L1) across the B block (1 MB, in L2), so C is written a row panel at a time,
// sequentially along its rows. The depth is deep because every block of depth is one more pass
// over C. Measured on a d8 layer's GEMMs against the first layout (depth 256, B panels in L1,
// C tiles walked down the columns): kc 512 ran 5-6 % faster, then this walk order 3-7 % more.
//
// Why not OpenBLAS: Debian's 0.3.21 does not recognise recent Intel CPUs and silently falls back
// to SSE3 kernels there (4-8x slower), and a kernel of our own can read bf16 operands directly.
// The threads share the packed B block and claim rows of C (gemm_threads.hpp); a call made inside
// a parallel region runs on its thread alone. Packing buffers come from the calling thread's
// scratch and are reused, so steady-state calls allocate nothing. Compiled for AVX-512 in every
// x86-64 build (x86_target.hpp); gemm.hpp calls it where the CPU has AVX-512.

#include <cstdint>

#include "nanochat/backend/cpu/gemm_threads.hpp"
#include "nanochat/backend/cpu/x86_target.hpp"

// The blocking needs no vector target: the weights packed once (gemm_prepacked.hpp) are sized by
// it in every build.
namespace nanochat::cpu::avx512 {

inline constexpr std::int64_t mr = 12;   // rows of C per kernel call: 24 accumulators + 3 registers
inline constexpr std::int64_t nr = 32;   // columns of C per kernel call: two zmm
inline constexpr std::int64_t kc = 512;  // depth of a packed block
inline constexpr std::int64_t mc = 120;  // rows of a packed A block (240 KB, in L2)
inline constexpr std::int64_t nc = 512;  // columns of a packed B block (1 MB, in L2)
inline constexpr GemmBlocking blocking{mr, nr, kc, mc, nc};
static_assert(blocking.whole_panels(), "mc and nc must be whole numbers of panels");

}  // namespace nanochat::cpu::avx512

#if defined(NANOCHAT_X86_KERNELS)

#include <immintrin.h>

#include <algorithm>
#include <type_traits>

#include "nanochat/backend/cpu/avx512_vector.hpp"
#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/core/bf16.hpp"
#include "nanochat/core/gemm_shape.hpp"
#include "nanochat/core/macros.hpp"

NANOCHAT_TARGET_BEGIN(NANOCHAT_TARGET_AVX512)

namespace nanochat::cpu::avx512 {

namespace detail {

// load16, with float elements rounded to bf16 when the product computes in bf16 (bf16 elements
// are already).
template <bool Round, class T>
__m512 load16_for(const T* p, __mmask16 lanes) {
  if constexpr (Round && std::is_same_v<T, float>) return round_to_bf16(load16(p, lanes));
  else return load16(p, lanes);
}

// op(X) for a row-major X: element (r, k) of op(X) is x[r * ld + k], or x[k * ld + r] when
// transposed. Packs rows [r0, r0 + rows) x depth [k0, k0 + depth) into panels of `width` rows
// (a multiple of 4, at most 32), element (r, k) of a panel at k * width + r; rows past the end
// are zero. Round: elements rounded to bf16 (GemmCompute::bf16).
template <bool Round, class T>
void pack(const T* x, std::int64_t ld, bool transposed, std::int64_t r0, std::int64_t rows, std::int64_t k0,
          std::int64_t depth, std::int64_t width, float* out) {
  for (std::int64_t p = 0; p < rows; p += width) {
    const std::int64_t w = std::min(width, rows - p);
    float* panel = out + p * depth;
    for (std::int64_t g = 0; g < width; g += 16) {  // 16 panel rows at a time
      const __mmask16 store_lanes = first_lanes(width - g), valid = first_lanes(w - g);
      if (transposed) {
        // Each k holds the panel's rows contiguously: a straight (widening) copy per k.
        const T* src = x + k0 * ld + r0 + p + g;
        for (std::int64_t k = 0; k < depth; ++k)
          _mm512_mask_storeu_ps(panel + k * width + g, store_lanes, load16_for<Round>(src + k * ld, valid));
        continue;
      }
      // Each row is contiguous in k: 16 rows x 16 k at a time, transposed in registers.
      for (std::int64_t k = 0; k < depth; k += 16) {
        const __mmask16 ks = first_lanes(depth - k);
        __m512 r[16];
        for (std::int64_t i = 0; i < 16; ++i)
          r[i] = g + i < w ? load16_for<Round>(x + (r0 + p + g + i) * ld + k0 + k, ks) : _mm512_setzero_ps();
        transpose16(r);
        for (std::int64_t j = 0; j < std::min<std::int64_t>(16, depth - k); ++j)
          _mm512_mask_storeu_ps(panel + (k + j) * width + g, store_lanes, r[j]);
      }
    }
  }
}

// C[0:rows, 0:cols] = alpha * acc + beta * C for a tile of Rows x 32 accumulators (the kernels'
// epilogue); with beta == 0, C is not read.
template <int Rows>
NANOCHAT_FORCEINLINE void store_tile(const __m512 (&acc)[Rows][2], float* c, std::int64_t ldc, std::int64_t rows,
                                     std::int64_t cols, float alpha, float beta) {
  const __mmask16 m0 = first_lanes(cols), m1 = first_lanes(cols - 16);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
NANOCHAT_UNROLL
  for (int i = 0; i < Rows; ++i) {
    if (i >= rows) break;
    float* ci = c + i * ldc;
    __m512 r0 = _mm512_mul_ps(va, acc[i][0]), r1 = _mm512_mul_ps(va, acc[i][1]);
    if (beta != 0.0f) {
      r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), r0);
      r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), r1);
    }
    _mm512_mask_storeu_ps(ci, m0, r0);
    _mm512_mask_storeu_ps(ci + 16, m1, r1);
  }
}

// The B panels the kernel reads: float panels (element (k, j) at k * nr + j), or the pair words of
// bf16_pairs::pack (word q of column j at q * nr + j, holding k = 2q in its low half and 2q + 1
// in its high half), which a served model's bf16 weights are packed into once
// (gemm_prepacked.hpp): half the bytes, widened in registers (exact) to the same floats.
template <class PanelWord>
inline constexpr std::int64_t k_per_word = std::is_same_v<PanelWord, std::uint32_t> ? 2 : 1;

// Panel words per column for `depth` of k (an odd depth's last pair padded with a zero half).
template <class PanelWord>
constexpr std::int64_t panel_words(std::int64_t depth) {
  return (depth + k_per_word<PanelWord> - 1) / k_per_word<PanelWord>;
}

// 16 columns' words of one line of a B panel, and the floats of its k number `half` (0, or 1 of a
// pair word: a shift or a mask puts the bf16 in a float's high half).
NANOCHAT_FORCEINLINE __m512 load_b(const float* b) { return _mm512_load_ps(b); }
NANOCHAT_FORCEINLINE __m512i load_b(const std::uint32_t* b) { return _mm512_load_si512(b); }
NANOCHAT_FORCEINLINE __m512 widen_b(__m512 b, int) { return b; }
NANOCHAT_FORCEINLINE __m512 widen_b(__m512i b, int half) {
  // Masked forms: the unmasked intrinsics start from an undefined vector, which GCC 12 warns of.
  if (half == 0) return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(all16, b, 16));
  return _mm512_castsi512_ps(_mm512_maskz_and_epi32(all16, b, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

// acc += (one k of the A panel's rows) x (b0, b1): the kernel's multiply-adds for one k.
NANOCHAT_FORCEINLINE void multiply_add(__m512 (&acc)[mr][2], const float* a, __m512 b0, __m512 b1) {
NANOCHAT_UNROLL
  for (int i = 0; i < mr; ++i) {
    const __m512 ai = _mm512_set1_ps(a[i]);
    acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
    acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
  }
}

// C[0:rows, 0:cols] = alpha * (A panel x B panel) + beta * C, rows <= mr, cols <= nr, over
// `depth` k. The panels are zero-padded, so the tile is always computed whole; only its valid part
// is stored. With beta == 0, C is not read. Pair words are multiplied k by k in the order of a
// float panel, so both give the same bits; an odd depth's zero last half is not multiplied
// (0 * Inf would be NaN where the definition has none). Never inlined: inlined into the
// multiply's loops, GCC 12 ran out of vector registers and kept B's two vectors on the stack
// (half the speed).
template <class PanelWord>
[[gnu::noinline]] inline void kernel(std::int64_t depth, const float* a, const PanelWord* b, float* c,
                                     std::int64_t ldc, std::int64_t rows, std::int64_t cols, float alpha,
                                     float beta) {
  constexpr int per_word = static_cast<int>(k_per_word<PanelWord>);
  __m512 acc[mr][2];
NANOCHAT_UNROLL
  for (int i = 0; i < mr; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (std::int64_t q = 0; q < depth / per_word; ++q) {
    const auto w0 = load_b(b), w1 = load_b(b + 16);
NANOCHAT_UNROLL
    for (int half = 0; half < per_word; ++half) {
      multiply_add(acc, a, widen_b(w0, half), widen_b(w1, half));
      a += mr;
    }
    b += nr;
  }
  if constexpr (per_word > 1) {
    if (depth % per_word != 0) multiply_add(acc, a, widen_b(load_b(b), 0), widen_b(load_b(b + 16), 0));
  }
  store_tile(acc, c, ldc, rows, cols, alpha, beta);
}

// C = alpha op(A) op(B) + beta C over the threads (gemm_threads.hpp), each thread's rows of op(A)
// packed in chunks of up to mc and walked one panel at a time across a block of B's panels. Where
// those come from is the caller's: pack_b(space, col0, cols, j0, k0, depth) packs its share of a
// block into `space` (b_space floats of the scratch, shared by the threads) before the block is
// multiplied, and b_block(space, j0, k0) points at the block's panels (PanelWord elements, nr
// columns each). A structure lets whole kernel tiles be skipped (outside the wanted triangle of C)
// and stretches of k be cut (where a triangular op(A) is zero); a tile whose k-stretch is empty
// still applies beta on the first block. The triangles of op(A) apply to float panels only (a cut
// must not split a pair word).
template <bool Round, class TA, class PackB, class BlockOf>
void multiply_blocks(const GemmShape& g, const TA* a, float* c, float alpha, float beta, GemmOptions options,
                     std::int64_t b_space, const PackB& pack_b, const BlockOf& b_block) {
  using PanelWord = std::remove_cvref_t<decltype(*b_block(static_cast<float*>(nullptr), 0, 0))>;
  static_assert(k_per_word<PanelWord> == 1 || !Round, "pair words hold bf16 already");
  const bool ta = g.trans_a == Transpose::yes;
  const int threads = gemm_threads(g);
  const std::int64_t depth_max = std::min(kc, g.k);
  // Each thread's A region starts on its own cache line.
  const std::int64_t a_size = (depth_max * blocking.chunk_rows(g.m) + 15) / 16 * 16;
  float* space = thread_scratch<float>(static_cast<std::size_t>(b_space + threads * a_size));
  const auto pack_b_block = [&](std::int64_t col0, std::int64_t cols, std::int64_t j0, std::int64_t k0,
                                std::int64_t depth) noexcept { pack_b(space, col0, cols, j0, k0, depth); };
  const auto multiply = [&](int thread, std::int64_t row0, std::int64_t rows, std::int64_t j0, std::int64_t col0,
                            std::int64_t col1, std::int64_t k0, std::int64_t depth, float beta_k) noexcept {
    float* ap = space + b_space + thread * a_size;
    pack<Round>(a, g.lda, ta, row0, rows, k0, depth, mr, ap);
    const PanelWord* bb = b_block(space, j0, k0);
    const std::int64_t words = panel_words<PanelWord>(depth);
    for (std::int64_t ir = 0; ir < rows; ir += mr) {
      const std::int64_t row = row0 + ir;
      for (std::int64_t jr = col0; jr < col1; jr += nr) {
        const std::int64_t col = j0 + jr;
        if (options.c == Triangle::upper && row > col + nr - 1) continue;
        if (options.c == Triangle::lower && col > row + mr - 1) break;
        // The stretch [k_lo, k_hi) of this block where the tile's rows of op(A) are nonzero.
        std::int64_t k_lo = k0, k_hi = k0 + depth;
        if (options.a == Triangle::lower) k_hi = std::min(k_hi, row + mr);
        if (options.a == Triangle::upper) k_lo = std::max(k_lo, row);
        if (k_hi <= k_lo) {
          if (beta_k == 1.0f) continue;
          k_hi = k_lo;  // nothing to add, but C = beta * C still
        }
        const std::int64_t skip = std::min(k_lo - k0, depth);
        kernel(k_hi - k_lo, ap + ir * depth + skip * mr, bb + jr * words + skip / k_per_word<PanelWord> * nr,
               c + row * g.ldc + col, g.ldc, std::min(mr, rows - ir), std::min(nr, col1 - jr), alpha, beta_k);
      }
    }
  };
  gemm_cooperative(g, blocking, threads, beta, pack_b_block, multiply);
}

// multiply_blocks with op(B) packed block by block on every call, into float panels.
template <bool Round, class TA, class TB>
void gemm_packed(const GemmShape& g, const TA* a, const TB* b, float* c, float alpha, float beta,
                 GemmOptions options) {
  const bool tb = g.trans_b == Transpose::yes;
  const auto pack_b = [&](float* space, std::int64_t col0, std::int64_t cols, std::int64_t j0, std::int64_t k0,
                          std::int64_t depth) noexcept {
    // op(B) column j, depth k is b[k * ldb + j] untransposed: as an "X" of pack(), its rows are
    // op(B)'s columns, transposed exactly when B is not.
    pack<Round>(b, g.ldb, !tb, j0 + col0, cols, k0, depth, nr, space + col0 * depth);
  };
  const auto b_block = [](float* space, std::int64_t, std::int64_t) noexcept -> const float* { return space; };
  multiply_blocks<Round>(g, a, c, alpha, beta, options, std::min(kc, g.k) * blocking.block_columns(g.n), pack_b,
                         b_block);
}

}  // namespace detail

// One (batch entry of a) GEMM, over the threads unless called inside a parallel region.
// GemmCompute::bf16 rounds the operands while packing; the kernel is the same.
template <class TA, class TB>
void gemm(const GemmShape& g, const TA* a, const TB* b, float* c, float alpha, float beta, GemmOptions options = {}) {
  if (options.compute == GemmCompute::bf16) detail::gemm_packed<true>(g, a, b, c, alpha, beta, options);
  else detail::gemm_packed<false>(g, a, b, c, alpha, beta, options);
}

}  // namespace nanochat::cpu::avx512

NANOCHAT_TARGET_END

#endif  // NANOCHAT_X86_KERNELS
