#pragma once
// Packing for the bf16 GEMM kernels (gemm_avx512_bf16.hpp, gemm_amx.hpp): their multiply
// instructions (VDPBF16PS, TDPBF16PS) take bf16 operands in pairs along the depth, each 32-bit
// word holding elements k and k + 1 (k even, the lower half first), and sum the two products into
// one fp32 lane. An operand is packed as panels of `width` lines (rows of op(A), or columns of
// op(B)): word q of line l at panel[q * width + l], so one load gives a pair of k for `width`
// lines, or a broadcast gives one line's pair. Float elements are rounded to bf16 (nearest, ties
// to even) on the way; bf16 elements are copied.

#include "nanochat/backend/cpu/x86_target.hpp"

#if defined(NANOCHAT_X86_KERNELS)

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "nanochat/backend/cpu/avx512_vector.hpp"
#include "nanochat/core/bf16.hpp"

NANOCHAT_TARGET_BEGIN(NANOCHAT_TARGET_AVX512_BF16)

namespace nanochat::cpu::bf16_pairs {

using avx512::first_lanes;

// 32 floats as 32 bf16 (nearest, ties to even), lo first.
inline __m512i to_bf16(__m512 lo, __m512 hi) { return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)); }

// Lines [line0, line0 + lines) x depth [k0, k0 + depth) of an operand as panels of `width` lines
// (width at most 32) with `pairs` words per line (at least (depth + 1) / 2; the words past depth,
// and the lines past the end of the last panel, are zero). Element (line, k) is x[line * ld + k]
// when `along_k` (each line contiguous in k), else x[k * ld + line].
template <class T>
void pack(const T* x, std::int64_t ld, bool along_k, std::int64_t line0, std::int64_t lines, std::int64_t k0,
          std::int64_t depth, std::int64_t pairs, std::int64_t width, std::uint32_t* out) {
  // Interleaves two rows of 16 bf16 (the low and high halves of a vector) into 16 pair words.
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
                                              22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  for (std::int64_t p = 0; p < lines; p += width) {
    std::uint32_t* panel = out + p * pairs;
    for (std::int64_t g = 0; g < width; g += 16) {
      const std::int64_t first = p + g, valid = std::clamp<std::int64_t>(std::min(width - g, lines - first), 0, 16);
      const __mmask16 store = first_lanes(width - g), lanes = first_lanes(valid);
      if (along_k) {
        // 16 lines x 16 words, read along each line, transposed as 32-bit lanes.
        for (std::int64_t q0 = 0; q0 < pairs; q0 += 16) {
          const std::int64_t k = 2 * q0;
          __m512 words[16];
          for (std::int64_t i = 0; i < 16; ++i) {
            words[i] = _mm512_setzero_ps();
            if (i >= valid || k >= depth) continue;
            const T* src = x + (line0 + first + i) * ld + k0 + k;
            if constexpr (std::is_same_v<T, float>) {
              words[i] = _mm512_castsi512_ps(to_bf16(_mm512_maskz_loadu_ps(first_lanes(depth - k), src),
                                                     _mm512_maskz_loadu_ps(first_lanes(depth - k - 16), src + 16)));
            } else {
              const std::int64_t left = std::min<std::int64_t>(depth - k, 32);
              const __mmask32 m = left == 32 ? ~__mmask32(0) : (__mmask32(1) << left) - 1;
              words[i] = _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(m, src));
            }
          }
          avx512::transpose16(words);
          for (std::int64_t q = 0; q < std::min<std::int64_t>(16, pairs - q0); ++q)
            _mm512_mask_storeu_ps(panel + (q0 + q) * width + g, store, words[q]);
        }
        continue;
      }
      // Each k holds the lines contiguously: rows 2q and 2q + 1, interleaved.
      for (std::int64_t q = 0; q < pairs; ++q) {
        const std::int64_t k = 2 * q;
        const T* row = x + (k0 + k) * ld + line0 + first;
        __m512i pair = _mm512_setzero_si512();
        if (valid > 0 && k < depth) {
          const bool second = k + 1 < depth;
          if constexpr (std::is_same_v<T, float>) {
            pair = to_bf16(_mm512_maskz_loadu_ps(lanes, row),
                           second ? _mm512_maskz_loadu_ps(lanes, row + ld) : _mm512_setzero_ps());
          } else {
            const __m256i lo = _mm256_maskz_loadu_epi16(lanes, row);
            const __m256i hi = second ? _mm256_maskz_loadu_epi16(lanes, row + ld) : _mm256_setzero_si256();
            pair = _mm512_maskz_inserti64x4(avx512::all8, _mm512_maskz_inserti64x4(avx512::all8, pair, lo, 0), hi, 1);
          }
          pair = _mm512_permutexvar_epi16(interleave, pair);
        }
        _mm512_mask_storeu_epi32(panel + q * width + g, store, pair);
      }
    }
  }
}

}  // namespace nanochat::cpu::bf16_pairs

NANOCHAT_TARGET_END

#endif  // NANOCHAT_X86_KERNELS
