// The SIMT facade on the emulator: indices, barriers, shuffles, reductions, mma.sync, shared
// memory and launch-shape checks. Built a second time under ThreadSanitizer, where every kernel here must
// run without a report and the kernel with a barrier removed must be reported.

#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <numeric>
#include <vector>

#include "nanochat/backend/cuda/simt.hpp"
#include "nanochat/backend/cuda/simt_mma.hpp"
#ifdef NANOCHAT_TSAN
#include "backend_cases.hpp"  // the whole Cpu and Cuda backends: only for the case run under TSan
#endif

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

// One 16x8x16 product per block: A [16][16] and B [16][8] row-major bf16, C and D [16][8] fp32.
// The fragments are gathered with the PTX ISA's formulas written out here (g = lane / 4 is the
// groupID, t = lane % 4 the threadID_in_group), independently of the facade's own.
struct MmaTile {
  static constexpr const char* name = "mma_tile";
  void operator()(float* d, const bf16* a, const bf16* b, const float* c) const {
    const unsigned lane = lane_id(), g = lane / 4, t = lane % 4, tile = block_idx().x;
    a += tile * 256;
    b += tile * 128;
    c += tile * 128;
    d += tile * 128;
    MmaA fa;
    MmaB fb;
    MmaAccumulator fc, fd;
    for (unsigned i = 0; i < 8; i += 2) {  // a_i and a_{i+1} share register i / 2
      const unsigned row = (i < 2 || (i >= 4 && i < 6)) ? g : g + 8, col = t * 2 + (i >= 4 ? 8 : 0);
      fa.reg[i / 2] = pack_bf16x2(a[row * 16 + col], a[row * 16 + col + 1]);
    }
    for (unsigned i = 0; i < 4; i += 2) {
      const unsigned row = t * 2 + (i >= 2 ? 8 : 0);
      fb.reg[i / 2] = pack_bf16x2(b[row * 8 + g], b[(row + 1) * 8 + g]);
    }
    for (unsigned i = 0; i < 4; ++i) fc.c[i] = c[(i < 2 ? g : g + 8) * 8 + t * 2 + (i & 1)];
    mma_bf16_m16n8k16(fd, fa, fb, fc);
    for (unsigned i = 0; i < 4; ++i) d[(i < 2 ? g : g + 8) * 8 + t * 2 + (i & 1)] = fd.c[i];
  }
};

// Loads the 16x16 matrix m[r][c] = 16 r + c (exact in bf16) from shared memory with ldmatrix;
// lane l gives the address of row l % 16 at column 8 (l / 16), so matrix i is the 8x8 block at
// rows 8 (i % 2), columns 8 (i / 2). Lane l's registers go to out[4 l + i].
template <int N, bool Transpose>
struct LoadMatrices {
  static constexpr const char* name = "load_matrices";
  void operator()(std::uint32_t* out) const {
    constexpr unsigned stride = 24;  // 48-byte rows: 16-byte aligned, as ldmatrix needs
    bf16* m = dynamic_shared<bf16>();
    for (unsigned i = lane_id(); i < 16 * 16; i += warp_size) m[i / 16 * stride + i % 16] = bf16(static_cast<float>(i));
    sync_threads();
    const unsigned lane = lane_id();
    std::uint32_t regs[N];
    load_matrices<N, Transpose>(regs, m + (lane % 16) * stride + 8 * (lane / 16));
    for (unsigned i = 0; i < N; ++i) out[4 * lane + i] = regs[i];
  }
};

// A 16-thread block: half a warp issues an instruction the whole warp must.
struct MmaInPartialWarp {
  static constexpr const char* name = "mma_in_partial_warp";
  void operator()(float* out) const {
    MmaAccumulator d;
    mma_bf16_m16n8k16(d, MmaA{}, MmaB{}, MmaAccumulator{});
    out[lane_id()] = d.c[0];
  }
};

