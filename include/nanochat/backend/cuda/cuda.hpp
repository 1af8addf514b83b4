#pragma once
// The Cuda backend: device memory and ops through a DeviceRuntime (a real GPU or the emulated
// device). Ops are free functions taking a Cuda&, overloads of the Cpu backend's.

#include <cstddef>
#include <utility>

#include "nanochat/backend/cuda/device_runtime.hpp"
#include "nanochat/backend/cuda/launch.hpp"
#include "nanochat/core/tensor.hpp"

namespace nanochat::cuda {
inline namespace NANOCHAT_CUDA_ABI {

class Cuda {
 public:
  static constexpr bool host_accessible = false;

  explicit Cuda(DeviceRuntime& device) : device_(&device) {}

  class Buffer {
   public:
    Buffer() = default;
    Buffer(Buffer&& other) noexcept
        : device_(other.device_), ptr_(std::exchange(other.ptr_, nullptr)) {}
    Buffer& operator=(Buffer&& other) noexcept {
      if (this != &other) {
        release();
        device_ = other.device_;
        ptr_ = std::exchange(other.ptr_, nullptr);
      }
      return *this;
    }
    ~Buffer() { release(); }
    void* data() const { return ptr_; }

   private:
    friend class Cuda;
    Buffer(DeviceRuntime* device, void* ptr) : device_(device), ptr_(ptr) {}
    void release() noexcept {
      if (ptr_ != nullptr) device_->free(ptr_);
      ptr_ = nullptr;
    }
    DeviceRuntime* device_ = nullptr;
    void* ptr_ = nullptr;
  };

  Buffer allocate(std::size_t bytes) {
    return bytes == 0 ? Buffer{} : Buffer(device_, device_->allocate(bytes));
  }
  void copy_to_host(void* dst, const void* src, std::size_t bytes) {
    device_->copy(dst, src, bytes, CopyKind::device_to_host);
  }
  void copy_from_host(void* dst, const void* src, std::size_t bytes) {
    device_->copy(dst, src, bytes, CopyKind::host_to_device);
  }
  void copy_on_device(void* dst, const void* src, std::size_t bytes) {
    device_->copy(dst, src, bytes, CopyKind::device_to_device);
  }
  void fill_zero(void* dst, std::size_t bytes) { device_->fill_zero(dst, bytes); }

  // Device memory an op needs only while its kernels run (attention's per-row delta). Work on the
  // stream runs in order, so one buffer serves every op; it grows to the largest request and is
  // kept, so a training step allocates nothing once each op has run once. Valid until the next
  // call (a replaced buffer is freed in stream order, after the kernels queued on it).
  void* scratch(std::size_t bytes) {
    if (bytes > scratch_bytes_) {
      scratch_ = allocate(bytes);
      scratch_bytes_ = bytes;
    }
    return scratch_.data();
  }
  void synchronize() { device_->synchronize(); }

  DeviceRuntime& device() const { return *device_; }

 private:
  DeviceRuntime* device_;
  Buffer scratch_;
  std::size_t scratch_bytes_ = 0;
};

static_assert(Backend<Cuda>);

template <class T>
using CudaView = TensorView<T, Cuda>;

}  // namespace NANOCHAT_CUDA_ABI
}  // namespace nanochat::cuda
