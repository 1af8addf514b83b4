#pragma once
// The SIMT facade: the only vocabulary custom GPU kernels use. A kernel is a struct with a
// `static constexpr const char* name` and a NANOCHAT_HOST_DEVICE call operator. In nvcc's device
// pass every function below is the CUDA builtin it names (no overhead); in the host pass and in
// host compilers it is the emulator's (simt_emulator.hpp), so one source runs in both places.

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "nanochat/backend/cuda/simt_emulator.hpp"
#include "nanochat/core/macros.hpp"

namespace nanochat::simt {

NANOCHAT_HOST_DEVICE inline Dim3 thread_idx() {
#if NANOCHAT_DEVICE_PASS
  return {threadIdx.x, threadIdx.y, threadIdx.z};
#else
  return emulator::context().thread_idx;
#endif
}

NANOCHAT_HOST_DEVICE inline Dim3 block_idx() {
#if NANOCHAT_DEVICE_PASS
  return {blockIdx.x, blockIdx.y, blockIdx.z};
#else
  return emulator::context().block_idx;
#endif
}

NANOCHAT_HOST_DEVICE inline Dim3 block_dim() {
#if NANOCHAT_DEVICE_PASS
  return {blockDim.x, blockDim.y, blockDim.z};
#else
  return emulator::context().block_dim;
#endif
}

NANOCHAT_HOST_DEVICE inline Dim3 grid_dim() {
#if NANOCHAT_DEVICE_PASS
  return {gridDim.x, gridDim.y, gridDim.z};
#else
  return emulator::context().grid_dim;
#endif
}

// The thread's index within its block, x fastest: the order CUDA uses to form warps.
NANOCHAT_HOST_DEVICE inline unsigned linear_thread() {
#if NANOCHAT_DEVICE_PASS
  return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
#else
  return emulator::context().linear_thread;
#endif
}

NANOCHAT_HOST_DEVICE inline unsigned block_threads() {
  const Dim3 d = block_dim();
  return d.x * d.y * d.z;
}

NANOCHAT_HOST_DEVICE inline unsigned lane_id() { return linear_thread() % warp_size; }
NANOCHAT_HOST_DEVICE inline unsigned warp_id() { return linear_thread() / warp_size; }

// __syncthreads(): every thread of the block that has not returned waits here.
NANOCHAT_HOST_DEVICE inline void sync_threads() {
#if NANOCHAT_DEVICE_PASS
  __syncthreads();
#else
  emulator::context().block->block_barrier->arrive_and_wait();
#endif
}

// The block's dynamic shared memory (the launch's shared_bytes), 16-byte aligned.
template <class T>
NANOCHAT_HOST_DEVICE inline T* dynamic_shared() {
#if NANOCHAT_DEVICE_PASS
  extern __shared__ __align__(16) unsigned char nanochat_dynamic_shared[];
  return reinterpret_cast<T*>(nanochat_dynamic_shared);
#else
  return reinterpret_cast<T*>(emulator::context().block->shared.data());
#endif
}

// __shfl_xor_sync over the full warp: the value held by lane (lane ^ mask).
template <class T>
NANOCHAT_HOST_DEVICE inline T shfl_xor(T value, unsigned mask) {
  static_assert(std::is_arithmetic_v<T> && sizeof(T) <= 8, "shuffles move 4- or 8-byte scalars");
#if NANOCHAT_DEVICE_PASS
  return __shfl_xor_sync(0xffffffffu, value, static_cast<int>(mask));
#else
  emulator::ThreadContext& t = emulator::context();
  auto& warp = t.block->warp_state[warp_id()];
  const unsigned lane = lane_id();
  std::memcpy(warp.slots[lane], &value, sizeof(T));
  warp.barrier->arrive_and_wait();
  const unsigned source = lane ^ mask;
  // A full-warp shuffle in a partial warp reads a lane that does not exist: undefined on the
  // GPU, so a fault here. Kernels that shuffle launch whole warps.
  if (source >= t.block->lanes_in_warp(warp_id())) emulator::fault("shuffle from a missing lane");
  // Likewise a lane that has returned (its exit is ordered before the barrier phase ends).
  if ((warp.exited.load(std::memory_order_relaxed) >> source) & 1u) {
    emulator::fault("shuffle from a lane that has exited");
  }
  T result;
  std::memcpy(&result, warp.slots[source], sizeof(T));
  warp.barrier->arrive_and_wait();  // nobody overwrites a slot before all have read
  return result;
#endif
}

struct Sum {
  template <class T>
  NANOCHAT_HOST_DEVICE T operator()(T a, T b) const { return a + b; }
};
struct Max {
  template <class T>
  NANOCHAT_HOST_DEVICE T operator()(T a, T b) const { return a > b ? a : b; }
};

// Butterfly reduction: every lane ends with the reduction over the warp.
template <class T, class Op>
NANOCHAT_HOST_DEVICE inline T warp_reduce(T value, Op op) {
  for (unsigned offset = warp_size / 2; offset > 0; offset /= 2) {
    value = op(value, shfl_xor(value, offset));
  }
  return value;
}

// Block-wide reduction over whole warps (the block size a multiple of 32); every thread gets
// the result. `scratch` is block-shared memory for at
// least one value per warp; it may be reused as soon as this returns (the closing barrier
// guarantees all threads have read the result).
template <class T, class Op>
NANOCHAT_HOST_DEVICE inline T block_reduce(T value, T* scratch, Op op, T identity) {
  value = warp_reduce(value, op);
  const unsigned warps = (block_threads() + warp_size - 1) / warp_size;
  if (lane_id() == 0) scratch[warp_id()] = value;
  sync_threads();
  if (warp_id() == 0) {
    value = lane_id() < warps ? scratch[lane_id()] : identity;
    value = warp_reduce(value, op);
    if (lane_id() == 0) scratch[0] = value;
  }
  sync_threads();
  value = scratch[0];
  sync_threads();
  return value;
}

template <class T>
NANOCHAT_HOST_DEVICE inline T block_sum(T value, T* scratch) {
  return block_reduce(value, scratch, Sum{}, T{0});
}

// N elements moved as one aligned access (16 bytes for float4 or 8 x bf16): the widest load a
// thread issues. The pointer must be aligned to the whole vector; on the GPU a misaligned one
// faults, and so it does in the emulator.
template <class T, int N>
struct alignas(sizeof(T) * N) Vec {
  T v[N];
};

template <int N, class T>
NANOCHAT_HOST_DEVICE inline Vec<std::remove_const_t<T>, N> load_vec(T* p) {
  using V = Vec<std::remove_const_t<T>, N>;
#if !NANOCHAT_DEVICE_PASS
  if (reinterpret_cast<std::uintptr_t>(p) % alignof(V) != 0) emulator::fault("misaligned vector load");
#endif
  return *reinterpret_cast<const V*>(p);
}

template <int N, class T>
NANOCHAT_HOST_DEVICE inline void store_vec(T* p, const Vec<T, N>& value) {
#if !NANOCHAT_DEVICE_PASS
  if (reinterpret_cast<std::uintptr_t>(p) % alignof(Vec<T, N>) != 0) {
    emulator::fault("misaligned vector store");
  }
#endif
  *reinterpret_cast<Vec<T, N>*>(p) = value;
}

}  // namespace nanochat::simt
