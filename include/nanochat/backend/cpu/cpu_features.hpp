#pragma once
// The x86 features the Cpu GEMM kernels need, read once per process: what the CPU has (CPUID
// leaf 7, subleaves 0 and 1) and what the OS lets a process use (XCR0's AVX-512 register state,
// Linux's permission for the AMX tile data, which it grants only when asked). A program built
// on one machine thus runs the kernels another machine offers (x86_target.hpp, gemm_kernel.hpp).

#include <cstdint>
#include <string>

#include "nanochat/backend/cpu/x86_target.hpp"

#if defined(NANOCHAT_X86_KERNELS)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

namespace nanochat::cpu {

struct CpuFeatures {
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512_bf16 = false;
  bool amx_tile = false, amx_bf16 = false;
  bool os_avx512 = false;  // XCR0 bits 5-7: the OS saves the opmask and all 32 zmm registers
  bool os_amx = false;     // XCR0 bits 17-18 and Linux granted this process the tile data

  // What each kernel needs.
  bool avx512() const { return avx512f && avx512bw && avx512vl && avx512dq && os_avx512; }
  bool avx512_bf16_usable() const { return avx512() && avx512_bf16; }
  bool amx() const { return avx512_bf16_usable() && amx_tile && amx_bf16 && os_amx; }

  // The features seen, e.g. "avx512f avx512bw avx512vl avx512dq avx512_bf16 os:zmm".
  std::string describe() const {
    std::string s;
    const auto add = [&s](bool on, const char* name) {
      if (!on) return;
      if (!s.empty()) s += ' ';
      s += name;
    };
    add(avx512f, "avx512f");
    add(avx512bw, "avx512bw");
    add(avx512vl, "avx512vl");
    add(avx512dq, "avx512dq");
    add(avx512_bf16, "avx512_bf16");
    add(amx_tile, "amx-tile");
    add(amx_bf16, "amx-bf16");
    add(os_avx512, "os:zmm");
    add(os_amx, "os:amx");
    return s.empty() ? "none of AVX-512/AMX" : s;
  }
};

namespace detail {
#if defined(NANOCHAT_X86_KERNELS)
inline std::uint64_t read_xcr0() {
  std::uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
}
#endif

inline CpuFeatures detect_cpu_features() {
  CpuFeatures f;
#if defined(NANOCHAT_X86_KERNELS)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(1, &a, &b, &c, &d) == 0) return f;
  const bool osxsave = (c >> 27) & 1u;  // XGETBV may be executed
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0) return f;
  const unsigned subleaves = a;
  f.avx512f = (b >> 16) & 1u;
  f.avx512dq = (b >> 17) & 1u;
  f.avx512bw = (b >> 30) & 1u;
  f.avx512vl = (b >> 31) & 1u;
  f.amx_bf16 = (d >> 22) & 1u;
  f.amx_tile = (d >> 24) & 1u;
  if (subleaves >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d) != 0) f.avx512_bf16 = (a >> 5) & 1u;
  if (!osxsave) return f;
  const std::uint64_t xcr0 = read_xcr0();
  // SSE and AVX state (bits 1-2) as well: the zmm registers extend them.
  f.os_avx512 = (xcr0 & 0xE6u) == 0xE6u;
#if defined(__linux__)
  if (f.amx_tile && ((xcr0 >> 17) & 3u) == 3u) {
    constexpr long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
    f.os_amx = syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
  }
#endif
#endif
  return f;
}
}  // namespace detail

// This machine's features, detected on the first call (which asks Linux for the AMX state).
inline const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detail::detect_cpu_features();
  return features;
}

}  // namespace nanochat::cpu
