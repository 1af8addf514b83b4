#pragma once
// Qualifiers shared by host and device code. Under nvcc they are the CUDA keywords; in a host
// compiler they vanish, which is how one kernel source also runs in the SIMT emulator.

#if defined(__CUDACC__)
#define NANOCHAT_HOST_DEVICE __host__ __device__
#define NANOCHAT_FORCEINLINE __forceinline__
#else
#define NANOCHAT_HOST_DEVICE
#define NANOCHAT_FORCEINLINE inline __attribute__((always_inline))
#endif

// True inside the device pass of nvcc; the host pass and host compilers see the emulator side.
#if defined(__CUDA_ARCH__)
#define NANOCHAT_DEVICE_PASS 1
#else
#define NANOCHAT_DEVICE_PASS 0
#endif

// Unrolls the next loop of a host kernel completely (its trip count is a constant): register-
// blocked CPU kernels keep their accumulators in registers only when unrolled. In a .cu file
// neither nvcc's front end nor its host compiler takes the same spelling, so there it is left
// to the optimiser (CPU code in .cu files only serves as a reference).
#if defined(__CUDACC__)
#define NANOCHAT_UNROLL
#elif defined(__clang__)
#define NANOCHAT_UNROLL _Pragma("unroll")
#else
#define NANOCHAT_UNROLL _Pragma("GCC unroll 32")
#endif
