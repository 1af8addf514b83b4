#pragma once
// nanochat's multiple-choice format (tasks/common.py render_mc), shared by MMLU and ARC:
//   Multiple Choice question: <question>
//   - <choice>=<letter>          (one line per choice)
//
//   Respond only with the letter of the correct answer.
// The letter follows its choice (small models bind better) with no space before it, so the
// prompt's letter token is the token the assistant answers with.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/tasks/task.hpp"

namespace nanochat::tasks {

inline std::string render_multiple_choice(std::string_view question, const std::vector<std::string>& letters,
                                          const std::vector<std::string>& choices) {
  NANOCHAT_CHECK(letters.size() == choices.size(), "render_multiple_choice: ", letters.size(), " letters for ",
                 choices.size(), " choices");
  std::string out = cat("Multiple Choice question: ", question, "\n");
  for (std::size_t i = 0; i < choices.size(); ++i) out += cat("- ", choices[i], "=", letters[i], "\n");
  out += "\nRespond only with the letter of the correct answer.";
  return out;
}

inline Example multiple_choice_example(std::string_view question, std::vector<std::string> letters,
                                       const std::vector<std::string>& choices, const std::string& answer) {
  Example out;
  out.conversation.messages.push_back({"user", render_multiple_choice(question, letters, choices)});
  out.conversation.messages.push_back({"assistant", answer});
  out.letters = std::move(letters);
  return out;
}

// A categorical answer is right when the chosen letter is the gold one (the last message).
inline bool multiple_choice_correct(const Example& example, std::string_view chosen, std::string_view task) {
  const auto* gold = std::get_if<std::string>(&example.conversation.messages.back().content);
  NANOCHAT_CHECK(gold != nullptr, task, ": the gold answer must be a letter string");
  return chosen == *gold;
}

}  // namespace nanochat::tasks
