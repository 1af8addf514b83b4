#pragma once
// The Cpu backend: host memory, OpenMP for loops, its own AVX-512 GEMM (OpenBLAS's sgemm in
// programs built without AVX-512). It is the executable reference every other backend is
// compared with.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "nanochat/core/error.hpp"
#include "nanochat/core/tensor.hpp"

namespace nanochat::cpu {

struct Cpu {
  static constexpr bool host_accessible = true;
  static constexpr std::size_t alignment = 64;  // a cache line, and a full AVX-512 vector

  class Buffer {
   public:
    Buffer() = default;
    void* data() const { return memory_.get(); }

   private:
    friend struct Cpu;
    struct Free {
      void operator()(void* p) const { std::free(p); }
    };
    std::unique_ptr<void, Free> memory_;
  };

  Buffer allocate(std::size_t bytes) {
    Buffer b;
    if (bytes == 0) return b;
    const std::size_t rounded = (bytes + alignment - 1) / alignment * alignment;
    b.memory_.reset(std::aligned_alloc(alignment, rounded));
    NANOCHAT_CHECK(b.memory_ != nullptr, "Cpu: out of host memory allocating ", bytes, " bytes");
    return b;
  }

  void copy_to_host(void* dst, const void* src, std::size_t bytes) { std::memcpy(dst, src, bytes); }
  void copy_from_host(void* dst, const void* src, std::size_t bytes) { std::memcpy(dst, src, bytes); }
  void copy_on_device(void* dst, const void* src, std::size_t bytes) { std::memcpy(dst, src, bytes); }
  void fill_zero(void* dst, std::size_t bytes) { std::memset(dst, 0, bytes); }

  // Scratch memory for ops that need a temporary (Newton–Schulz's intermediate products). It
  // grows to the largest request and is then reused, so steady-state steps allocate nothing.
  // Valid until the next call; a Cpu is used by one thread at a time.
  float* workspace(std::size_t elements) {
    if (elements > workspace_elements_) {
      workspace_ = allocate(elements * sizeof(float));
      workspace_elements_ = elements;
    }
    return static_cast<float*>(workspace_.data());
  }

 private:
  Buffer workspace_;
  std::size_t workspace_elements_ = 0;
};

static_assert(Backend<Cpu>);

// Scratch memory of the calling thread: 64-byte aligned, grown to the largest request and kept,
// valid until the thread's next call with the same T and Owner (each pair has its own buffer, so
// an op can hold its scratch across the GEMMs it calls, whose packing uses the default Owner). For
// kernels that may run on several threads at once (a GEMM inside a parallel loop), where the
// Cpu's one workspace would be shared.
template <class T, class Owner = void>
T* thread_scratch(std::size_t elements) {
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  thread_local std::unique_ptr<void, Free> space;
  thread_local std::size_t capacity = 0;
  NANOCHAT_CHECK(elements <= (SIZE_MAX - Cpu::alignment) / sizeof(T), "Cpu: scratch of ", elements,
                 " elements overflows the address space");
  const std::size_t bytes = (elements * sizeof(T) + Cpu::alignment - 1) / Cpu::alignment * Cpu::alignment;
  if (bytes > capacity) {
    // Allocated before the old buffer is let go, so a failure leaves the old one usable.
    std::unique_ptr<void, Free> grown(std::aligned_alloc(Cpu::alignment, bytes));
    NANOCHAT_CHECK(grown != nullptr, "Cpu: out of host memory allocating ", bytes, " bytes of scratch");
    space = std::move(grown);
    capacity = bytes;
  }
  return static_cast<T*>(space.get());
}

template <class T>
using CpuView = TensorView<T, Cpu>;

}  // namespace nanochat::cpu
