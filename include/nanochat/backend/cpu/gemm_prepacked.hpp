#pragma once
// The fp32 GEMM (gemm_avx512.hpp) of a Linear, C = alpha * A W^T + beta * C, with the weight W
// [n, k] packed once ahead instead of on every call. At 32 decoding rows every Linear goes
// through gemm, and packing its whole weight matrix per call cost as much as the product
// (docs/benchmarks.md); a served model's weights do not change, so the packing is done when they
// are loaded.
//
// The layout is the one gemm_packed builds per call, kept for every block: for each block of nc
// columns, for each block of kc depth, the block's panels of nr columns (the blocking and the
// loop nest are avx512::blocking and gemm_cooperative's), and the product is gemm_packed's
// multiply (avx512::detail::multiply_blocks) pointed at those panels, so it walks the same tiles
// in the same order and gives the same bits as gemm on the same operands. Float weights are
// packed as the fp32 kernel's float panels (avx512::pack). bf16 weights stay bf16, in the pair
// words of the bf16 kernels (bf16_pairs::pack), half the bytes a float panel reads, which the
// fp32 kernel widens in registers (exact).

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "nanochat/backend/cpu/cpu_features.hpp"
#include "nanochat/backend/cpu/gemm_avx512.hpp"
#include "nanochat/backend/cpu/gemm_kernel.hpp"
#include "nanochat/core/bf16.hpp"

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

// Whether this machine runs the prepacked product: the fp32 GEMM is the AVX-512 kernel (never
// outside x86-64 builds; not OpenBLAS: no AVX-512, or NANOCHAT_CPU_GEMM=openblas), and for bf16
// weights the CPU has AVX512_BF16, the target bf16_pairs::pack is compiled for.
template <class W>
bool runs() {
  if (gemm_kernels().fp32 != GemmKernel::avx512) return false;
  return std::is_same_v<W, float> || cpu_features().avx512_bf16_usable();
}

}  // namespace nanochat::cpu::prepacked

#if defined(NANOCHAT_X86_KERNELS)

#include "nanochat/backend/cpu/gemm_pack_bf16_pairs.hpp"
#include "nanochat/core/gemm_shape.hpp"

NANOCHAT_TARGET_BEGIN(NANOCHAT_TARGET_AVX512)

namespace nanochat::cpu::prepacked {

// Packs w [n, k] (rows contiguous, row stride ldw) into `out` (packed_elements<W>(n, k)
// elements, 64-byte aligned) with the existing packers, block by block. Only where runs<W>().
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

// C = alpha * A times the packed weight's W^T + beta * C for the shape g of gemm(c, a, w,
// Transpose::no, Transpose::yes) (one batch entry), over the threads unless called inside a
// parallel region; with beta == 0, C is not read. The bits of that gemm on the AVX-512 fp32
// kernel. Only where runs<W>().
template <class W>
void gemm(const GemmShape& g, const float* a, const panel_t<W>* w, float* c, float alpha, float beta) {
  // Nothing to pack per call: the multiply reads each block where pack_weight put it.
  const auto pack_b = [](float*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t) noexcept {};
  const auto b_block = [&g, w](float*, std::int64_t j0, std::int64_t k0) noexcept {
    return w + block_offset<W>(g.n, g.k, j0, k0);
  };
  avx512::detail::multiply_blocks<false>(g, a, c, alpha, beta, GemmOptions{}, 0, pack_b, b_block);
}

}  // namespace nanochat::cpu::prepacked

NANOCHAT_TARGET_END

#endif  // NANOCHAT_X86_KERNELS
