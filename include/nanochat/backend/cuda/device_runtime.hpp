#pragma once
// The Cuda backend's whole contact with the CUDA runtime and cuBLASLt, as one thin interface.
// Two implementations exist: RealDevice (real_device.hpp: cudart + cuBLASLt) and EmulatedDevice
// (emulated_device.hpp: host memory, kernels in the SIMT emulator, cuBLASLt's documented
// semantics computed by a reference). The backend above it is the same code for both, so its
// descriptors and launch shapes execute in CI on a machine without a GPU.

#include <cstddef>
#include <cstdint>
#include <string>

#include "nanochat/backend/cuda/simt_emulator.hpp"

namespace nanochat::cuda {

using simt::Dim3;
using simt::LaunchShape;

// cuBLASLt's vocabulary, with the numeric values of cublas_api.h / library_types.h so the real
// device passes them through unchanged.
enum class LtOp : int { n = 0, t = 1 };                // cublasOperation_t
enum class LtType : int { f32 = 0, bf16 = 14 };        // cudaDataType_t: CUDA_R_32F, CUDA_R_16BF

// A cublasLtMatrixLayout: column-major rows x cols with leading dimension ld, and a strided batch.
struct LtLayout {
  LtType type;
  std::uint64_t rows, cols;
  std::int64_t ld;
  std::int32_t batch_count;
  std::int64_t batch_stride;  // elements
};

// cublasComputeType_t: fp32, or fp32 inputs down-converted to bf16 for the tensor cores.
enum class LtCompute : int { f32 = 68, f32_fast_bf16 = 75 };  // CUBLAS_COMPUTE_32F(_FAST_16BF)

// What a cublasLtMatmul call says through its descriptors: D = alpha * op(A) op(B) + beta * C,
// with scale type CUDA_R_32F.
struct LtMatmul {
  LtOp trans_a, trans_b;
  LtLayout a, b, c, d;
  LtCompute compute = LtCompute::f32;
};

// One kernel launch, type-erased: the emulator entry and (in nvcc-compiled code) the address of
// the __global__ entry, plus pointers to the arguments in the kernel's parameter order.
struct KernelLaunch {
  const char* name;
  LaunchShape shape;
  void (*emulate)(const LaunchShape&, void** args);
  const void* device_entry;  // nullptr when the caller was compiled by a host compiler
  void** args;
};

enum class CopyKind { host_to_device, device_to_host, device_to_device };

class DeviceRuntime {
 public:
  virtual ~DeviceRuntime() = default;
  virtual std::string name() const = 0;
  virtual void* allocate(std::size_t bytes) = 0;
  virtual void free(void* ptr) = 0;
  // Copies and fills are ordered on the device's stream; a copy to the host returns once the
  // data is there.
  virtual void copy(void* dst, const void* src, std::size_t bytes, CopyKind kind) = 0;
  virtual void fill_zero(void* dst, std::size_t bytes) = 0;
  virtual void synchronize() = 0;
  virtual void launch(const KernelLaunch& launch) = 0;
  virtual void matmul(const LtMatmul& op, float alpha, const void* a, const void* b, float beta,
                      const void* c, void* d) = 0;
};

}  // namespace nanochat::cuda
