#pragma once
// The sampling seed of a chat_rl rollout batch: nanochat's hash((step, example_idx,
// sampling_step)) & 0x7FFFFFFF, CPython's tuple hash (xxHash-style, 64-bit Py_hash_t, since
// Python 3.8) of three non-negative ints, whose own hashes are themselves modulo 2^61 - 1. The
// seed follows from the step alone, so a resumed run samples what the uninterrupted one did.

#include <cstdint>
#include <initializer_list>

namespace nanochat {

// CPython's hash of a tuple of non-negative ints (Objects/tupleobject.c, tuplehash).
inline std::uint64_t python_tuple_hash(std::initializer_list<std::uint64_t> items) {
  constexpr std::uint64_t prime1 = 11400714785074694791ull, prime2 = 14029467366897019727ull,
                          prime5 = 2870177450012600261ull, modulus = (std::uint64_t{1} << 61) - 1;
  std::uint64_t acc = prime5;
  for (const std::uint64_t item : items) {
    acc += (item % modulus) * prime2;
    acc = (acc << 31) | (acc >> 33);
    acc *= prime1;
  }
  acc += items.size() ^ (prime5 ^ 3527539ull);
  return acc == ~std::uint64_t{0} ? 1546275796ull : acc;  // -1 is CPython's error value
}

inline std::uint64_t rollout_seed(std::int64_t step, std::int64_t example_index, std::int64_t sampling_step) {
  return python_tuple_hash({static_cast<std::uint64_t>(step), static_cast<std::uint64_t>(example_index),
                            static_cast<std::uint64_t>(sampling_step)}) &
         0x7FFFFFFFull;
}

}  // namespace nanochat
