#pragma once
// The offline tasks by the names the programs take (chat_eval's -a, chat_rl's --task), with the
// knobs that make a generated set harder than the one mid_train and chat_sft learn from: longer
// operands, longer invented words. One place, so chat_eval scores exactly the set chat_rl
// trains on.

#include <array>
#include <cstddef>
#include <memory>
#include <string_view>

#include "nanochat/tasks/offline_arithmetic.hpp"
#include "nanochat/tasks/offline_identity.hpp"
#include "nanochat/tasks/offline_words.hpp"
#include "nanochat/tasks/task.hpp"

namespace nanochat::tasks {

struct OfflineDifficulty {
  int arithmetic_digits = 3;   // operands of 1..arithmetic_digits digits
  int spelling_syllables = 3;  // invented words of 2..spelling_syllables syllables
};

inline constexpr std::array<std::string_view, 4> kOfflineTaskNames = {"arithmetic", "letter-count", "spelling",
                                                                      "identity"};

inline bool is_offline_task(std::string_view name) {
  for (std::string_view known : kOfflineTaskNames)
    if (name == known) return true;
  return false;
}

// `size` problems of a generated task's split (identity has its fixed questions); nullptr for a
// name that is not an offline task.
inline TaskPtr make_offline_task(std::string_view name, Split split, std::size_t size,
                                 const OfflineDifficulty& difficulty = {}) {
  if (name == "arithmetic")
    return std::make_shared<OfflineArithmetic>(
        OfflineArithmetic::Options{.size = size, .split = split, .max_digits = difficulty.arithmetic_digits});
  if (name == "letter-count")
    return std::make_shared<OfflineLetterCount>(OfflineLetterCount::Options{.size = size, .split = split});
  if (name == "spelling")
    return std::make_shared<OfflineSpelling>(
        OfflineSpelling::Options{.size = size, .split = split, .max_syllables = difficulty.spelling_syllables});
  if (name == "identity") return std::make_shared<OfflineIdentity>(split);
  return nullptr;
}

}  // namespace nanochat::tasks
