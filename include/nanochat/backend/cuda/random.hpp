#pragma once
// Random fills on the Cuda backend: the same Philox values as the Cpu twin, element for element.

#include <algorithm>
#include <cstdint>
#include <math.h>

#include "nanochat/backend/cuda/cuda.hpp"
#include "nanochat/backend/cuda/simt.hpp"
#include "nanochat/core/philox.hpp"

namespace nanochat::cuda {

template <class T>
struct FillNormalKernel {
  static constexpr const char* name = "fill_normal";
  NANOCHAT_HOST_DEVICE void operator()(T* out, std::int64_t n, std::uint64_t seed,
                                       std::uint64_t stream, float mean, float stddev) const {
    const std::int64_t stride = static_cast<std::int64_t>(simt::grid_dim().x) * simt::block_dim().x;
    for (std::int64_t i = static_cast<std::int64_t>(simt::block_idx().x) * simt::block_dim().x +
                          simt::thread_idx().x;
         i < n; i += stride) {
      out[i] = T(::fmaf(stddev, philox_normal(seed, stream, static_cast<std::uint64_t>(i)), mean));
    }
  }
};

inline namespace NANOCHAT_CUDA_ABI {

template <class T>
void fill_normal(Cuda& cuda, CudaView<T> view, std::uint64_t seed, std::uint64_t stream,
                 float mean, float stddev) {
  NANOCHAT_CHECK(view.is_contiguous(), "fill_normal: view with shape ", view.shape(),
                 " is not contiguous");
  const std::int64_t n = view.numel();
  if (n == 0) return;
  constexpr unsigned threads = 256;
  const auto blocks = static_cast<unsigned>(std::min<std::int64_t>((n + threads - 1) / threads, 4096));
  launch(cuda.device(), LaunchShape{{blocks, 1, 1}, {threads, 1, 1}, 0}, FillNormalKernel<T>{},
         view.data(), n, seed, stream, mean, stddev);
}

}  // namespace NANOCHAT_CUDA_ABI
}  // namespace nanochat::cuda
