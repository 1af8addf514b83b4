#pragma once
// launch(device, shape, kernel, args...): runs a SIMT kernel on whichever device the backend
// holds. Compiled by nvcc, the call also instantiates the kernel's __global__ entry and passes
// its address; the real device launches that, the emulated device runs the emulator entry.

#include <cstddef>
#include <utility>

#include "nanochat/backend/cuda/device_runtime.hpp"
#include "nanochat/backend/cuda/simt.hpp"

// Code that can launch kernels differs between nvcc and host-compiled translation units (only
// nvcc has __global__ entries), so it lives in a differently named inline namespace in each: a
// program mixing both kinds of TU then links two distinct sets of symbols, never a wrong one.
#if defined(__CUDACC__)
#define NANOCHAT_CUDA_ABI nvcc_compiled
#else
#define NANOCHAT_CUDA_ABI host_compiled
#endif

namespace nanochat::cuda {

#if defined(__CUDACC__)
template <class Kernel, class... Args>
__global__ void simt_entry(Kernel kernel, Args... args) {
  kernel(args...);
}
#endif

inline namespace NANOCHAT_CUDA_ABI {

template <class Kernel, class... Args, std::size_t... I>
void emulate_unpacked(const LaunchShape& shape, void** args, std::index_sequence<I...>) {
  simt::emulator::launch(shape, Kernel::name, *static_cast<const Kernel*>(args[0]),
                         *static_cast<const Args*>(args[I + 1])...);
}

template <class Kernel, class... Args>
void emulate_entry(const LaunchShape& shape, void** args) {
  emulate_unpacked<Kernel, Args...>(shape, args, std::index_sequence_for<Args...>{});
}

template <class Kernel, class... Args>
void launch(DeviceRuntime& device, const LaunchShape& shape, Kernel kernel, Args... args) {
  void* arg_ptrs[] = {&kernel, &args...};
#if defined(__CUDACC__)
  const void* device_entry = reinterpret_cast<const void*>(&simt_entry<Kernel, Args...>);
#else
  const void* device_entry = nullptr;
#endif
  device.launch(KernelLaunch{Kernel::name, shape, &emulate_entry<Kernel, Args...>, device_entry,
                             arg_ptrs});
}

}  // namespace NANOCHAT_CUDA_ABI
}  // namespace nanochat::cuda
