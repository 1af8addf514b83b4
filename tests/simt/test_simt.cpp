// The SIMT facade on the emulator: indices, barriers, shuffles, reductions, shared memory and
// launch-shape checks. Built a second time under ThreadSanitizer, where every kernel here must
// run without a report and the kernel with a barrier removed must be reported.

#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <numeric>
#include <vector>

#include "nanochat/backend/cuda/simt.hpp"

using namespace nanochat;
using namespace nanochat::simt;

namespace {

struct RecordIds {
  static constexpr const char* name = "record_ids";
  void operator()(std::atomic<int>* hits, unsigned* warp_of) const {
    const Dim3 b = block_idx(), g = grid_dim();
    const unsigned block = b.x + g.x * (b.y + g.y * b.z);
    const unsigned global = block * block_threads() + linear_thread();
    hits[global].fetch_add(1);
    warp_of[global] = warp_id() * warp_size + lane_id();
  }
};

struct NeighbourExchange {
  static constexpr const char* name = "neighbour_exchange";
  void operator()(int* out) const {
    int* tile = dynamic_shared<int>();
    const unsigned t = thread_idx().x, n = block_dim().x;
    tile[t] = static_cast<int>(block_idx().x * 1000 + t);
    sync_threads();
    out[block_idx().x * n + t] = tile[(t + 1) % n];
  }
};

struct WarpSums {
  static constexpr const char* name = "warp_sums";
  void operator()(float* sums, float* maxima) const {
    const float v = static_cast<float>(linear_thread());
    sums[linear_thread()] = warp_reduce(v, Sum{});
    maxima[linear_thread()] = warp_reduce(v, Max{});
  }
};

struct BlockSums {
  static constexpr const char* name = "block_sums";
  void operator()(double* out) const {
    double* scratch = dynamic_shared<double>();
    const double v = static_cast<double>(block_idx().x * 10000 + linear_thread());
    // Two reductions back to back on the same scratch: the closing barrier makes it safe.
    const double first = block_sum(v, scratch);
    const double second = block_reduce(v, scratch, Max{}, -1.0);
    if (linear_thread() == 0) {
      out[2 * block_idx().x] = first;
      out[2 * block_idx().x + 1] = second;
    }
  }
};

struct EarlyExit {
  static constexpr const char* name = "early_exit";
  void operator()(int* out, unsigned active) const {
    if (thread_idx().x >= active) return;  // returned threads must not block the barrier
    int* tile = dynamic_shared<int>();
    tile[thread_idx().x] = 1;
    sync_threads();
    int total = 0;
    for (unsigned i = 0; i < active; ++i) total += tile[i];
    out[thread_idx().x] = total;
  }
};

struct ReadUnwrittenShared {
  static constexpr const char* name = "read_unwritten_shared";
  void operator()(float* out) const { out[thread_idx().x] = dynamic_shared<float>()[thread_idx().x]; }
};

// Sums a block's values through shared memory. With `barrier` false, thread 0 reads the other
// threads' slots with nothing ordering their writes before its reads: a data race.
struct SharedSum {
  static constexpr const char* name = "shared_sum";
  void operator()(float* out, bool barrier) const {
    float* slots = dynamic_shared<float>();
    slots[thread_idx().x] = 1.0f;
    if (barrier) sync_threads();
    if (thread_idx().x == 0) {
      float total = 0.0f;
      for (unsigned i = 0; i < block_dim().x; ++i) total += slots[i];
      out[block_idx().x] = total;
    }
  }
};

// Lanes 20..31 return, the others shuffle across the whole warp: undefined on a GPU.
struct ShuffleAfterExit {
  static constexpr const char* name = "shuffle_after_exit";
  void operator()(float* out) const {
    if (lane_id() >= 20) return;
    out[lane_id()] = warp_reduce(1.0f, Sum{});
  }
};

struct MisalignedLoad {
  static constexpr const char* name = "misaligned_load";
  void operator()(const float* in, float* out) const { out[0] = load_vec<4>(in + 1).v[0]; }
};

}  // namespace

TEST_CASE("every thread of a 3-D grid of 3-D blocks runs once, numbered as CUDA numbers it") {
  const LaunchShape shape{{3, 2, 2}, {8, 4, 2}, 0};
  const auto total = static_cast<unsigned>(shape.grid.count() * shape.block.count());
  std::vector<std::atomic<int>> hits(total);
  std::vector<unsigned> warp_of(total, ~0u);
  emulator::launch(shape, "record_ids", RecordIds{}, hits.data(), warp_of.data());
  for (unsigned i = 0; i < total; ++i) {
    REQUIRE(hits[i].load() == 1);
    CHECK(warp_of[i] == i % static_cast<unsigned>(shape.block.count()));  // warp * 32 + lane
  }
}

TEST_CASE("a barrier orders shared-memory writes before reads of other threads") {
  const unsigned blocks = 5, threads = 96;
  std::vector<int> out(blocks * threads, -1);
  emulator::launch({{blocks, 1, 1}, {threads, 1, 1}, threads * sizeof(int)}, "neighbour_exchange",
                   NeighbourExchange{}, out.data());
  for (unsigned b = 0; b < blocks; ++b)
    for (unsigned t = 0; t < threads; ++t)
      CHECK(out[b * threads + t] == static_cast<int>(b * 1000 + (t + 1) % threads));
}

