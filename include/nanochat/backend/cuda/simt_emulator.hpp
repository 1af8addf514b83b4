#pragma once
// The SIMT emulator: runs a kernel written against simt.hpp on the host. Every GPU thread of a
// block is a real host thread; __syncthreads is a real barrier, warp shuffles exchange through a
// real per-warp barrier, and block-shared memory is one buffer all threads of the block touch.
// So a missing barrier is a real data race here too: ThreadSanitizer reports it, and results
// differ from run to run, as they would on a GPU.
//
// Blocks run one after another with the same threads (blocks never talk to each other, so any
// order is a valid schedule). Shared memory is filled with 0xFF bytes before each block, so a
// read of never-written shared memory yields NaN instead of the previous block's data.

#include <atomic>
#include <barrier>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "nanochat/core/error.hpp"

namespace nanochat::simt {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr std::uint64_t count() const { return std::uint64_t{x} * y * z; }
};

struct LaunchShape {
  Dim3 grid;
  Dim3 block;
  std::size_t shared_bytes = 0;  // dynamic block-shared memory
};

inline constexpr int warp_size = 32;

// Launch limits of every GPU we target (sm_80, sm_90); checked so a bad launch shape fails here
// the way cudaLaunchKernel would fail on the device.
inline constexpr unsigned max_threads_per_block = 1024;
inline constexpr unsigned max_block_z = 64;
inline constexpr unsigned max_grid_yz = 65535;
inline constexpr std::size_t max_shared_bytes = 163 * 1024;  // sm_80's opt-in limit (sm_90: 227 KiB)

inline void check_launch_shape(const LaunchShape& s, const char* kernel) {
  // Each extent first, so the products below cannot wrap.
  NANOCHAT_CHECK(s.block.x >= 1 && s.block.y >= 1 && s.block.z >= 1 &&
                     s.block.x <= max_threads_per_block && s.block.y <= max_threads_per_block &&
                     s.block.z <= max_block_z,
                 "launch of ", kernel, ": a block of ", s.block.x, "x", s.block.y, "x", s.block.z,
                 " threads is outside the per-dimension limits (", max_threads_per_block, ", ",
                 max_threads_per_block, ", ", max_block_z, ")");
  NANOCHAT_CHECK(s.block.count() <= max_threads_per_block, "launch of ", kernel, ": a block of ",
                 s.block.x, "x", s.block.y, "x", s.block.z, " threads is outside 1..",
                 max_threads_per_block);
  NANOCHAT_CHECK(s.grid.x >= 1 && s.grid.y >= 1 && s.grid.z >= 1, "launch of ", kernel,
                 ": empty grid");
  NANOCHAT_CHECK(s.grid.x <= 0x7fffffffu && s.grid.y <= max_grid_yz && s.grid.z <= max_grid_yz,
                 "launch of ", kernel, ": grid ", s.grid.x, "x", s.grid.y, "x", s.grid.z,
                 " exceeds (2^31 - 1) x ", max_grid_yz, " x ", max_grid_yz);
  NANOCHAT_CHECK(s.shared_bytes <= max_shared_bytes, "launch of ", kernel, ": ", s.shared_bytes,
                 " bytes of shared memory exceed ", max_shared_bytes);
}

namespace emulator {

// State one block's threads share. Barriers are rebuilt between blocks (by the end-of-block
// barrier's completion step) because threads that return early leave them for good.
struct BlockState {
  struct Warp {
    std::optional<std::barrier<>> barrier;
    std::atomic<std::uint32_t> exited{0};  // lanes that returned: a shuffle must not read them
    alignas(8) unsigned char slots[warp_size][8];  // shuffle exchange, one 8-byte slot per lane
    std::uint32_t mma_slots[warp_size][6];          // mma.sync exchange: A's 4 and B's 2 registers
  };

  BlockState(const LaunchShape& shape)
      : threads(static_cast<unsigned>(shape.block.count())),
        warps((threads + warp_size - 1) / warp_size),
        shared(shape.shared_bytes),
        warp_state(static_cast<std::size_t>(warps)) {}

