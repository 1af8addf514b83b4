#pragma once
// EmulatedDevice: a DeviceRuntime without a GPU. Memory is host memory, but every allocation is
// tracked so a copy that overruns a buffer, or a double free, is an error naming the problem
// (on a GPU it would corrupt memory silently). Kernels run in the SIMT emulator. cublasLtMatmul
// is computed from cuBLASLt's documented semantics, and rejects what cuBLASLt rejects.

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "nanochat/backend/cuda/device_runtime.hpp"
#include "nanochat/core/bf16.hpp"
#include "nanochat/core/error.hpp"

namespace nanochat::cuda {

namespace lt_reference {

inline const char* type_name(LtType t) { return t == LtType::f32 ? "CUDA_R_32F" : "CUDA_R_16BF"; }

inline float load(LtType type, const void* base, std::int64_t index) {
  if (type == LtType::f32) return static_cast<const float*>(base)[index];
  return static_cast<float>(static_cast<const bf16*>(base)[index]);
}

inline void store(LtType type, void* base, std::int64_t index, float value) {
  if (type == LtType::f32) static_cast<float*>(base)[index] = value;
  else static_cast<bf16*>(base)[index] = bf16(value);
}

// The checks cublasLtMatmul makes before it computes (CUBLAS_STATUS_INVALID_VALUE or
// CUBLAS_STATUS_NOT_SUPPORTED on the device).
inline void validate(const LtMatmul& op, const void* c, const void* d) {
  const bool bf16_inputs = op.a.type == LtType::bf16 && op.b.type == LtType::bf16;
  const bool f32_inputs = op.a.type == LtType::f32 && op.b.type == LtType::f32;
  const bool fast_bf16 = op.compute == LtCompute::f32_fast_bf16;
  NANOCHAT_CHECK(op.c.type == op.d.type && ((bf16_inputs && !fast_bf16) || (f32_inputs && op.d.type == LtType::f32)),
                 "cublasLtMatmul: A/B/C/D types ", type_name(op.a.type), "/", type_name(op.b.type),
                 "/", type_name(op.c.type), "/", type_name(op.d.type), " are not a supported combination for ",
                 fast_bf16 ? "CUBLAS_COMPUTE_32F_FAST_16BF" : "CUBLAS_COMPUTE_32F");
  const std::uint64_t m = op.d.rows, n = op.d.cols;
  const std::uint64_t k = op.trans_a == LtOp::n ? op.a.cols : op.a.rows;
  const std::uint64_t a_m = op.trans_a == LtOp::n ? op.a.rows : op.a.cols;
  const std::uint64_t b_k = op.trans_b == LtOp::n ? op.b.rows : op.b.cols;
  const std::uint64_t b_n = op.trans_b == LtOp::n ? op.b.cols : op.b.rows;
  NANOCHAT_CHECK(a_m == m && b_n == n && b_k == k && op.c.rows == m && op.c.cols == n,
                 "cublasLtMatmul: inconsistent sizes: op(A) is ", a_m, "x", k, ", op(B) is ", b_k,
                 "x", b_n, ", C is ", op.c.rows, "x", op.c.cols, ", D is ", m, "x", n);
  for (auto [name, layout] : {std::pair{"A", op.a}, std::pair{"B", op.b}, std::pair{"C", op.c},
                              std::pair{"D", op.d}}) {
    NANOCHAT_CHECK(layout.ld >= static_cast<std::int64_t>(layout.rows) && layout.ld >= 1,
                   "cublasLtMatmul: ", name, " has leading dimension ", layout.ld,
                   " smaller than its ", layout.rows, " rows (column-major)");
    NANOCHAT_CHECK(layout.batch_count == op.d.batch_count, "cublasLtMatmul: ", name,
                   " has batch count ", layout.batch_count, " but D has ", op.d.batch_count);
  }
  NANOCHAT_CHECK(c != d || (op.c.ld == op.d.ld && op.c.batch_stride == op.d.batch_stride),
                 "cublasLtMatmul: in-place C == D needs identical C and D layouts");
}

// D = alpha * op(A) op(B) + beta * C per batch entry, fp32 accumulation; C is not read when
// beta == 0, so it may hold garbage (cuBLAS's documented behaviour). FAST_16BF down-converts the
// fp32 inputs to bf16 (nearest, ties to even) before multiplying.
inline void matmul(const LtMatmul& op, float alpha, const void* a, const void* b, float beta,
                   const void* c, void* d) {
  validate(op, c, d);
  const auto m = static_cast<std::int64_t>(op.d.rows), n = static_cast<std::int64_t>(op.d.cols);
  const auto k = static_cast<std::int64_t>(op.trans_a == LtOp::n ? op.a.cols : op.a.rows);
  // Element (i, j) of op(X) in a column-major layout with leading dimension ld.
  auto at = [](LtOp t, std::int64_t ld, std::int64_t i, std::int64_t j) {
    return t == LtOp::n ? i + j * ld : j + i * ld;
  };
  for (std::int32_t batch = 0; batch < op.d.batch_count; ++batch) {
    const std::int64_t oa = batch * op.a.batch_stride, ob = batch * op.b.batch_stride;
    const std::int64_t oc = batch * op.c.batch_stride, od = batch * op.d.batch_stride;
#pragma omp parallel for schedule(static)
    for (std::int64_t j = 0; j < n; ++j) {
      for (std::int64_t i = 0; i < m; ++i) {
        float acc = 0.0f;
        for (std::int64_t p = 0; p < k; ++p) {
          float x = load(op.a.type, a, oa + at(op.trans_a, op.a.ld, i, p));
          float y = load(op.b.type, b, ob + at(op.trans_b, op.b.ld, p, j));
          if (op.compute == LtCompute::f32_fast_bf16) {
            x = round_to_bf16(x);
            y = round_to_bf16(y);
          }
          acc += x * y;
        }
        float out = alpha * acc;
        if (beta != 0.0f) out += beta * load(op.c.type, c, oc + i + j * op.c.ld);
        store(op.d.type, d, od + i + j * op.d.ld, out);
      }
    }
  }
}

}  // namespace lt_reference

class EmulatedDevice final : public DeviceRuntime {
 public:
  static constexpr std::size_t alignment = 256;  // cudaMalloc's guarantee

