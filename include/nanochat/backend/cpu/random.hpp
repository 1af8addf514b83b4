#pragma once
// Random fills on the Cpu backend. Element i takes value i of the Philox stream, so the result
// does not depend on threads or on the backend: the Cuda twin produces the same bits.

#include <cmath>
#include <cstdint>

#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/core/philox.hpp"

namespace nanochat::cpu {

// view = mean + stddev * N(0, 1); the fma is explicit so every backend rounds it the same way.
template <class T>
void fill_normal(Cpu&, CpuView<T> view, std::uint64_t seed, std::uint64_t stream, float mean,
                 float stddev) {
  NANOCHAT_CHECK(view.is_contiguous(), "fill_normal: view with shape ", view.shape(),
                 " is not contiguous");
  T* out = view.data();
  const std::int64_t n = view.numel();
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    out[i] = T(std::fma(stddev, philox_normal(seed, stream, static_cast<std::uint64_t>(i)), mean));
  }
}

}  // namespace nanochat::cpu
