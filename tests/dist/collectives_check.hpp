#pragma once
// The communicator's collectives against a reference computed locally: every rank's input is a
// known function of (rank, element), so each rank knows what every collective must yield. Sizes
// are odd (1, 7, 333, 1001 elements, chunks of 7 and 333) so that nothing divides the world size
// by luck. The values are multiples of 1/8 under 2^20, so sums are exact in any order; an
// average is compared within one rounding. Returns the mismatches found, "" when none.

#include <cmath>
#include <cstddef>
#include <limits>
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

inline std::string check_collectives(Communicator& comm) {
  const int w = comm.size(), me = comm.rank();
  std::string errors;
  auto expect = [&](const char* what, std::size_t n, std::size_t i, float got, float want, float tolerance = 0.0f) {
    if (std::fabs(got - want) > tolerance * std::fabs(want) && errors.size() < 2000) {
      errors += cat("rank ", me, ": ", what, " of ", n, " elements: element ", i, " is ", got, ", want ", want, "\n");
    }
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{1001}}) {
    std::vector<float> x(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = input(me, i);
    comm.all_reduce(std::span<float>(x), ReduceOp::sum);
    for (std::size_t i = 0; i < n; ++i) expect("all_reduce(sum)", n, i, x[i], sum_of_inputs(w, i));
    for (std::size_t i = 0; i < n; ++i) x[i] = input(me, i);
    comm.all_reduce(std::span<float>(x), ReduceOp::average);
    for (std::size_t i = 0; i < n; ++i) expect("all_reduce(average)", n, i, x[i], sum_of_inputs(w, i) / static_cast<float>(w), 1e-6f);
    std::vector<double> d(n);
    for (std::size_t i = 0; i < n; ++i) d[i] = input(me, i);
    comm.all_reduce(std::span<double>(d), ReduceOp::sum);
    for (std::size_t i = 0; i < n; ++i) expect("all_reduce(double sum)", n, i, static_cast<float>(d[i]), sum_of_inputs(w, i));
    for (int root = 0; root < w; ++root) {
      for (std::size_t i = 0; i < n; ++i) x[i] = me == root ? input(root, i) : nan;
      comm.broadcast(std::span<float>(x), root);
      for (std::size_t i = 0; i < n; ++i) expect("broadcast", n, i, x[i], input(root, i));
      for (std::size_t i = 0; i < n; ++i) x[i] = input(me, i);
      comm.reduce(std::span<float>(x), ReduceOp::average, root);
      if (me == root)
        for (std::size_t i = 0; i < n; ++i) expect("reduce(average)", n, i, x[i], sum_of_inputs(w, i) / static_cast<float>(w), 1e-6f);
    }
  }
  for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{333}}) {
    const std::size_t n = chunk * static_cast<std::size_t>(w);
    const Chunk mine = chunk_of(n, w, me);
    std::vector<float> x(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = input(me, i);
    comm.reduce_scatter(std::span<float>(x), ReduceOp::sum);
    for (std::size_t i = mine.offset; i < mine.offset + mine.count; ++i) expect("reduce_scatter", n, i, x[i], sum_of_inputs(w, i));
    for (std::size_t i = 0; i < n; ++i) x[i] = input(me, i);
    comm.reduce_scatter(std::span<float>(x), ReduceOp::average);
    for (std::size_t i = mine.offset; i < mine.offset + mine.count; ++i)
      expect("reduce_scatter(average)", n, i, x[i], sum_of_inputs(w, i) / static_cast<float>(w), 1e-6f);
    // Chunk r comes from rank r; what the others held there before must not survive.
    for (std::size_t i = 0; i < n; ++i) x[i] = i >= mine.offset && i < mine.offset + mine.count ? input(me, i) : nan;
    comm.all_gather(std::span<float>(x));
    for (std::size_t i = 0; i < n; ++i) expect("all_gather", n, i, x[i], input(static_cast<int>(i / chunk), i));
  }
  std::string text = me == 0 ? "from rank 0" : "";
  text.resize(16, ' ');
  comm.broadcast(std::span<char>(text), 0);
  if (text.rfind("from rank 0", 0) != 0) errors += cat("rank ", me, ": broadcast of chars gave '", text, "'\n");
  comm.barrier();
  return errors;
}

}  // namespace nanochat_dist_test
