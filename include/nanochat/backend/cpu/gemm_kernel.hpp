#pragma once
// Which kernel runs the Cpu backend's GEMMs, chosen once per process from what the CPU and the OS
// offer (cpu_features.hpp), not from the flags the program was built with:
//   fp32 products: AVX-512 (gemm_avx512.hpp), else OpenBLAS;
//   bf16 products (GemmCompute::bf16): AMX (gemm_amx.hpp), else AVX512_BF16
//     (gemm_avx512_bf16.hpp), else the fp32 choice on operands rounded to bf16.
// NANOCHAT_CPU_GEMM=amx|avx512_bf16|avx512|openblas forces the bf16 choice (and OpenBLAS for fp32
// too when it is openblas), for tests and A/B benchmarks; a kernel this machine cannot run, or an
// unknown name, is an error naming the variable and what is missing.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "nanochat/backend/cpu/cpu_features.hpp"
#include "nanochat/core/error.hpp"
#include "nanochat/core/gemm_shape.hpp"

namespace nanochat::cpu {

enum class GemmKernel : std::uint8_t { openblas, avx512, avx512_bf16, amx };

inline constexpr GemmKernel all_gemm_kernels[] = {GemmKernel::amx, GemmKernel::avx512_bf16, GemmKernel::avx512,
                                                  GemmKernel::openblas};

inline const char* gemm_kernel_name(GemmKernel k) {
  switch (k) {
    case GemmKernel::openblas: return "openblas";
    case GemmKernel::avx512: return "avx512";
    case GemmKernel::avx512_bf16: return "avx512_bf16";
    case GemmKernel::amx: return "amx";
  }
  return "?";
}

// What kernel k needs that this build or machine lacks, as words for an error; empty when it runs.
inline std::string gemm_kernel_missing(GemmKernel k, const CpuFeatures& f) {
  if (k == GemmKernel::openblas) return {};
#if !defined(NANOCHAT_X86_KERNELS)
  return "an x86-64 build with GCC or Clang (this build has only OpenBLAS)";
#else
  std::string missing;
  const auto need = [&missing](bool have, const char* what) {
    if (have) return;
    if (!missing.empty()) missing += ", ";
    missing += what;
  };
  need(f.avx512f, "avx512f");
  need(f.avx512bw, "avx512bw");
  need(f.avx512vl, "avx512vl");
  need(f.avx512dq, "avx512dq");
  need(f.os_avx512, "the OS's zmm state (XCR0)");
  if (k == GemmKernel::avx512_bf16 || k == GemmKernel::amx) need(f.avx512_bf16, "avx512_bf16");
  if (k == GemmKernel::amx) {
#if !defined(__linux__)
    need(false, "Linux (the AMX grant)");
#endif
    need(f.amx_tile, "amx-tile");
    need(f.amx_bf16, "amx-bf16");
    need(f.os_amx, "the OS's grant of the AMX tile state");
  }
  return missing;
#endif
}

// The kernels for fp32 and for bf16 products.
struct GemmKernels {
  GemmKernel fp32 = GemmKernel::openblas, bf16 = GemmKernel::openblas;
  GemmKernel of(GemmCompute compute) const { return compute == GemmCompute::bf16 ? bf16 : fp32; }
};

// The best kernels on a machine with features f, or those `forced` names (NANOCHAT_CPU_GEMM's
// value; null or empty: none forced).
inline GemmKernels choose_gemm_kernels(const char* forced, const CpuFeatures& f) {
  const auto runs = [&f](GemmKernel k) { return gemm_kernel_missing(k, f).empty(); };
  GemmKernels chosen;
  chosen.fp32 = runs(GemmKernel::avx512) ? GemmKernel::avx512 : GemmKernel::openblas;
  if (forced == nullptr || *forced == '\0') {
    chosen.bf16 = runs(GemmKernel::amx) ? GemmKernel::amx
                  : runs(GemmKernel::avx512_bf16) ? GemmKernel::avx512_bf16
                                                   : chosen.fp32;
    return chosen;
  }
  std::string names;
  for (GemmKernel k : all_gemm_kernels) {
    if (std::string_view(forced) == gemm_kernel_name(k)) {
      const std::string missing = gemm_kernel_missing(k, f);
      NANOCHAT_CHECK(missing.empty(), "NANOCHAT_CPU_GEMM=", forced, ": this machine lacks ", missing);
      chosen.bf16 = k;
      if (k == GemmKernel::openblas) chosen.fp32 = k;
      return chosen;
    }
    names += names.empty() ? "" : ", ";
    names += gemm_kernel_name(k);
  }
  throw Error(std::string("NANOCHAT_CPU_GEMM=") + forced + ": unknown GEMM kernel (known: " + names + ")");
}

// This process's kernels, chosen on the first call (an error from NANOCHAT_CPU_GEMM is thrown
// again on every call).
inline const GemmKernels& gemm_kernels() {
  static const GemmKernels kernels = choose_gemm_kernels(std::getenv("NANOCHAT_CPU_GEMM"), cpu_features());
  return kernels;
}

}  // namespace nanochat::cpu
