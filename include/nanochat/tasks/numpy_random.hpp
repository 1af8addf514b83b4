#pragma once
// numpy's default random generator, as far as Hugging Face's Dataset.shuffle(seed) uses it:
// datasets builds np.random.default_rng(seed) and takes generator.permutation(len(dataset))
// (src/datasets/arrow_dataset.py, Dataset.shuffle). Reproduced bit for bit from numpy's source
// (numpy/random/bit_generator.pyx, _pcg64.pyx, src/pcg64/pcg64.{h,c}, _generator.pyx,
// src/distributions/distributions.c):
//   SeedSequence(seed): the seed's 32-bit words hashed into a pool of 4 words (mix_entropy),
//     then generate_state(4, uint64): 8 hashed words, pairs read little-endian as 4 uint64.
//   PCG64 (XSL-RR 128/64): state = words 0-1, increment = words 2-3 (high word first), set
//     with pcg's srandom_r; each output steps the LCG, then rotates hi^lo by hi >> 122.
//   next_uint32: the low half of one 64-bit output, then its high half.
//   permutation(n) = shuffle(arange(n)): for i = n-1 down to 1, swap i with
//     random_interval(i), the smallest mask >= i applied to next_uint32 until <= i.
// Checked against numpy's own output (tests/reference/make_numpy_random_fixtures.py).

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "nanochat/core/error.hpp"

namespace nanochat::tasks {

// numpy's SeedSequence(seed).generate_state(4, np.uint64) for a non-negative integer seed.
inline std::array<std::uint64_t, 4> numpy_seed_state(std::uint64_t seed) {
  constexpr std::uint32_t kInitA = 0x43b0d7e5, kMultA = 0x931e8875, kInitB = 0x8b51f9dd, kMultB = 0x58f38ded;
  constexpr std::uint32_t kMixMultL = 0xca01f9dd, kMixMultR = 0x4973f715;
  constexpr int kXShift = 16;
  // The entropy's 32-bit words, least significant first; 0 is one word.
  std::uint32_t entropy[2] = {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
  const std::size_t words = (seed >> 32) != 0 ? 2 : 1;

  std::uint32_t hash_const = kInitA;
  const auto hashmix = [&hash_const](std::uint32_t value) {
    value ^= hash_const;
    hash_const *= kMultA;
    value *= hash_const;
    return value ^ (value >> kXShift);
  };
  const auto mix = [](std::uint32_t x, std::uint32_t y) {
    const std::uint32_t r = kMixMultL * x - kMixMultR * y;
    return r ^ (r >> kXShift);
  };
  std::array<std::uint32_t, 4> pool{};
  for (std::size_t i = 0; i < pool.size(); ++i) pool[i] = hashmix(i < words ? entropy[i] : 0);
  for (std::size_t src = 0; src < pool.size(); ++src) {
    for (std::size_t dst = 0; dst < pool.size(); ++dst) {
      if (src != dst) pool[dst] = mix(pool[dst], hashmix(pool[src]));
    }
  }
  // At most 2 entropy words < pool size 4: mix_entropy's loop over extra words never runs.

  std::uint32_t state_const = kInitB;
  std::array<std::uint32_t, 8> state32{};
  for (std::size_t i = 0; i < state32.size(); ++i) {
    std::uint32_t value = pool[i % pool.size()] ^ state_const;
    state_const *= kMultB;
    value *= state_const;
    state32[i] = value ^ (value >> kXShift);
  }
  std::array<std::uint64_t, 4> out{};
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = state32[2 * i] | (std::uint64_t{state32[2 * i + 1]} << 32);
  }
  return out;
}

// np.random.default_rng(seed): the PCG64 bit generator and the Generator methods used here.
class NumpyRandom {
 public:
  explicit NumpyRandom(std::uint64_t seed) {
    const auto words = numpy_seed_state(seed);
    const u128 initstate = (u128{words[0]} << 64) | words[1];
    const u128 initseq = (u128{words[2]} << 64) | words[3];
    inc_ = (initseq << 1) | 1;
    step();
    state_ += initstate;
    step();
  }

  // PCG64's next_uint64 (bit_generator.random_raw()).
  std::uint64_t next64() {
    step();
    const auto high = static_cast<std::uint64_t>(state_ >> 64);
    const auto rot = static_cast<unsigned>(state_ >> 122);
    const std::uint64_t x = high ^ static_cast<std::uint64_t>(state_);
    return (x >> rot) | (x << ((64 - rot) & 63));
  }

  // PCG64's next_uint32: one 64-bit output serves two calls, low half first.
  std::uint32_t next32() {
    if (has_half_) {
      has_half_ = false;
      return half_;
    }
    const std::uint64_t next = next64();
    has_half_ = true;
    half_ = static_cast<std::uint32_t>(next >> 32);
    return static_cast<std::uint32_t>(next);
  }

  // Generator.shuffle of a 1-d array, in place.
  template <class T>
  void shuffle(std::span<T> items) {
    // Bounds above 2^32 - 1 would draw 64-bit words (random_interval's other branch).
    NANOCHAT_CHECK(items.size() <= (std::size_t{1} << 32), "NumpyRandom::shuffle: ", items.size(),
                   " items exceed 2^32");
    for (std::size_t i = items.size(); i-- > 1;) std::swap(items[i], items[interval(static_cast<std::uint32_t>(i))]);
  }

  // Generator.permutation(n): 0..n-1 shuffled.
  template <class T = std::uint64_t>
  std::vector<T> permutation(std::size_t n) {
    std::vector<T> out(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<T>(i);
    shuffle(std::span<T>(out));
    return out;
  }

 private:
  __extension__ typedef unsigned __int128 u128;  // GCC and Clang; -Wpedantic accepts it so marked
  // PCG's default 128-bit multiplier, 2549297995355413924 * 2^64 + 4865540595714422341.
  static constexpr u128 kMultiplier = (u128{2549297995355413924ULL} << 64) | 4865540595714422341ULL;

  void step() { state_ = state_ * kMultiplier + inc_; }

  // random_interval(max) for max < 2^32: uniform in 0..max by masked rejection.
  std::uint32_t interval(std::uint32_t max) {
    std::uint32_t mask = max;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    std::uint32_t value;
    while ((value = next32() & mask) > max) {
    }
    return value;
  }

  u128 state_ = 0;
  u128 inc_ = 0;
  bool has_half_ = false;
  std::uint32_t half_ = 0;
};

}  // namespace nanochat::tasks