TEST_CASE("warp shuffles reduce within each warp, never across warps") {
  const unsigned threads = 128;
  std::vector<float> sums(threads), maxima(threads);
  emulator::launch({{1, 1, 1}, {threads, 1, 1}, 0}, "warp_sums", WarpSums{}, sums.data(),
                   maxima.data());
  for (unsigned t = 0; t < threads; ++t) {
    const unsigned first = t / 32 * 32;
    CHECK(sums[t] == doctest::Approx(32.0 * first + 496.0));  // first*32 + (0 + ... + 31)
    CHECK(maxima[t] == static_cast<float>(first + 31));
  }
}

TEST_CASE("block reductions give every thread the block's sum and max, and can run back to back") {
  for (unsigned threads : {32u, 64u, 256u, 1024u}) {
    CAPTURE(threads);
    const unsigned blocks = 3;
    std::vector<double> out(2 * blocks);
    emulator::launch({{blocks, 1, 1}, {threads, 1, 1}, 32 * sizeof(double)}, "block_sums",
                     BlockSums{}, out.data());
    for (unsigned b = 0; b < blocks; ++b) {
      const double base = b * 10000.0;
      CHECK(out[2 * b] == base * threads + threads * (threads - 1) / 2.0);
      CHECK(out[2 * b + 1] == base + threads - 1);
    }
  }
}

TEST_CASE("threads that return early leave the barrier to the others") {
  const unsigned threads = 128, active = 40;
  std::vector<int> out(threads, -1);
  emulator::launch({{2, 1, 1}, {threads, 1, 1}, threads * sizeof(int)}, "early_exit", EarlyExit{},
                   out.data(), active);
  for (unsigned t = 0; t < threads; ++t) CHECK(out[t] == (t < active ? static_cast<int>(active) : -1));
}

TEST_CASE("shared memory a block never wrote reads as NaN, not as a previous block's data") {
  std::vector<float> out(32, 0.0f);
  emulator::launch({{1, 1, 1}, {32, 1, 1}, 32 * sizeof(float)}, "read_unwritten_shared",
                   ReadUnwrittenShared{}, out.data());
  for (float v : out) CHECK(std::isnan(v));
}

TEST_CASE("the kernel with its barrier sums correctly") {
  std::vector<float> out(4, 0.0f);
  emulator::launch({{4, 1, 1}, {64, 1, 1}, 64 * sizeof(float)}, "shared_sum", SharedSum{},
                   out.data(), true);
  for (float v : out) CHECK(v == 64.0f);
}

// Run only under ThreadSanitizer (the TSan build runs it with --no-skip and requires a race
// report): without the barrier the result is whatever the schedule gives.
TEST_CASE("the same kernel with its barrier removed races" * doctest::skip()) {
  std::vector<float> out(4, 0.0f);
  emulator::launch({{4, 1, 1}, {64, 1, 1}, 64 * sizeof(float)}, "shared_sum", SharedSum{},
                   out.data(), false);
  MESSAGE("sums without the barrier: " << out[0] << " " << out[1] << " " << out[2] << " " << out[3]);
}

TEST_CASE("launch shapes a GPU rejects are rejected with the kernel's name") {
  auto launch_with = [](LaunchShape s) {
    std::vector<float> out(8);
    emulator::launch(s, "shared_sum", SharedSum{}, out.data(), true);
  };
  CHECK_THROWS_WITH(launch_with({{1, 1, 1}, {2048, 1, 1}, 0}),
                    doctest::Contains("launch of shared_sum: a block of 2048x1x1 threads"));
  CHECK_THROWS_WITH(launch_with({{1, 70000, 1}, {32, 1, 1}, 0}),
                    doctest::Contains("grid 1x70000x1 exceeds"));
  // Extents whose product would wrap a 32-bit count are caught dimension by dimension.
  CHECK_THROWS_WITH(launch_with({{1, 1, 1}, {1u << 16, 1u << 16, 2}, 0}),
                    doctest::Contains("per-dimension limits"));
  CHECK_THROWS_WITH(launch_with({{1, 1, 1}, {32, 1, 1}, 300 * 1024}),
                    doctest::Contains("bytes of shared memory exceed"));
}

// The two faults below stop the process, as the GPU would kill the context; tests/simt/CMakeLists.txt
// runs each in its own process and looks for the emulator's message.
TEST_CASE("fault: a shuffle that reads a lane that has exited" * doctest::skip()) {
  std::vector<float> out(32);
  emulator::launch({{1, 1, 1}, {32, 1, 1}, 0}, "shuffle_after_exit", ShuffleAfterExit{}, out.data());
}

TEST_CASE("fault: a vector load from a misaligned address" * doctest::skip()) {
  alignas(16) float in[8] = {};
  float out[1] = {};
  const float* src = in;
  float* dst = out;
  emulator::launch({{1, 1, 1}, {32, 1, 1}, 0}, "misaligned_load", MisalignedLoad{}, src, dst);
}
