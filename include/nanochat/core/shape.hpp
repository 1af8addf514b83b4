#pragma once
// Shape and strides of a tensor of rank 0..4 (enough for [B, T, H, D]); extents are int64 so
// vocab x dim products never overflow.

#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>

#include "nanochat/core/error.hpp"

namespace nanochat {

inline constexpr int max_rank = 4;

class Shape {
 public:
  constexpr Shape() = default;
  Shape(std::initializer_list<std::int64_t> extents) {
    NANOCHAT_CHECK(extents.size() <= max_rank, "a shape has at most ", max_rank,
                   " dimensions, got ", extents.size());
    for (std::int64_t e : extents) {
      NANOCHAT_CHECK(e >= 0, "shape extents must be non-negative, got ", e);
      extents_[rank_++] = e;
    }
  }

  constexpr int rank() const { return rank_; }
  std::int64_t operator[](int dim) const { return extents_[checked(dim)]; }
  std::int64_t& operator[](int dim) { return extents_[checked(dim)]; }

  constexpr std::int64_t numel() const {
    std::int64_t n = 1;
    for (int d = 0; d < rank_; ++d) n *= extents_[d];
    return n;
  }

  // Shape with the first dimension removed (indexing a batch).
  Shape drop_front() const {
    NANOCHAT_CHECK(rank_ > 0, "cannot index into a scalar (rank-0) shape");
    Shape s;
    for (int d = 1; d < rank_; ++d) s.extents_[s.rank_++] = extents_[d];
    return s;
  }

  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.rank_ != b.rank_) return false;
    for (int d = 0; d < a.rank_; ++d)
      if (a.extents_[d] != b.extents_[d]) return false;
    return true;
  }

  friend std::ostream& operator<<(std::ostream& out, const Shape& s) {
    out << '[';
    for (int d = 0; d < s.rank_; ++d) out << (d ? ", " : "") << s.extents_[d];
    return out << ']';
  }

  std::string str() const { return cat(*this); }

 private:
  int checked(int dim) const {
    int d = dim < 0 ? dim + rank_ : dim;
    NANOCHAT_CHECK(d >= 0 && d < rank_, "dimension ", dim, " is out of range for shape ", *this);
    return d;
  }

  std::array<std::int64_t, max_rank> extents_{};
  int rank_ = 0;
};

// Element strides; row-major contiguous unless a view made them otherwise.
using Strides = std::array<std::int64_t, max_rank>;

inline Strides contiguous_strides(const Shape& shape) {
  Strides s{};
  std::int64_t step = 1;
  for (int d = shape.rank() - 1; d >= 0; --d) {
    s[d] = step;
    step *= shape[d];
  }
  return s;
}

// "what has shape [a, b] but expected [c, d]" — the message every shape check uses.
inline void check_shape(const Shape& actual, const Shape& expected, std::string_view what,
                        std::source_location where = std::source_location::current()) {
  if (!(actual == expected)) {
    throw Error(cat(what, " has shape ", actual, " but expected ", expected), where);
  }
}

}  // namespace nanochat