  EmulatedDevice() = default;
  EmulatedDevice(const EmulatedDevice&) = delete;
  EmulatedDevice& operator=(const EmulatedDevice&) = delete;
  ~EmulatedDevice() override {
    for (auto& [ptr, bytes] : allocations_) std::free(reinterpret_cast<void*>(ptr));
  }

  std::string name() const override { return "emulated CUDA device (SIMT emulator on the host)"; }

  void* allocate(std::size_t bytes) override {
    const std::size_t rounded = (bytes + alignment - 1) / alignment * alignment;
    void* p = std::aligned_alloc(alignment, rounded == 0 ? alignment : rounded);
    NANOCHAT_CHECK(p != nullptr, "emulated device: out of memory allocating ", bytes, " bytes");
    std::lock_guard lock(mutex_);
    allocations_[reinterpret_cast<std::uintptr_t>(p)] = bytes;
    ++allocate_calls_;
    return p;
  }

  void free(void* ptr) override {
    std::lock_guard lock(mutex_);
    auto it = allocations_.find(reinterpret_cast<std::uintptr_t>(ptr));
    NANOCHAT_CHECK(it != allocations_.end(), "emulated device: free of ", ptr,
                   ", which is not a live device allocation (double free?)");
    // Freed through the recorded address: the same pointer, but GCC's allocation tracking no
    // longer follows a caller's non-device pointer (refused above) into std::free and warns.
    void* const allocation = reinterpret_cast<void*>(it->first);
    allocations_.erase(it);
    std::free(allocation);
  }

  void copy(void* dst, const void* src, std::size_t bytes, CopyKind kind) override {
    if (kind != CopyKind::host_to_device) check_range(src, bytes, "copy source");
    if (kind != CopyKind::device_to_host) check_range(dst, bytes, "copy destination");
    std::memmove(dst, src, bytes);
  }

  void fill_zero(void* dst, std::size_t bytes) override {
    check_range(dst, bytes, "fill destination");
    std::memset(dst, 0, bytes);
  }

  void synchronize() override {}  // work runs to completion when issued

  void launch(const KernelLaunch& l) override { l.emulate(l.shape, l.args); }

  void matmul(const LtMatmul& op, float alpha, const void* a, const void* b, float beta,
              const void* c, void* d) override {
    lt_reference::validate(op, c, d);  // what cuBLASLt rejects up front
    // Every operand must be device memory large enough for its layout, as on the GPU.
    for (auto [what, ptr, layout] : {std::tuple{"matmul A", a, op.a}, std::tuple{"matmul B", b, op.b},
                                     std::tuple{"matmul C", c, op.c},
                                     std::tuple{"matmul D", static_cast<const void*>(d), op.d}}) {
      if (layout.rows == 0 || layout.cols == 0 || layout.batch_count == 0) continue;
      const std::int64_t last = (layout.batch_count - 1) * layout.batch_stride +
                                static_cast<std::int64_t>(layout.cols - 1) * layout.ld +
                                static_cast<std::int64_t>(layout.rows);
      const std::size_t element = layout.type == LtType::f32 ? 4 : 2;
      check_range(ptr, static_cast<std::size_t>(last) * element, what);
    }
    lt_reference::matmul(op, alpha, a, b, beta, c, d);
  }

  std::size_t live_allocations() const {
    std::lock_guard lock(mutex_);
    return allocations_.size();
  }

  // allocate() calls so far, freed or not: an op that allocates and frees per call leaves
  // live_allocations() unchanged but shows here.
  std::size_t allocate_calls() const {
    std::lock_guard lock(mutex_);
    return allocate_calls_;
  }

  // [ptr, ptr + bytes) must lie inside one live allocation (the emulated NCCL checks its buffers too).
  void check_range(const void* ptr, std::size_t bytes, const char* what) const {
    const auto p = reinterpret_cast<std::uintptr_t>(ptr);
    std::lock_guard lock(mutex_);
    auto it = allocations_.upper_bound(p);
    NANOCHAT_CHECK(it != allocations_.begin(), "emulated device: ", what, " ", ptr,
                   " is not device memory");
    --it;
    NANOCHAT_CHECK(p + bytes <= it->first + it->second, "emulated device: ", what, " of ", bytes,
                   " bytes at offset ", p - it->first, " overruns its allocation of ", it->second,
                   " bytes");
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::uintptr_t, std::size_t> allocations_;
  std::size_t allocate_calls_ = 0;
};

}  // namespace nanochat::cuda
