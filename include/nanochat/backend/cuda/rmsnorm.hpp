#pragma once
// RMSNorm on the Cuda backend: one block per row, a block-wide sum of squares (or of dy * x for
// the backward), then one more pass over the row. Rows move as 16-byte vectors when the width
// and the base allow it, element by element otherwise.

#include <cstdint>
#include <type_traits>
#include <initializer_list>
#include <math.h>

#include "nanochat/backend/cuda/cuda.hpp"
#include "nanochat/backend/cuda/simt.hpp"
#include "nanochat/core/rmsnorm_shape.hpp"

namespace nanochat::cuda {

namespace rmsnorm_detail {

inline constexpr unsigned block_threads = 128;

template <class T>
inline constexpr int vector_width = 16 / static_cast<int>(sizeof(T));

// Calls f(i, values) for each Vec-wide chunk of a row that this thread owns.
template <int N, class T, class F>
NANOCHAT_HOST_DEVICE inline void for_my_chunks(const T* row, int dim, F&& f) {
  const int step = static_cast<int>(simt::block_dim().x) * N;
  for (int i = static_cast<int>(simt::thread_idx().x) * N; i < dim; i += step) {
    f(i, simt::load_vec<N>(row + i));
  }
}

// One block per row; shared memory for one partial sum per warp.
inline LaunchShape launch_shape(std::int64_t rows) {
  NANOCHAT_CHECK(rows <= 0x7fffffff, "rmsnorm: ", rows, " rows exceed the grid's x extent");
  return {{static_cast<unsigned>(rows), 1, 1}, {block_threads, 1, 1},
          block_threads / simt::warp_size * sizeof(float)};
}

// Vector access needs every row to start on a 16-byte boundary.
template <class T>
bool vectorizable(int dim, std::initializer_list<const void*> bases) {
  if (dim % vector_width<T> != 0) return false;
  for (const void* p : bases)
    if (reinterpret_cast<std::uintptr_t>(p) % 16 != 0) return false;
  return true;
}
}  // namespace rmsnorm_detail

template <class T, int N>
struct RmsNormForwardKernel {
  static constexpr const char* name = "rmsnorm_forward";
  NANOCHAT_HOST_DEVICE void operator()(T* out, float* rstd, const T* in, int dim, float eps) const {
    const std::int64_t row = simt::block_idx().x;
    const T* x = in + row * dim;
    T* y = out + row * dim;
    float sum_sq = 0.0f;
    rmsnorm_detail::for_my_chunks<N>(x, dim, [&](int, const simt::Vec<T, N>& v) {
      for (int j = 0; j < N; ++j) {
        const float f = static_cast<float>(v.v[j]);
        sum_sq += f * f;
      }
    });
    sum_sq = simt::block_sum(sum_sq, simt::dynamic_shared<float>());
    const float r = 1.0f / ::sqrtf(sum_sq / static_cast<float>(dim) + eps);
    if (simt::thread_idx().x == 0) rstd[row] = r;
    rmsnorm_detail::for_my_chunks<N>(x, dim, [&](int i, const simt::Vec<T, N>& v) {
      simt::Vec<T, N> o;
      for (int j = 0; j < N; ++j) o.v[j] = T(static_cast<float>(v.v[j]) * r);
      simt::store_vec<N>(y + i, o);
    });
  }
};

template <class T, int N>
struct RmsNormBackwardKernel {
  static constexpr const char* name = "rmsnorm_backward";
  NANOCHAT_HOST_DEVICE void operator()(T* din, const T* dout, const T* in, const float* rstd,
                                       int dim, bool accumulate) const {
    const std::int64_t row = simt::block_idx().x;
    const T* x = in + row * dim;
    const T* dy = dout + row * dim;
    T* dx = din + row * dim;
    float dot = 0.0f;
    rmsnorm_detail::for_my_chunks<N>(x, dim, [&](int i, const simt::Vec<T, N>& xv) {
      const simt::Vec<T, N> gv = simt::load_vec<N>(dy + i);
      for (int j = 0; j < N; ++j) dot += static_cast<float>(gv.v[j]) * static_cast<float>(xv.v[j]);
    });
    dot = simt::block_sum(dot, simt::dynamic_shared<float>());
    const float r = rstd[row];
    const float coef = r * r * dot / static_cast<float>(dim);
    rmsnorm_detail::for_my_chunks<N>(x, dim, [&](int i, const simt::Vec<T, N>& xv) {
      const simt::Vec<T, N> gv = simt::load_vec<N>(dy + i);
      simt::Vec<T, N> o;
      if (accumulate) o = simt::load_vec<N>(dx + i);
      for (int j = 0; j < N; ++j) {
        const float base = accumulate ? static_cast<float>(o.v[j]) : 0.0f;
        o.v[j] = T(base + r * (static_cast<float>(gv.v[j]) - static_cast<float>(xv.v[j]) * coef));
      }
      simt::store_vec<N>(dx + i, o);
    });
  }
};

inline namespace NANOCHAT_CUDA_ABI {

template <class T>
void rmsnorm_forward(Cuda& cuda, CudaView<T> out, CudaView<float> rstd,
                     std::type_identity_t<CudaView<const T>> in,
                     float eps = rmsnorm_default_eps<T>()) {
  const RmsNormShape s = rmsnorm_shape(out, in, rstd, "rmsnorm_forward");
  if (s.rows == 0) return;
  const LaunchShape shape = rmsnorm_detail::launch_shape(s.rows);
  constexpr int V = rmsnorm_detail::vector_width<T>;
  if (rmsnorm_detail::vectorizable<T>(s.dim, {out.data(), in.data()})) {
    launch(cuda.device(), shape, RmsNormForwardKernel<T, V>{}, out.data(), rstd.data(), in.data(),
           s.dim, eps);
  } else {
    launch(cuda.device(), shape, RmsNormForwardKernel<T, 1>{}, out.data(), rstd.data(), in.data(),
           s.dim, eps);
  }
}

// din = d(loss)/d(in), or din += it with accumulate; din may alias dout when not accumulating.
template <class T>
void rmsnorm_backward(Cuda& cuda, CudaView<T> din,
                      std::type_identity_t<CudaView<const T>> dout,
                      std::type_identity_t<CudaView<const T>> in,
                      CudaView<const float> rstd, bool accumulate = false) {
  const RmsNormShape s = rmsnorm_shape(din, in, rstd, "rmsnorm_backward");
  check_shape(dout.shape(), in.shape(), "rmsnorm_backward: dout");
  NANOCHAT_CHECK(dout.is_contiguous(), "rmsnorm_backward: dout with shape ", dout.shape(),
                 " must be contiguous");
  if (s.rows == 0) return;
  const LaunchShape shape = rmsnorm_detail::launch_shape(s.rows);
  constexpr int V = rmsnorm_detail::vector_width<T>;
  if (rmsnorm_detail::vectorizable<T>(s.dim, {din.data(), dout.data(), in.data()})) {
    launch(cuda.device(), shape, RmsNormBackwardKernel<T, V>{}, din.data(), dout.data(), in.data(),
           rstd.data(), s.dim, accumulate);
  } else {
    launch(cuda.device(), shape, RmsNormBackwardKernel<T, 1>{}, din.data(), dout.data(), in.data(),
           rstd.data(), s.dim, accumulate);
  }
}

}  // namespace NANOCHAT_CUDA_ABI
}  // namespace nanochat::cuda