// ldmatrix .x4 with lane l pointing at row l % 16, column 8 (l / 16) of a 16 x 24 bf16 tile
// that starts `offset` elements into shared memory, or at `global` where that is given; lanes
// from `lanes` on return first. Each use breaks one rule ldmatrix has (see the fault cases).
struct LoadMatricesBreakingARule {
  static constexpr const char* name = "load_matrices_breaking_a_rule";
  static constexpr unsigned stride = 24, shared_bytes = 16 * stride * sizeof(bf16);
  void operator()(const bf16* global, unsigned offset, unsigned lanes, std::uint32_t* out) const {
    const unsigned lane = lane_id();
    if (lane >= lanes) return;
    const bf16* tile = global != nullptr ? global : dynamic_shared<bf16>() + offset;
    std::uint32_t regs[4];
    load_matrices<4>(regs, tile + (lane % 16) * stride + 8 * (lane / 16));
    out[lane] = regs[0];
  }
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

#ifdef NANOCHAT_TSAN
// Built and run only under ThreadSanitizer (test_backend runs the same cases in normal builds):
// the FlashAttention-2 kernels, barriers, shuffles and mma exchanges included, without a report.
TEST_CASE("FlashAttention-2 on the emulated device races nowhere" * doctest::skip()) {
  cuda::EmulatedDevice device;
  testing::Cuda cuda(device);
  testing::check_attention_shapes(cuda);
}
#endif

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

// The faults below stop the process, as the GPU would kill the context; tests/simt/CMakeLists.txt
// runs each in its own process and looks for the emulator's message.
TEST_CASE("fault: a shuffle that reads a lane that has exited" * doctest::skip()) {
  std::vector<float> out(32);
  emulator::launch({{1, 1, 1}, {32, 1, 1}, 0}, "shuffle_after_exit", ShuffleAfterExit{}, out.data());
}

TEST_CASE("fault: mma.sync issued by a partial warp" * doctest::skip()) {
  std::vector<float> out(16);
  emulator::launch({{1, 1, 1}, {16, 1, 1}, 0}, MmaInPartialWarp::name, MmaInPartialWarp{}, out.data());
}

namespace {
void launch_load_matrices(unsigned threads, const bf16* global, unsigned offset, unsigned lanes) {
  std::vector<std::uint32_t> out(32);
  emulator::launch({{1, 1, 1}, {threads, 1, 1}, LoadMatricesBreakingARule::shared_bytes}, LoadMatricesBreakingARule::name,
                   LoadMatricesBreakingARule{}, global, offset, lanes, out.data());
}
}  // namespace

TEST_CASE("fault: ldmatrix from a row address that is not 16-byte aligned" * doctest::skip()) {
  launch_load_matrices(32, nullptr, 1, 32);
}

TEST_CASE("fault: ldmatrix issued by a partial warp" * doctest::skip()) {
  launch_load_matrices(16, nullptr, 0, 16);
}

TEST_CASE("fault: ldmatrix in a warp whose last lane has exited" * doctest::skip()) {
  launch_load_matrices(32, nullptr, 0, 31);
}

TEST_CASE("fault: ldmatrix from a row in global memory" * doctest::skip()) {
  alignas(16) static bf16 global[16 * LoadMatricesBreakingARule::stride];
  launch_load_matrices(32, global, 0, 32);
}

TEST_CASE("fault: a vector load from a misaligned address" * doctest::skip()) {
  alignas(16) float in[8] = {};
  float out[1] = {};
  const float* src = in;
  float* dst = out;
  emulator::launch({{1, 1, 1}, {32, 1, 1}, 0}, "misaligned_load", MisalignedLoad{}, src, dst);
}

// Every pattern's entries are small integers, exact in bf16 and in any fp32 summation order, so
// the emulator must equal the plain product exactly. A one-hot A (one per element) picks one row
// of B into one row of D, a one-hot B one column of A into one column of D: an element a lane
// takes from the wrong place moves or loses a distinct value.
TEST_CASE("mma.sync m16n8k16 bf16 equals the plain product for identity, one-hot and random tiles") {
  std::vector<std::vector<float>> as, bs, cs;
  auto tile = [](int rows, int cols, auto f) {
    std::vector<float> m(static_cast<std::size_t>(rows * cols));
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < cols; ++j) m[static_cast<std::size_t>(i * cols + j)] = static_cast<float>(f(i, j));
    return m;
  };
  auto distinct = [](int i, int j) { return i * 16 + j + 1; };
  auto zero = [](int, int) { return 0; };
  auto add = [&](std::vector<float> a, std::vector<float> b, std::vector<float> c) {
    as.push_back(std::move(a));
    bs.push_back(std::move(b));
    cs.push_back(std::move(c));
  };
  add(tile(16, 16, [](int i, int j) { return i == j; }), tile(16, 8, distinct), tile(16, 8, zero));
  for (int r = 0; r < 16; ++r)
    for (int k = 0; k < 16; ++k)
      add(tile(16, 16, [&](int i, int j) { return i == r && j == k; }), tile(16, 8, distinct), tile(16, 8, zero));
  for (int k = 0; k < 16; ++k)
    for (int n = 0; n < 8; ++n)
      add(tile(16, 16, distinct), tile(16, 8, [&](int i, int j) { return i == k && j == n; }), tile(16, 8, zero));
  add(tile(16, 16, zero), tile(16, 8, zero), tile(16, 8, [](int i, int j) { return -(i * 8 + j) - 1; }));
  add(tile(16, 16, [](int i, int j) { return (i * 7 + j * 3) % 11 - 5; }),
      tile(16, 8, [](int i, int j) { return (i * 5 + j * 13) % 9 - 4; }), tile(16, 8, [](int i, int j) { return i - j; }));
  const auto tiles = static_cast<unsigned>(as.size());
  std::vector<bf16> a, b;
  std::vector<float> c, want;
  for (unsigned p = 0; p < tiles; ++p) {
    for (float x : as[p]) a.push_back(bf16(x));
    for (float x : bs[p]) b.push_back(bf16(x));
    c.insert(c.end(), cs[p].begin(), cs[p].end());
    for (int i = 0; i < 16; ++i)
      for (int n = 0; n < 8; ++n) {
        float acc = cs[p][static_cast<std::size_t>(i * 8 + n)];
        for (int k = 0; k < 16; ++k) acc += as[p][static_cast<std::size_t>(i * 16 + k)] * bs[p][static_cast<std::size_t>(k * 8 + n)];
        want.push_back(acc);
      }
  }
  std::vector<float> d(want.size(), -999.0f);
  emulator::launch({{tiles, 1, 1}, {32, 1, 1}, 0}, MmaTile::name, MmaTile{}, d.data(), a.data(), b.data(), c.data());
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < d.size(); ++i) wrong += d[i] != want[i];
  CHECK(wrong == 0);
}

