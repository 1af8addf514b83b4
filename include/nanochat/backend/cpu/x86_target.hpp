#pragma once
// Compiling x86 kernels for instruction sets beyond the build's -march: code between
// NANOCHAT_TARGET_BEGIN(list) and NANOCHAT_TARGET_END is compiled as if for those sets (GCC's
// `#pragma GCC target`, Clang's `#pragma clang attribute`), so every x86-64 build holds the
// AVX-512, AVX512_BF16 and AMX GEMM kernels and gemm.hpp picks one at run time from what the CPU
// and the OS offer (cpu_features.hpp). Such code may only run after that check. Callers outside a
// region must pass no vector types: the calling conventions differ.

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NANOCHAT_X86_KERNELS 1

// The sets each kernel is compiled for (one string literal each: the pragmas take one).
#define NANOCHAT_TARGET_AVX512 "avx512f,avx512bw,avx512vl,avx512dq"
#define NANOCHAT_TARGET_AVX512_BF16 "avx512f,avx512bw,avx512vl,avx512dq,avx512bf16"
#define NANOCHAT_TARGET_AMX "avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,amx-tile,amx-bf16"

#define NANOCHAT_PRAGMA(text) _Pragma(#text)
#if defined(__clang__)
#define NANOCHAT_TARGET_BEGIN(list) \
  NANOCHAT_PRAGMA(clang attribute push(__attribute__((target(list))), apply_to = function))
#define NANOCHAT_TARGET_END NANOCHAT_PRAGMA(clang attribute pop)
#else
#define NANOCHAT_TARGET_BEGIN(list) NANOCHAT_PRAGMA(GCC push_options) NANOCHAT_PRAGMA(GCC target(list))
#define NANOCHAT_TARGET_END NANOCHAT_PRAGMA(GCC pop_options)
#endif

#endif  // x86-64 GCC or Clang
