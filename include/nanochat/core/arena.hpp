#pragma once
// Arena: memory planned once. A layout function asks for every buffer it needs with take<T>();
// the arena runs it twice — once to measure, once to carve views out of a single allocation —
// so whatever a model needs per step is sized from its Config and batch up front and nothing
// is allocated inside a step. A smaller layout (the same buffers for a shorter sequence) can be
// carved again from the same allocation with relayout().

#include <cstddef>
#include <cstdint>

#include "nanochat/core/error.hpp"
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
    capacity_ = offset_;
    buffer_ = backend.allocate(capacity_);
    measuring_ = false;
    offset_ = 0;
    layout(*this);
  }

  // Carves layout's views again from this arena's allocation. It is measured first: a layout that
  // would not fit is refused, its views left null (the measuring pass's), never out of bounds.
  template <class Layout>
  void relayout(Layout&& layout) {
    measuring_ = true;
    offset_ = 0;
    layout(*this);
    measuring_ = false;
    NANOCHAT_CHECK(offset_ <= capacity_, "Arena::relayout: the layout needs ", offset_, " bytes but ", capacity_,
                   " were planned");
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

  // The planned (allocated) bytes.
  std::size_t bytes() const { return capacity_; }

 private:
  typename B::Buffer buffer_;
  std::size_t capacity_ = 0, offset_ = 0;
  bool measuring_ = true;
};

}  // namespace nanochat
