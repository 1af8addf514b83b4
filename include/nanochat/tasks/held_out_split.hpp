#pragma once
// Disjoint train / held-out halves for generated tasks. A problem's split is a function of the
// problem alone (a hash of its canonical text, e.g. "123+45"), and a generator for one split
// only ever emits problems hashed into it, so no held-out problem can appear in training,
// whatever the seed, size or index. Examples draw from Python's random.Random seeded by
// splitmix64 of (seed, task, index), so a Python reference reproduces them.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "nanochat/core/error.hpp"
#include "nanochat/tasks/python_random.hpp"
#include "nanochat/tasks/task.hpp"

namespace nanochat::tasks {

inline std::uint64_t fnv1a64(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

struct HeldOut {
  unsigned percent = 10;  // share of problems (by hash) kept out of training

  Split split_of(std::string_view problem) const { return fnv1a64(problem) % 100 < percent ? Split::test : Split::train; }
};

// The random stream of example `index` of a generated task named `task`.
inline PythonRandom example_rng(std::uint64_t seed, std::string_view task, std::size_t index) {
  return PythonRandom::from_unsigned(splitmix64(splitmix64(seed ^ fnv1a64(task)) + index));
}

// Draws problems with draw(rng) until one falls in `split`; a split that (nearly) never comes
// up is an error rather than a hang.
template <class Problem, class Draw, class KeyOf>
Problem draw_in_split(PythonRandom& rng, HeldOut held_out, Split split, std::string_view task, Draw draw,
                      KeyOf key_of) {
  NANOCHAT_CHECK(held_out.percent > 0 && held_out.percent < 100, task, ": held-out percent ", held_out.percent,
                 " must be within 1..99");
  for (int attempt = 0; attempt < 100000; ++attempt) {
    Problem problem = draw(rng);
    if (held_out.split_of(key_of(problem)) == split) return problem;
  }
  NANOCHAT_FAIL(task, ": found no ", name_of(split), " problem in 100000 draws (too few distinct problems)");
}

}  // namespace nanochat::tasks
