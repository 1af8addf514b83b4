#pragma once
// Tensor<T, Backend> owns memory from a backend; TensorView<T, Backend> borrows it. The element
// type and the backend are part of the type, so a bf16 view cannot reach a float op and a Cpu
// view cannot reach a Cuda op: those mistakes fail to compile instead of at run time.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "nanochat/core/dtype.hpp"
#include "nanochat/core/error.hpp"
#include "nanochat/core/shape.hpp"

namespace nanochat {

// What a backend provides for memory: RAII buffers and copies across the host boundary.
template <class B>
concept Backend = requires(B& b, void* dst, const void* src, std::size_t n) {
  typename B::Buffer;
  { b.allocate(n) } -> std::same_as<typename B::Buffer>;
  { std::as_const(std::declval<typename B::Buffer&>()).data() } -> std::convertible_to<void*>;
  b.copy_to_host(dst, src, n);
  b.copy_from_host(dst, src, n);
  b.copy_on_device(dst, src, n);
  b.fill_zero(dst, n);
  { B::host_accessible } -> std::convertible_to<bool>;
};

template <class T, class B>
class TensorView {
 public:
  using element_type = T;
  using backend_type = B;

  TensorView() = default;
  TensorView(T* data, Shape shape) : data_(data), shape_(shape), strides_(contiguous_strides(shape)) {}
  TensorView(T* data, Shape shape, Strides strides) : data_(data), shape_(shape), strides_(strides) {}

  // A mutable view converts to a read-only one, never the reverse.
  template <class U>
    requires(std::is_same_v<U, const T> && !std::is_const_v<T>)
  operator TensorView<U, B>() const {
    return {data_, shape_, strides_};
  }

  T* data() const { return data_; }
  const Shape& shape() const { return shape_; }
  const Strides& strides() const { return strides_; }
  int rank() const { return shape_.rank(); }
  std::int64_t size(int dim) const { return shape_[dim]; }
  std::int64_t stride(int dim) const { return strides_[dim < 0 ? dim + rank() : dim]; }
  std::int64_t numel() const { return shape_.numel(); }
  std::size_t bytes() const { return static_cast<std::size_t>(numel()) * sizeof(T); }

  bool is_contiguous() const { return strides_ == contiguous_strides(shape_) || numel() <= 1; }

  // The sub-view [begin, end) along one dimension; strides are kept, so it may be non-contiguous.
  TensorView slice(int dim, std::int64_t begin, std::int64_t end) const {
    const int d = dim < 0 ? dim + rank() : dim;
    NANOCHAT_CHECK(d >= 0 && d < rank(), "slice: dimension ", dim, " is out of range for shape ",
                   shape_);
    NANOCHAT_CHECK(0 <= begin && begin <= end && end <= shape_[d], "slice: range [", begin, ", ",
                   end, ") is out of bounds for dimension ", d, " of shape ", shape_);
    Shape s = shape_;
    s[d] = end - begin;
    return {data_ + begin * strides_[d], s, strides_};
  }

  // Indexing the first dimension drops it: a [B, T, C] view gives a [T, C] view.
  TensorView operator[](std::int64_t i) const {
    NANOCHAT_CHECK(rank() > 0 && 0 <= i && i < shape_[0], "index ", i,
                   " is out of bounds for shape ", shape_);
    Strides s{};
    for (int d = 1; d < rank(); ++d) s[d - 1] = strides_[d];
    return {data_ + i * strides_[0], shape_.drop_front(), s};
  }

  TensorView reshape(Shape shape) const {
    NANOCHAT_CHECK(is_contiguous(), "reshape: a view with shape ", shape_,
                   " and non-contiguous strides cannot be reshaped");
    NANOCHAT_CHECK(shape.numel() == numel(), "reshape: cannot view shape ", shape_, " (", numel(),
                   " elements) as ", shape, " (", shape.numel(), " elements)");
    return {data_, shape};
  }

  // Element access for host-resident memory; device views go through to_host().
  template <std::integral... I>
  T& operator()(I... index) const
    requires(B::host_accessible)
  {
    static_assert(sizeof...(I) <= max_rank, "too many indices");
    std::int64_t offset = 0;
    int d = 0;
    ((offset += static_cast<std::int64_t>(index) * strides_[d++]), ...);
    return data_[offset];
  }

 private:
  T* data_ = nullptr;
  Shape shape_;
  Strides strides_{};
};

template <class T, class B>
class Tensor {
 public:
  Tensor() = default;
  Tensor(B& backend, Shape shape)
      : buffer_(backend.allocate(static_cast<std::size_t>(shape.numel()) * sizeof(T))),
        shape_(shape) {}

  TensorView<T, B> view() { return {data(), shape_}; }
  TensorView<const T, B> view() const { return {data(), shape_}; }
  operator TensorView<T, B>() { return view(); }
  operator TensorView<const T, B>() const { return view(); }

  T* data() { return static_cast<T*>(buffer_.data()); }
  const T* data() const { return static_cast<const T*>(buffer_.data()); }
  const Shape& shape() const { return shape_; }
  std::int64_t numel() const { return shape_.numel(); }
  std::size_t bytes() const { return static_cast<std::size_t>(numel()) * sizeof(T); }

 private:
  typename B::Buffer buffer_;
  Shape shape_;
};

// Copies a contiguous view to a host vector (a device view goes through the backend's copy).
template <class T, class B>
std::vector<std::remove_const_t<T>> to_host(B& backend, TensorView<T, B> view) {
  NANOCHAT_CHECK(view.is_contiguous(), "to_host: view with shape ", view.shape(),
                 " is not contiguous");
  std::vector<std::remove_const_t<T>> out(static_cast<std::size_t>(view.numel()));
  backend.copy_to_host(out.data(), view.data(), view.bytes());
  return out;
}

template <class T, class B>
void copy_from_host(B& backend, TensorView<T, B> dst, std::span<const T> src) {
  NANOCHAT_CHECK(dst.is_contiguous(), "copy_from_host: destination with shape ", dst.shape(),
                 " is not contiguous");
  NANOCHAT_CHECK(static_cast<std::int64_t>(src.size()) == dst.numel(), "copy_from_host: ",
                 src.size(), " host elements do not fill a tensor of shape ", dst.shape());
  backend.copy_from_host(dst.data(), src.data(), dst.bytes());
}

}  // namespace nanochat
