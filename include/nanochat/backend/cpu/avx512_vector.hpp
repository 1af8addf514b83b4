#pragma once
// AVX-512 building blocks shared by the Cpu backend's kernels (GEMM, decode, AMX packing): lane
// masks, loads that widen bf16 to float, rounding to bf16 in registers, and a 16 x 16 transpose.
// Compiled for AVX-512 in every x86-64 build (x86_target.hpp): the GEMM kernels choose at run
// time; code compiled with -march=...avx512 may call them directly.

#include "nanochat/backend/cpu/x86_target.hpp"

#if defined(NANOCHAT_X86_KERNELS)

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "nanochat/core/bf16.hpp"

NANOCHAT_TARGET_BEGIN(NANOCHAT_TARGET_AVX512)

namespace nanochat::cpu::avx512 {

// GCC 12 warns that the passthrough of the unmasked forms of some intrinsics (an
// _mm512_undefined value) is uninitialised (GCC bug 105593); the zero-masking forms with every
// lane selected compile to the same instructions without the warning.
inline constexpr __mmask16 all16 = 0xFFFF;
inline constexpr __mmask8 all8 = 0xFF;

// 16 consecutive elements as floats; lanes outside `lanes` read nothing and are zero.
inline __m512 load16(const float* p, __mmask16 lanes) { return _mm512_maskz_loadu_ps(lanes, p); }
inline __m512 load16(const bf16* p, __mmask16 lanes) {
  const __m256i bits = _mm256_maskz_loadu_epi16(lanes, p);
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(all16, _mm512_maskz_cvtepu16_epi32(all16, bits), 16));
}

inline __mmask16 first_lanes(std::int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << static_cast<unsigned>(std::max<std::int64_t>(n, 0))) - 1u);
}

// In-register transpose: r[j] lane i <- r[i] lane j. Pairs of floats, then of doubles, then a
// 4 x 4 transpose of the 128-bit lanes.
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_maskz_unpacklo_ps(all16, r[i], r[i + 1]);
    t[i + 1] = _mm512_maskz_unpackhi_ps(all16, r[i], r[i + 1]);
  }
  // u[4g + c], 128-bit lane L: column 4L + c of rows 4g..4g+3.
  __m512 u[16];
  for (int g = 0; g < 16; g += 4) {
    const __m512d t0 = _mm512_castps_pd(t[g]), t1 = _mm512_castps_pd(t[g + 1]);
    const __m512d t2 = _mm512_castps_pd(t[g + 2]), t3 = _mm512_castps_pd(t[g + 3]);
    u[g] = _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(all8, t0, t2));
    u[g + 1] = _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(all8, t0, t2));
    u[g + 2] = _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(all8, t1, t3));
    u[g + 3] = _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(all8, t1, t3));
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 v0 = _mm512_maskz_shuffle_f32x4(all16, u[c], u[4 + c], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512 v1 = _mm512_maskz_shuffle_f32x4(all16, u[c], u[4 + c], _MM_SHUFFLE(3, 1, 3, 1));
    const __m512 v2 = _mm512_maskz_shuffle_f32x4(all16, u[8 + c], u[12 + c], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512 v3 = _mm512_maskz_shuffle_f32x4(all16, u[8 + c], u[12 + c], _MM_SHUFFLE(3, 1, 3, 1));
    r[c] = _mm512_maskz_shuffle_f32x4(all16, v0, v2, _MM_SHUFFLE(2, 0, 2, 0));
    r[4 + c] = _mm512_maskz_shuffle_f32x4(all16, v1, v3, _MM_SHUFFLE(2, 0, 2, 0));
    r[8 + c] = _mm512_maskz_shuffle_f32x4(all16, v0, v2, _MM_SHUFFLE(3, 1, 3, 1));
    r[12 + c] = _mm512_maskz_shuffle_f32x4(all16, v1, v3, _MM_SHUFFLE(3, 1, 3, 1));
  }
}

// Each lane rounded to bf16 (nearest, ties to even; NaN stays a quiet NaN) and widened back:
// what bf16(x) then float() gives, 16 lanes at a time.
inline __m512 round_to_bf16(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_maskz_and_epi32(all16, _mm512_maskz_srli_epi32(all16, u, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_maskz_add_epi32(all16, u, _mm512_maskz_add_epi32(all16, lsb, _mm512_set1_epi32(0x7fff)));
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_maskz_and_epi32(all16, u, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
  const __m512i kept = _mm512_mask_or_epi32(rounded, nan, u, _mm512_set1_epi32(0x00400000));
  return _mm512_castsi512_ps(_mm512_maskz_and_epi32(all16, kept, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
}

}  // namespace nanochat::cpu::avx512

NANOCHAT_TARGET_END

#endif  // NANOCHAT_X86_KERNELS
