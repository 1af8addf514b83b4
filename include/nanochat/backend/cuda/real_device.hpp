#pragma once
// RealDevice: the DeviceRuntime of an actual GPU (CUDA runtime + cuBLASLt). Needs the CUDA
// toolkit (link nanochat::cuda). Kernels launch through their __global__ entry, which exists only
// when the calling code was compiled by nvcc; a host-compiled caller gets an error saying so.

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <source_location>
#include <string>

#include "nanochat/backend/cuda/device_runtime.hpp"
#include "nanochat/core/error.hpp"

namespace nanochat::cuda {

inline void check_cuda(cudaError_t status, const char* what,
                       std::source_location where = std::source_location::current()) {
  if (status != cudaSuccess) {
    throw Error(cat("CUDA: ", what, " failed: ", cudaGetErrorName(status), " (",
                    cudaGetErrorString(status), ")"),
                where);
  }
}

inline void check_cublas(cublasStatus_t status, const char* what,
                         std::source_location where = std::source_location::current()) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw Error(cat("cuBLASLt: ", what, " failed with status ", static_cast<int>(status)), where);
  }
}

// The runtime interface's enums carry cuBLAS's and CUDA's own values (device_runtime.hpp keeps
// CUDA headers out of emulated builds); they are cast straight through here.
static_assert(static_cast<int>(LtOp::t) == CUBLAS_OP_T && static_cast<int>(LtOp::n) == CUBLAS_OP_N);
static_assert(static_cast<int>(LtType::f32) == CUDA_R_32F && static_cast<int>(LtType::bf16) == CUDA_R_16BF);
static_assert(static_cast<int>(LtCompute::f32) == CUBLAS_COMPUTE_32F &&
              static_cast<int>(LtCompute::f32_fast_bf16) == CUBLAS_COMPUTE_32F_FAST_16BF);

class RealDevice final : public DeviceRuntime {
 public:
  static constexpr std::size_t workspace_bytes = 32u << 20;  // cuBLASLt's recommendation for Hopper

  // Number of usable GPUs; 0 when there is no driver or no device.
  static int count() {
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
  }

  explicit RealDevice(int ordinal = 0) : ordinal_(ordinal) {
    check_cuda(cudaSetDevice(ordinal), "cudaSetDevice");
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    check_cublas(cublasLtCreate(&lt_), "cublasLtCreate");
    check_cuda(cudaMalloc(&workspace_, workspace_bytes), "cudaMalloc (cuBLASLt workspace)");
  }
  RealDevice(const RealDevice&) = delete;
  RealDevice& operator=(const RealDevice&) = delete;
  ~RealDevice() override {
    cudaFree(workspace_);
    cublasLtDestroy(lt_);
    cudaStreamDestroy(stream_);
  }

  std::string name() const override {
    cudaDeviceProp prop{};
    check_cuda(cudaGetDeviceProperties(&prop, ordinal_), "cudaGetDeviceProperties");
    return cat(prop.name, " (sm_", prop.major, prop.minor, ")");
  }

  void* allocate(std::size_t bytes) override {
    void* p = nullptr;
    check_cuda(cudaMallocAsync(&p, bytes, stream_), "cudaMallocAsync");
    return p;
  }
  void free(void* ptr) override { cudaFreeAsync(ptr, stream_); }

  void copy(void* dst, const void* src, std::size_t bytes, CopyKind kind) override {
    const cudaMemcpyKind k = kind == CopyKind::host_to_device   ? cudaMemcpyHostToDevice
                             : kind == CopyKind::device_to_host ? cudaMemcpyDeviceToHost
                                                                : cudaMemcpyDeviceToDevice;
    check_cuda(cudaMemcpyAsync(dst, src, bytes, k, stream_), "cudaMemcpyAsync");
    // The host buffer of a pageable copy must stay valid until the copy is done.
    if (kind != CopyKind::device_to_device) synchronize();
  }

  void fill_zero(void* dst, std::size_t bytes) override {
    check_cuda(cudaMemsetAsync(dst, 0, bytes, stream_), "cudaMemsetAsync");
  }

  int ordinal() const { return ordinal_; }
  // The compute stream every copy, kernel and matmul is ordered on (NCCL's stream waits on it).
  cudaStream_t stream() const { return stream_; }

  void synchronize() override { check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }

  void launch(const KernelLaunch& l) override {
    NANOCHAT_CHECK(l.device_entry != nullptr, "kernel ", l.name,
                   " was compiled by a host compiler, so it has no GPU code; compile the code "
                   "that calls it with nvcc (and link nanochat::cuda)");
    simt::check_launch_shape(l.shape, l.name);
    if (l.shape.shared_bytes > 48 * 1024) {
      check_cuda(cudaFuncSetAttribute(l.device_entry, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(l.shape.shared_bytes)),
                 "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)");
    }
    const dim3 grid(l.shape.grid.x, l.shape.grid.y, l.shape.grid.z);
    const dim3 block(l.shape.block.x, l.shape.block.y, l.shape.block.z);
    check_cuda(cudaLaunchKernel(l.device_entry, grid, block, l.args, l.shape.shared_bytes, stream_),
               l.name);
  }

