#pragma once
// CPython's random.Random (MT19937), only the parts nanochat's tasks use: seeding from an
// integer, random(), getrandbits, randbelow/randrange, choice, shuffle and sample. It reproduces
// Python's streams exactly, so a mixture's order, the SpellingBee / SimpleSpelling conversations
// and CORE's few-shot examples are the ones nanochat uses (spec §6.5). Seeding follows CPython: the key is the
// 32-bit words of |seed|, least significant first (so Random(-n) == Random(n)).

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <unordered_set>
#include <utility>
#include <vector>

#include "nanochat/core/error.hpp"

namespace nanochat::tasks {

class PythonRandom {
 public:
  explicit PythonRandom(std::int64_t seed) {
    const std::uint64_t magnitude =
        seed < 0 ? std::uint64_t{0} - static_cast<std::uint64_t>(seed) : static_cast<std::uint64_t>(seed);
    seed_words(magnitude);
  }
  static PythonRandom from_unsigned(std::uint64_t seed) {
    PythonRandom rng(0);
    rng.seed_words(seed);
    return rng;
  }

  std::uint32_t next_u32() {
    if (index_ >= kN) twist();
    std::uint32_t y = state_[index_++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
  }

  // random.random(): 53 random bits in [0, 1).
  double random() {
    const std::uint32_t a = next_u32() >> 5;
    const std::uint32_t b = next_u32() >> 6;
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
  }

  // random.getrandbits(k) for k <= 64: 32-bit words, least significant first, the last one
  // shifted down to the bits still wanted.
  std::uint64_t getrandbits(int bits) {
    NANOCHAT_CHECK(bits >= 0 && bits <= 64, "PythonRandom::getrandbits: ", bits, " bits is outside 0..64");
    std::uint64_t out = 0;
    for (int shift = 0; bits > 0; shift += 32, bits -= 32) {
      std::uint64_t word = next_u32();
      if (bits < 32) word >>= 32 - bits;
      out |= word << shift;
    }
    return out;
  }

  // random._randbelow(n): rejection sampling on bit_length(n) bits.
  std::uint64_t randbelow(std::uint64_t n) {
    NANOCHAT_CHECK(n > 0, "PythonRandom::randbelow: empty range");
    const int bits = static_cast<int>(std::bit_width(n));
    std::uint64_t r = getrandbits(bits);
    while (r >= n) r = getrandbits(bits);
    return r;
  }

  // random.randint(low, high), both ends included.
  std::int64_t randint(std::int64_t low, std::int64_t high) {
    NANOCHAT_CHECK(low <= high, "PythonRandom::randint: empty range [", low, ", ", high, "]");
    return low + static_cast<std::int64_t>(randbelow(static_cast<std::uint64_t>(high - low) + 1));
  }

  template <class Sequence>
  const auto& choice(const Sequence& items) {
    NANOCHAT_CHECK(std::size(items) > 0, "PythonRandom::choice: empty sequence");
    return items[static_cast<std::size_t>(randbelow(std::size(items)))];
  }

  // random.shuffle: Fisher-Yates from the back.
  template <class T>
  void shuffle(std::vector<T>& items) {
    for (std::size_t i = items.size(); i-- > 1;) {
      std::swap(items[i], items[static_cast<std::size_t>(randbelow(i + 1))]);
    }
  }

  // random.sample(range(n), k): k distinct positions of an n-long population, in selection
  // order. CPython draws from a shrinking pool when the population is no bigger than the hash
  // set it would otherwise keep (21 slots, plus 4^ceil(log4(3k)) for k > 5), and else redraws
  // until it meets a position not yet selected; both branches are reproduced, as each consumes
  // the stream differently.
  std::vector<std::size_t> sample_positions(std::size_t n, std::size_t k) {
    NANOCHAT_CHECK(k <= n, "PythonRandom::sample: sample of ", k, " larger than the population of ", n);
    std::vector<std::size_t> out(k);
    std::size_t set_size = 21;
    if (k > 5) {
      // math.log(k * 3, 4) as CPython computes it: the quotient of two natural logarithms.
      const double log4 = std::log(static_cast<double>(k) * 3.0) / std::log(4.0);
      const int shift = 2 * static_cast<int>(std::ceil(log4));
      set_size = shift < 62 ? set_size + (std::size_t{1} << shift) : SIZE_MAX;  // past 2^62: bigger than any n
    }
    if (n <= set_size) {
      std::vector<std::size_t> pool(n);
      for (std::size_t i = 0; i < n; ++i) pool[i] = i;
      for (std::size_t i = 0; i < k; ++i) {
        const auto j = static_cast<std::size_t>(randbelow(n - i));
        out[i] = pool[j];
        pool[j] = pool[n - i - 1];  // the last unselected one fills the vacancy
      }
    } else {
      std::unordered_set<std::size_t> selected;
      for (std::size_t i = 0; i < k; ++i) {
        auto j = static_cast<std::size_t>(randbelow(n));
        while (selected.contains(j)) j = static_cast<std::size_t>(randbelow(n));
        selected.insert(j);
        out[i] = j;
      }
    }
    return out;
  }

  // random.sample(population, k).
  template <class T>
  std::vector<T> sample(const std::vector<T>& population, std::size_t k) {
    std::vector<T> out;
    out.reserve(k);
    for (std::size_t position : sample_positions(population.size(), k)) out.push_back(population[position]);
    return out;
  }

 private:
  static constexpr int kN = 624;
  static constexpr int kM = 397;

  void seed_words(std::uint64_t magnitude) {
    std::array<std::uint32_t, 2> key{static_cast<std::uint32_t>(magnitude),
                                     static_cast<std::uint32_t>(magnitude >> 32)};
    init_by_array(key.data(), key[1] != 0 ? 2 : 1);
  }

  void init_genrand(std::uint32_t s) {
    state_[0] = s;
    for (int i = 1; i < kN; ++i) {
      state_[i] = 1812433253u * (state_[i - 1] ^ (state_[i - 1] >> 30)) + static_cast<std::uint32_t>(i);
    }
    index_ = kN;
  }

  void init_by_array(const std::uint32_t* key, int length) {
    init_genrand(19650218u);
    int i = 1;
    int j = 0;
    for (int k = std::max(kN, length); k > 0; --k) {
      state_[i] = (state_[i] ^ ((state_[i - 1] ^ (state_[i - 1] >> 30)) * 1664525u)) + key[j] +
                  static_cast<std::uint32_t>(j);
      if (++i >= kN) {
        state_[0] = state_[kN - 1];
        i = 1;
      }
      if (++j >= length) j = 0;
    }
    for (int k = kN - 1; k > 0; --k) {
      state_[i] = (state_[i] ^ ((state_[i - 1] ^ (state_[i - 1] >> 30)) * 1566083941u)) -
                  static_cast<std::uint32_t>(i);
      if (++i >= kN) {
        state_[0] = state_[kN - 1];
        i = 1;
      }
    }
    state_[0] = 0x80000000u;
  }

  void twist() {
    for (int i = 0; i < kN; ++i) {
      const std::uint32_t y = (state_[i] & 0x80000000u) | (state_[(i + 1) % kN] & 0x7fffffffu);
      state_[i] = state_[(i + kM) % kN] ^ (y >> 1) ^ ((y & 1u) != 0 ? 0x9908b0dfu : 0u);
    }
    index_ = 0;
  }

  std::array<std::uint32_t, kN> state_{};
  int index_ = kN;
};

}  // namespace nanochat::tasks