// The PTX ISA's ldmatrix layout written out: register i of lane l holds row l / 4 of matrix i,
// columns 2 (l % 4) and + 1, low half first; .trans the same of the transposed matrix.
TEST_CASE("ldmatrix x1, x2 and x4, plain and transposed, hand each lane the elements the PTX ISA says") {
  const auto check = [](auto kernel, unsigned n, bool transpose) {
    CAPTURE(n);
    CAPTURE(transpose);
    std::vector<std::uint32_t> out(128, 0);
    emulator::launch({{1, 1, 1}, {32, 1, 1}, 16 * 24 * sizeof(bf16)}, "load_matrices", kernel, out.data());
    int wrong = 0;
    for (unsigned lane = 0; lane < 32; ++lane)
      for (unsigned i = 0; i < n; ++i) {
        const unsigned row0 = 8 * (i % 2), col0 = 8 * (i / 2), g = lane / 4, pair = 2 * (lane % 4);
        const auto value = [&](unsigned e) {
          return transpose ? 16 * (row0 + pair + e) + col0 + g : 16 * (row0 + g) + col0 + pair + e;
        };
        const std::uint32_t reg = out[4 * lane + i];
        wrong += static_cast<float>(bf16::from_bits(static_cast<std::uint16_t>(reg & 0xffff))) != static_cast<float>(value(0));
        wrong += static_cast<float>(bf16::from_bits(static_cast<std::uint16_t>(reg >> 16))) != static_cast<float>(value(1));
      }
    CHECK(wrong == 0);
  };
  check(LoadMatrices<1, false>{}, 1, false);
  check(LoadMatrices<1, true>{}, 1, true);
  check(LoadMatrices<2, false>{}, 2, false);
  check(LoadMatrices<2, true>{}, 2, true);
  check(LoadMatrices<4, false>{}, 4, false);
  check(LoadMatrices<4, true>{}, 4, true);
}