  void reset_barriers() noexcept {
    block_barrier.emplace(static_cast<std::ptrdiff_t>(threads));
    for (unsigned w = 0; w < warps; ++w) {
      warp_state[w].barrier.emplace(static_cast<std::ptrdiff_t>(lanes_in_warp(w)));
      warp_state[w].exited.store(0, std::memory_order_relaxed);
    }
  }

  unsigned lanes_in_warp(unsigned w) const {
    return w + 1 < warps ? warp_size : threads - w * warp_size;
  }

  unsigned threads, warps;
  std::vector<unsigned char> shared;
  std::vector<Warp> warp_state;
  std::optional<std::barrier<>> block_barrier;
};

// Where the calling host thread is in the emulated grid.
struct ThreadContext {
  Dim3 thread_idx, block_idx, block_dim, grid_dim;
  unsigned linear_thread;  // x fastest, as CUDA numbers threads into warps
  BlockState* block;
  const char* kernel;
};

inline thread_local ThreadContext* current = nullptr;

inline ThreadContext& context() {
  if (current == nullptr) {
    std::fputs("SIMT emulator: a device function ran outside an emulated kernel launch\n", stderr);
    std::abort();
  }
  return *current;
}

// Exit status of a process stopped by an emulated device fault.
inline constexpr int fault_exit_code = 86;

// A fault the GPU would report as a sticky error (misaligned access, trap): the emulator stops
// the process with where it happened, like the device would kill the context.
[[noreturn]] inline void fault(const char* what) {
  const ThreadContext& t = context();
  std::fprintf(stderr, "SIMT emulator: %s in kernel %s, block (%u,%u,%u), thread (%u,%u,%u)\n",
               what, t.kernel, t.block_idx.x, t.block_idx.y, t.block_idx.z, t.thread_idx.x,
               t.thread_idx.y, t.thread_idx.z);
  std::fflush(stderr);
  std::_Exit(fault_exit_code);
}

inline Dim3 unflatten(std::uint64_t i, Dim3 extent) {
  const std::uint64_t xy = std::uint64_t{extent.x} * extent.y;
  return {static_cast<unsigned>(i % extent.x), static_cast<unsigned>(i / extent.x % extent.y),
          static_cast<unsigned>(i / xy)};
}

// Runs kernel(args...) over the whole grid; returns when every block has finished.
template <class Kernel, class... Args>
void launch(const LaunchShape& shape, const char* name, const Kernel& kernel, const Args&... args) {
  check_launch_shape(shape, name);
  BlockState state(shape);
  const std::uint64_t blocks = shape.grid.count();
  auto prepare_block = [&state]() noexcept {
    state.reset_barriers();
    if (!state.shared.empty()) std::memset(state.shared.data(), 0xff, state.shared.size());
  };
  prepare_block();
  std::barrier end_of_block(static_cast<std::ptrdiff_t>(state.threads), prepare_block);

  auto run_thread = [&](unsigned linear) {
    ThreadContext ctx{unflatten(linear, shape.block), {}, shape.block, shape.grid, linear, &state,
                      name};
    current = &ctx;
    const unsigned warp = linear / warp_size;
    for (std::uint64_t b = 0; b < blocks; ++b) {
      ctx.block_idx = unflatten(b, shape.grid);
      kernel(args...);
      // A finished thread no longer takes part in barriers, as on the GPU.
      state.warp_state[warp].exited.fetch_or(1u << (linear % warp_size), std::memory_order_relaxed);
      state.block_barrier->arrive_and_drop();
      state.warp_state[warp].barrier->arrive_and_drop();
      end_of_block.arrive_and_wait();
    }
    current = nullptr;
  };

  std::vector<std::thread> threads;
  threads.reserve(state.threads);
  for (unsigned t = 0; t < state.threads; ++t) threads.emplace_back(run_thread, t);
  for (auto& t : threads) t.join();
}

}  // namespace emulator
}  // namespace nanochat::simt
