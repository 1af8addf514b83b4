#pragma once
// The communicator's collectives against a reference computed locally: every rank's input is a
// known function of (rank, element), so each rank knows what every collective must yield. Sizes
// are odd (1, 7, 333, 1001 elements, chunks of 7 and 333) so that nothing divides the world size
// by luck. The values are multiples of 1/8 under 2^20, so sums are exact in any order; an
// average is compared within one rounding. Returns the mismatches found, "" when none.
// Buffers come from `memory` (HostMemory for MPI; device memory, host-addressable, for the
// emulated NCCL): memory.get<T>(n) returns a span that lives as long as `memory`.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/dist/communicator.hpp"

namespace nanochat_dist_test {

using nanochat::cat;
using namespace nanochat::dist;

inline float input(int rank, std::size_t i) { return static_cast<float>((rank + 1) * 3 + static_cast<int>(i % 97)) / 8.0f; }

inline float sum_of_inputs(int world, std::size_t i) {
  float s = 0.0f;
  for (int r = 0; r < world; ++r) s += input(r, i);
  return s;
}

struct HostMemory {
  template <class T>
  std::span<T> get(std::size_t n) {
    blocks.push_back(std::make_unique<char[]>(n * sizeof(T)));
    return {reinterpret_cast<T*>(blocks.back().get()), n};
  }
  std::vector<std::unique_ptr<char[]>> blocks;
};

template <class Memory = HostMemory>
std::string check_collectives(Communicator& comm, Memory&& memory = {}) {
  const int w = comm.size(), me = comm.rank();
  std::string errors;
  auto expect = [&](const char* what, std::size_t n, std::size_t i, float got, float want, float tolerance = 0.0f) {
    if (std::fabs(got - want) > tolerance * std::fabs(want) && errors.size() < 2000) {
      errors += cat("rank ", me, ": ", what, " of ", n, " elements: element ", i, " is ", got, ", want ", want, "\n");
    }
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{1001}}) {
    const std::span<float> x = memory.template get<float>(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = input(me, i);
    comm.all_reduce(x, ReduceOp::sum);
    for (std::size_t i = 0; i < n; ++i) expect("all_reduce(sum)", n, i, x[i], sum_of_inputs(w, i));
    for (std::size_t i = 0; i < n; ++i) x[i] = input(me, i);
    comm.all_reduce(x, ReduceOp::average);
    for (std::size_t i = 0; i < n; ++i) expect("all_reduce(average)", n, i, x[i], sum_of_inputs(w, i) / static_cast<float>(w), 1e-6f);
    const std::span<double> d = memory.template get<double>(n);
    for (std::size_t i = 0; i < n; ++i) d[i] = input(me, i);
    comm.all_reduce(d, ReduceOp::sum);
    for (std::size_t i = 0; i < n; ++i) expect("all_reduce(double sum)", n, i, static_cast<float>(d[i]), sum_of_inputs(w, i));
    for (int root = 0; root < w; ++root) {
      for (std::size_t i = 0; i < n; ++i) x[i] = me == root ? input(root, i) : nan;
      comm.broadcast(x, root);
      for (std::size_t i = 0; i < n; ++i) expect("broadcast", n, i, x[i], input(root, i));
      for (std::size_t i = 0; i < n; ++i) x[i] = input(me, i);
      comm.reduce(x, ReduceOp::average, root);
      if (me == root)
        for (std::size_t i = 0; i < n; ++i) expect("reduce(average)", n, i, x[i], sum_of_inputs(w, i) / static_cast<float>(w), 1e-6f);
    }
  }
  for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{333}}) {
    const std::size_t n = chunk * static_cast<std::size_t>(w);
    const Chunk mine = chunk_of(n, w, me);
    const std::span<float> x = memory.template get<float>(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = input(me, i);
    comm.reduce_scatter(x, ReduceOp::sum);
    for (std::size_t i = mine.offset; i < mine.offset + mine.count; ++i) expect("reduce_scatter", n, i, x[i], sum_of_inputs(w, i));
    for (std::size_t i = 0; i < n; ++i) x[i] = input(me, i);
    comm.reduce_scatter(x, ReduceOp::average);
    for (std::size_t i = mine.offset; i < mine.offset + mine.count; ++i)
      expect("reduce_scatter(average)", n, i, x[i], sum_of_inputs(w, i) / static_cast<float>(w), 1e-6f);
    // Chunk r comes from rank r; what the others held there before must not survive.
    for (std::size_t i = 0; i < n; ++i) x[i] = i >= mine.offset && i < mine.offset + mine.count ? input(me, i) : nan;
    comm.all_gather(x);
    for (std::size_t i = 0; i < n; ++i) expect("all_gather", n, i, x[i], input(static_cast<int>(i / chunk), i));
  }
  const std::span<char> text = memory.template get<char>(16);
  const std::string said = me == 0 ? "from rank 0" : "";
  std::fill(text.begin(), text.end(), ' ');
  std::copy(said.begin(), said.end(), text.begin());
  comm.broadcast(text, 0);
  const std::string got(text.begin(), text.end());
  if (got.rfind("from rank 0", 0) != 0) errors += cat("rank ", me, ": broadcast of chars gave '", got, "'\n");
  comm.barrier();
  return errors;
}

}  // namespace nanochat_dist_test
