#pragma once
// Shape rules of RMSNorm, shared by every backend: rows of `dim` elements (the last dimension),
// one saved reciprocal RMS per row for the backward pass.

#include <cstdint>
#include <limits>

#include "nanochat/core/bf16.hpp"
#include "nanochat/core/error.hpp"
#include "nanochat/core/tensor.hpp"

namespace nanochat {

// PyTorch's F.rms_norm with eps=None uses the machine epsilon of the input's dtype; so does
// nanochat, so so do we.
template <class T>
constexpr float rmsnorm_default_eps() {
  return static_cast<float>(std::numeric_limits<T>::epsilon());
}

struct RmsNormShape {
  std::int64_t rows;
  int dim;
};

template <class TOut, class TIn, class TStat, class B>
RmsNormShape rmsnorm_shape(const TensorView<TOut, B>& out, const TensorView<TIn, B>& in,
                           const TensorView<TStat, B>& rstd, const char* op) {
  NANOCHAT_CHECK(in.rank() >= 1, op, ": input must have rank >= 1, got shape ", in.shape());
  check_shape(out.shape(), in.shape(), cat(op, ": output"));
  NANOCHAT_CHECK(in.is_contiguous() && out.is_contiguous(), op,
                 ": input and output must be contiguous, got shapes ", in.shape(), " and ",
                 out.shape());
  const std::int64_t dim = in.size(-1);
  NANOCHAT_CHECK(dim > 0 && dim <= std::numeric_limits<int>::max(), op, ": row width ", dim,
                 " of input ", in.shape(), " is out of range");
  const std::int64_t rows = in.numel() / dim;
  NANOCHAT_CHECK(rstd.is_contiguous() && rstd.numel() == rows, op, ": rstd has shape ",
                 rstd.shape(), " but the input ", in.shape(), " has ", rows, " rows");
  return {rows, static_cast<int>(dim)};
}

}  // namespace nanochat
