#pragma once
// GSM8K (grade-school math word problems). The user asks the question; the assistant's reply is
// the reference solution with each calculator annotation <<expr=result>> turned into a python
// part (expr, the text before the last '=') and a python_output part (result), the text between
// them as text parts: the model learns to call the calculator and reads its output. Scored by
// the "#### n" final answer (answer.hpp). Read from the Hub's parquet (openai/gsm8k, config
// main; the default, hub_split_dir; columns question, answer) or grade-school-math's JSONL (the
// same keys).

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/tasks/answer.hpp"
#include "nanochat/tasks/dataset_files.hpp"
#include "nanochat/tasks/hub_datasets.hpp"
#include "nanochat/tasks/parquet_rows.hpp"
#include "nanochat/tasks/task.hpp"

namespace nanochat::tasks {

// Splits a GSM8K solution at its <<...>> annotations, as re.split(r'(<<[^>]+>>)') does (empty
// text pieces kept, so the last part is always the text holding "#### n").
inline std::vector<MessagePart> gsm8k_solution_parts(std::string_view solution) {
  std::vector<MessagePart> parts;
  std::size_t text_start = 0;
  std::size_t i = 0;
  while (i + 1 < solution.size()) {
    std::size_t close = i + 2;
    if (solution.compare(i, 2, "<<") == 0) {
      while (close < solution.size() && solution[close] != '>') ++close;
    }
    if (solution.compare(i, 2, "<<") != 0 || close == i + 2 || solution.compare(close, 2, ">>") != 0) {
      ++i;
      continue;
    }
    parts.push_back({"text", std::string(solution.substr(text_start, i - text_start))});
    const std::string_view inner = solution.substr(i + 2, close - i - 2);
    const std::size_t eq = inner.rfind('=');
    parts.push_back({"python", std::string(eq == std::string_view::npos ? inner : inner.substr(0, eq))});
    parts.push_back({"python_output", std::string(eq == std::string_view::npos ? "" : inner.substr(eq + 1))});
    i = close + 2;
    text_start = i;
  }
  parts.push_back({"text", std::string(solution.substr(text_start))});
  return parts;
}

// The last text part of an example's reply, where the reference "#### n" lives.
inline const std::string& final_text_part(const Example& example, std::string_view task) {
  const Conversation& conv = example.conversation;
  NANOCHAT_CHECK(!conv.messages.empty() && conv.messages.back().role == "assistant", task,
                 ": the last message must be the assistant's");
  const auto* parts = std::get_if<std::vector<MessagePart>>(&conv.messages.back().content);
  NANOCHAT_CHECK(parts != nullptr && !parts->empty(), task, ": the assistant reply must be a list of parts");
  return parts->back().text;
}

class GSM8K final : public Task {
 public:
  struct Problem {
    std::string question;
    std::string answer;  // the solution with <<expr=result>> annotations and "#### n"
  };

  // split: "train" or "test".
  static std::filesystem::path default_path(std::string_view split) {
    return hub_split_dir("openai/gsm8k", "main", split);
  }

  // path: a split's directory of parquet shards, one .parquet file, or a .jsonl file.
  explicit GSM8K(const std::filesystem::path& path) {
    const auto add = [&](const json::Value& row, const std::string& where) {
      problems_.push_back({json_string(row, "question", where), json_string(row, "answer", where)});
    };
    const auto files =
        split_files(path, "GSM8K", "openai/gsm8k", "grade-school-math's <split>.jsonl");
    if (path.extension() == ".jsonl") {
      for_each_jsonl(files[0], add);
    } else {
      for_each_parquet_row(files, {"question", "answer"}, add);
    }
    order_ = shuffled_rows(problems_.size());
  }

  std::string name() const override { return "GSM8K"; }
  std::size_t size() const override { return problems_.size(); }
  Example example(std::size_t index) const override {
    check_index(index);
    const Problem& p = problems_[order_[index]];
    Example out;
    out.conversation.messages.push_back({"user", p.question});
    out.conversation.messages.push_back({"assistant", gsm8k_solution_parts(p.answer)});
    return out;
  }
  bool has_scorer() const override { return true; }
  bool evaluate(const Example& example, std::string_view completion) const override {
    return same_final_answer(final_text_part(example, "GSM8K"), completion);
  }

 private:
  std::vector<Problem> problems_;
  std::vector<std::uint32_t> order_;
};

}  // namespace nanochat::tasks
