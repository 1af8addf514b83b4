#pragma once
// How the threads share one GEMM, for both Cpu kernels (gemm_avx512.hpp, gemm_amx.hpp). The loop
// nest is BLIS's: for each block of op(B) (nc columns, kc deep) the threads pack the block
// together, one shared copy, each an equal part; then they take rows of C from a shared counter, pack
// those rows of op(A) and multiply them across the block. Rows are claimed in chunks that shrink
// as they run out (guided scheduling), so the threads finish a block together even when the host
// slows one of them down. The even split this replaced left 4-12 % of the threads' time in the
// d8 training step's GEMMs waiting for the other thread (docs/benchmarks.md).
//
// Every tile of C sums its products in the same order whichever thread computes it, so results do
// not depend on the number of threads or on who claimed what.

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <type_traits>

#include "nanochat/core/gemm_shape.hpp"

namespace nanochat::cpu {

// A kernel's blocking: panels of mr rows of op(A) and nr columns of op(B) (its tile of C), blocks
// kc deep, at most mc rows of op(A) packed at once and nc columns of op(B) per block.
struct GemmBlocking {
  std::int64_t mr, nr, kc, mc, nc;
  constexpr bool whole_panels() const { return mr > 0 && nr > 0 && mc >= mr && mc % mr == 0 && nc % nr == 0; }
  // The widest packed B block and the tallest packed A chunk of an m x n product, in whole panels.
  constexpr std::int64_t block_columns(std::int64_t n) const { return std::min(nc, (n + nr - 1) / nr * nr); }
  constexpr std::int64_t chunk_rows(std::int64_t m) const { return std::min(mc, (m + mr - 1) / mr * mr); }
};

// The threads a GEMM runs on: the calling thread alone inside a parallel region (attention's
// per-head products) or when the product is too small to pay for waking another (2 threads on
// 64 x 64 x 64 only wait), else all of them.
inline int gemm_threads(const GemmShape& g) {
  const double flops = 2.0 * static_cast<double>(g.m) * static_cast<double>(g.n) * static_cast<double>(g.k);
  return omp_in_parallel() || flops < 4e6 ? 1 : omp_get_max_threads();
}

// Runs the loop nest on `threads` threads (from gemm_threads). The kernel's side:
//   pack_b(col0, cols, j0, k0, depth): packs columns [j0 + col0, j0 + col0 + cols) of op(B), depth
//     [k0, k0 + depth), into the shared block where packing the whole block would put them;
//   multiply(thread, row0, rows, j0, col0, col1, k0, depth, beta_k): packs rows [row0, row0 + rows)
//     of op(A) into that thread's own space (thread < threads) and adds their products with the
//     block's columns [col0, col1) into C, scaling C by beta_k (beta on the first block of depth,
//     then 1). rows is at most mc; row0 and col0 are multiples of mr and nr.
// Neither may throw: they run inside the parallel region (allocate before calling this).
template <class PackB, class Multiply>
void gemm_cooperative(const GemmShape& g, const GemmBlocking& bl, int threads, float beta, const PackB& pack_b,
                      const Multiply& multiply) {
  using I = std::int64_t;
  static_assert(std::is_nothrow_invocable_v<const PackB&, I, I, I, I, I>, "pack_b must be noexcept");
  static_assert(std::is_nothrow_invocable_v<const Multiply&, int, I, I, I, I, I, I, I, float>,
                "multiply must be noexcept");
  const std::int64_t row_panels = (g.m + bl.mr - 1) / bl.mr;
  // Units of the current block claimed so far. Thread 0 clears it once every thread has left the
  // block, before it reaches the next block's first barrier. Relaxed: the barriers order the rest.
  std::atomic<std::int64_t> claimed = 0;
  const auto body = [&](int t, int nt) {
    const auto barrier = [nt] {
      if (nt > 1) {
#pragma omp barrier
      }
    };
    for (std::int64_t j0 = 0; j0 < g.n; j0 += bl.nc) {
      const std::int64_t ncols = std::min(bl.nc, g.n - j0), col_panels = (ncols + bl.nr - 1) / bl.nr;
      // With few rows and several threads the block's columns are split too (a unit is a row panel
      // and a column group), so that every thread has work.
      const std::int64_t groups =
          nt == 1 ? 1 : std::min(col_panels, std::max<std::int64_t>(1, (4 * nt + row_panels - 1) / row_panels));
      const std::int64_t units = row_panels * groups, most = groups > 1 ? 1 : bl.mc / bl.mr;
      for (std::int64_t k0 = 0; k0 < g.k; k0 += bl.kc) {
        const std::int64_t depth = std::min(bl.kc, g.k - k0);
        const std::int64_t p0 = col_panels * t / nt, p1 = col_panels * (t + 1) / nt;
        if (p0 < p1) pack_b(p0 * bl.nr, std::min(ncols, p1 * bl.nr) - p0 * bl.nr, j0, k0, depth);
        barrier();  // the whole block is packed
        for (;;) {
          std::int64_t u = claimed.load(std::memory_order_relaxed), take = 0;
          do {
            take = std::clamp<std::int64_t>((units - u) / (2 * nt), 1, most);
          } while (u < units && !claimed.compare_exchange_weak(u, u + take, std::memory_order_relaxed));
          if (u >= units) break;
          const std::int64_t group = u % groups, row0 = u / groups * bl.mr;
          multiply(t, row0, std::min(take * bl.mr, g.m - row0), j0, col_panels * group / groups * bl.nr,
                   std::min(ncols, col_panels * (group + 1) / groups * bl.nr), k0, depth, k0 == 0 ? beta : 1.0f);
        }
        barrier();  // nobody reads the block any more: the next one may overwrite it
        if (t == 0) claimed.store(0, std::memory_order_relaxed);
      }
    }
  };
  if (threads == 1) {
    body(0, 1);
    return;
  }
#pragma omp parallel num_threads(threads)
  body(omp_get_thread_num(), omp_get_num_threads());
}

}  // namespace nanochat::cpu
