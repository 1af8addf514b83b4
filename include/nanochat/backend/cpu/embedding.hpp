#pragma once
// Token embedding on the Cpu backend: a row gather forward (float or bf16 table), a row
// scatter-add backward.

#include <cstdint>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/core/bf16.hpp"

namespace nanochat::cpu {

namespace detail {
// Every id names a row of a table of `vocab` rows.
inline void check_token_ids(CpuView<const std::int32_t> ids, std::int64_t vocab, const char* op) {
  const std::int32_t* id = ids.data();
  for (std::int64_t i = 0; i < ids.numel(); ++i) {
    NANOCHAT_CHECK(id[i] >= 0 && id[i] < vocab, op, ": token id ", id[i], " at position ", i,
                   " is outside the vocabulary of ", vocab);
  }
}

template <class T>
void embedding_gather(CpuView<float> out, CpuView<const T> table, CpuView<const std::int32_t> ids) {
  const std::int64_t n = ids.numel(), dim = table.size(1);
  check_shape(out.shape(), Shape{n, dim}, "embedding_forward: out");
  NANOCHAT_CHECK(ids.is_contiguous() && table.is_contiguous() && out.is_contiguous(),
                 "embedding_forward: tensors must be contiguous");
  check_token_ids(ids, table.size(0), "embedding_forward");
  const std::int32_t* id = ids.data();
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const T* src = table.data() + static_cast<std::int64_t>(id[i]) * dim;
    float* dst = out.data() + i * dim;
    for (std::int64_t j = 0; j < dim; ++j) dst[j] = static_cast<float>(src[j]);
  }
}
}  // namespace detail

// out[i] = table[ids[i]]; an id outside the table is an error naming it.
inline void embedding_forward(Cpu&, CpuView<float> out, CpuView<const float> table,
                              CpuView<const std::int32_t> ids) {
  detail::embedding_gather(out, table, ids);
}

// A bf16 table (inference weights): the rows are widened to float, exactly.
inline void embedding_forward(Cpu&, CpuView<float> out, CpuView<const bf16> table,
                              CpuView<const std::int32_t> ids) {
  detail::embedding_gather(out, table, ids);
}

// dtable[ids[i]] += dout[i]. Threads own disjoint column ranges, so repeated ids never race.
inline void embedding_backward(Cpu&, CpuView<float> dtable, CpuView<const float> dout,
                               CpuView<const std::int32_t> ids) {
  const std::int64_t n = ids.numel(), dim = dtable.size(1);
  check_shape(dout.shape(), Shape{n, dim}, "embedding_backward: dout");
  NANOCHAT_CHECK(ids.is_contiguous() && dtable.is_contiguous() && dout.is_contiguous(),
                 "embedding_backward: tensors must be contiguous");
  detail::check_token_ids(ids, dtable.size(0), "embedding_backward");
  const std::int32_t* id = ids.data();
#pragma omp parallel
  {
#ifdef _OPENMP
    const std::int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
#else
    const std::int64_t threads = 1, t = 0;
#endif
    const std::int64_t begin = dim * t / threads, end = dim * (t + 1) / threads;
    for (std::int64_t i = 0; i < n; ++i) {
      float* dst = dtable.data() + static_cast<std::int64_t>(id[i]) * dim;
      const float* src = dout.data() + i * dim;
      for (std::int64_t j = begin; j < end; ++j) dst[j] += src[j];
    }
  }
}

}  // namespace nanochat::cpu