  void matmul(const LtMatmul& op, float alpha, const void* a, const void* b, float beta,
              const void* c, void* d) override {
    const Descriptors desc(op);
    const Preference pref(a, b, c, d);
    cublasLtMatmulHeuristicResult_t heuristic{};
    int found = 0;
    check_cublas(cublasLtMatmulAlgoGetHeuristic(lt_, desc.op.get(), desc.a.get(), desc.b.get(),
                                                desc.c.get(), desc.d.get(), pref.get(), 1,
                                                &heuristic, &found),
                 "cublasLtMatmulAlgoGetHeuristic");
    NANOCHAT_CHECK(found > 0, "cuBLASLt: no algorithm for this matmul");
    check_cublas(cublasLtMatmul(lt_, desc.op.get(), &alpha, a, desc.a.get(), b, desc.b.get(), &beta,
                                c, desc.c.get(), d, desc.d.get(), &heuristic.algo, workspace_,
                                workspace_bytes, stream_),
                 "cublasLtMatmul");
  }

 private:
  template <class Handle, cublasStatus_t (*Destroy)(Handle)>
  struct Owned {
    struct Free {
      void operator()(Handle h) const { Destroy(h); }
    };
    std::unique_ptr<std::remove_pointer_t<Handle>, Free> handle;
    Handle get() const { return handle.get(); }
  };
  using LayoutHandle = Owned<cublasLtMatrixLayout_t, cublasLtMatrixLayoutDestroy>;

  // The cuBLASLt descriptors of one LtMatmul; each is released even if a later one fails.
  struct Descriptors {
    explicit Descriptors(const LtMatmul& m) : a(layout(m.a)), b(layout(m.b)), c(layout(m.c)), d(layout(m.d)) {
      cublasLtMatmulDesc_t h = nullptr;
      check_cublas(cublasLtMatmulDescCreate(&h, static_cast<cublasComputeType_t>(m.compute), CUDA_R_32F),
                   "cublasLtMatmulDescCreate");
      op.handle.reset(h);
      const auto ta = static_cast<cublasOperation_t>(m.trans_a);
      const auto tb = static_cast<cublasOperation_t>(m.trans_b);
      check_cublas(cublasLtMatmulDescSetAttribute(h, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)),
                   "cublasLtMatmulDescSetAttribute(TRANSA)");
      check_cublas(cublasLtMatmulDescSetAttribute(h, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)),
                   "cublasLtMatmulDescSetAttribute(TRANSB)");
    }
    static LayoutHandle layout(const LtLayout& l) {
      cublasLtMatrixLayout_t h = nullptr;
      check_cublas(cublasLtMatrixLayoutCreate(&h, static_cast<cudaDataType_t>(l.type), l.rows,
                                              l.cols, l.ld),
                   "cublasLtMatrixLayoutCreate");
      LayoutHandle owned;
      owned.handle.reset(h);
      check_cublas(cublasLtMatrixLayoutSetAttribute(h, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                    &l.batch_count, sizeof(l.batch_count)),
                   "cublasLtMatrixLayoutSetAttribute(BATCH_COUNT)");
      check_cublas(cublasLtMatrixLayoutSetAttribute(h, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                    &l.batch_stride, sizeof(l.batch_stride)),
                   "cublasLtMatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET)");
      return owned;
    }
    LayoutHandle a, b, c, d;
    Owned<cublasLtMatmulDesc_t, cublasLtMatmulDescDestroy> op;
  };

  // Heuristic preferences: our workspace, and the operands' real alignment (cuBLASLt assumes 256
  // bytes otherwise, and may pick a kernel that faults on a view that starts mid-allocation).
  struct Preference {
    Preference(const void* a, const void* b, const void* c, const void* d) {
      cublasLtMatmulPreference_t h = nullptr;
      check_cublas(cublasLtMatmulPreferenceCreate(&h), "cublasLtMatmulPreferenceCreate");
      owned.handle.reset(h);
      const std::size_t ws = workspace_bytes;
      set(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, ws);
      set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, alignment_of(a));
      set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, alignment_of(b));
      set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, alignment_of(c));
      set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, alignment_of(d));
    }
    static std::uint32_t alignment_of(const void* p) {
      const auto address = reinterpret_cast<std::uintptr_t>(p);
      std::uint32_t alignment = 256;
      while (alignment > 1 && address % alignment != 0) alignment /= 2;
      return alignment;
    }
    template <class V>
    void set(cublasLtMatmulPreferenceAttributes_t attribute, const V& value) {
      check_cublas(cublasLtMatmulPreferenceSetAttribute(owned.get(), attribute, &value, sizeof(value)),
                   "cublasLtMatmulPreferenceSetAttribute");
    }
    cublasLtMatmulPreference_t get() const { return owned.get(); }
    Owned<cublasLtMatmulPreference_t, cublasLtMatmulPreferenceDestroy> owned;
  };

  int ordinal_;
  cudaStream_t stream_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  void* workspace_ = nullptr;
};

}  // namespace nanochat::cuda
