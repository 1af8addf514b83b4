#pragma once
// A batch narrower than planned: rows x width ids from the host go to the front of a buffer
// planned for the widest batch, and come back as a contiguous [rows, width] view of it, so a
// model planned for T can run the batch at its own width (model/gpt.hpp) with nothing allocated.

#include <cstdint>
#include <span>

#include "nanochat/core/error.hpp"
#include "nanochat/core/tensor.hpp"

namespace nanochat {

template <class T, Backend B>
TensorView<const T, B> upload_rows(B& backend, Tensor<T, B>& buffer, std::span<const T> host, std::int64_t rows) {
  const auto n = static_cast<std::int64_t>(host.size());
  NANOCHAT_CHECK(rows > 0 && n > 0 && n % rows == 0 && n <= buffer.numel(), "upload_rows: ", n, " values are not ",
                 rows, " equal rows within a buffer of shape ", buffer.shape());
  const TensorView<T, B> front = buffer.view().reshape({buffer.numel()}).slice(0, 0, n).reshape({rows, n / rows});
  copy_from_host(backend, front, host);
  return front;
}

}  // namespace nanochat
