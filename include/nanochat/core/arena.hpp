#pragma once
// Arena: memory planned once. A layout function asks for every buffer it needs with take<T>();
// the arena runs it twice — once to measure, once to carve views out of a single allocation —
// so whatever a model needs per step is sized from its Config and batch up front and nothing
// is allocated inside a step.

#include <cstddef>
#include <cstdint>

#include "nanochat/core/tensor.hpp"

namespace nanochat {

template <Backend B>
class Arena {
 public:
  static constexpr std::size_t alignment = 64;

  Arena() = default;

  // layout(arena) must ask for the same buffers in the same order every time it is called.
  template <class Layout>
  Arena(B& backend, Layout&& layout) {
    layout(*this);
    buffer_ = backend.allocate(offset_);
    measuring_ = false;
    offset_ = 0;
    layout(*this);
  }

  template <class T>
  TensorView<T, B> take(Shape shape) {
    offset_ = (offset_ + alignment - 1) / alignment * alignment;
    T* p = measuring_ ? nullptr
                      : reinterpret_cast<T*>(static_cast<std::byte*>(buffer_.data()) + offset_);
    offset_ += static_cast<std::size_t>(shape.numel()) * sizeof(T);
    return {p, shape};
  }

  std::size_t bytes() const { return offset_; }

 private:
  typename B::Buffer buffer_;
  std::size_t offset_ = 0;
  bool measuring_ = true;
};

}  // namespace nanochat
