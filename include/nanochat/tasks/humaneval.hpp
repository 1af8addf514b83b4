#pragma once
// HumanEval (openai/openai_humaneval): 164 Python functions. The user gives the prompt (signature
// and docstring); the assistant replies with prompt + "\n" + the canonical solution. Read from
// the Hub's parquet (the default, hub_split_dir; flat string columns task_id, prompt,
// canonical_solution, test, entry_point) or openai/human-eval's HumanEval.jsonl (its .jsonl.gz,
// gunzipped), which has the same fields.
//
// Scoring, as nanochat's: the program humaneval_program() builds runs in a sandbox
// (eval/sandbox.hpp, with execute_code's 5 s and 256 MiB, spec §7.5) and passes when it exits
// cleanly. Where the sandbox cannot be built, evaluate() throws its refusal: no code runs.

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/eval/sandbox.hpp"
#include "nanochat/tasks/dataset_files.hpp"
#include "nanochat/tasks/hub_datasets.hpp"
#include "nanochat/tasks/parquet_rows.hpp"
#include "nanochat/tasks/task.hpp"

namespace nanochat::tasks {

namespace humaneval_detail {

inline std::string_view strip(std::string_view s) {
  const std::size_t first = s.find_first_not_of(" \t\n\r\f\v");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\n\r\f\v") - first + 1);
}

// The leading import lines of the prompt (comments and blank lines skipped).
inline std::string leading_imports(std::string_view prompt) {
  std::string out;
  std::size_t pos = 0;
  while (pos <= prompt.size()) {
    std::size_t end = prompt.find('\n', pos);
    if (end == std::string_view::npos) end = prompt.size();
    const std::string_view line = strip(prompt.substr(pos, end - pos));
    pos = end + 1;
    if (line.starts_with("import ") || line.starts_with("from ")) {
      if (!out.empty()) out += '\n';
      out += line;
    } else if (!line.empty() && !line.starts_with("#")) {
      break;
    }
  }
  return out;
}

// The first markdown code block, as nanochat's regex ```(?:python)?\s*\n(.*?)\n``` finds it
// (greedy whitespace, so the body starts after the run's last newline that still leaves a
// closing "\n```" behind it), stripped; else the whole completion, stripped.
inline std::string program_text(std::string_view completion) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  for (std::size_t open = completion.find("```"); open != std::string_view::npos;
       open = completion.find("```", open + 1)) {
    std::size_t pos = open + 3;
    if (completion.compare(pos, 6, "python") == 0) pos += 6;
    std::size_t run_end = pos;
    while (run_end < completion.size() && kSpace.find(completion[run_end]) != std::string_view::npos) ++run_end;
    for (std::size_t nl = run_end; nl-- > pos;) {
      if (completion[nl] != '\n') continue;
      const std::size_t close = completion.find("\n```", nl + 1);
      if (close != std::string_view::npos) return std::string(strip(completion.substr(nl + 1, close - nl - 1)));
    }
  }
  return std::string(strip(completion));
}

}  // namespace humaneval_detail

class HumanEval final : public Task {
 public:
  struct Problem {
    std::string prompt, solution, test, entry_point;
  };

  static std::filesystem::path default_path() {
    return hub_split_dir("openai/openai_humaneval", "openai_humaneval", "test");
  }

  // path: the split's directory of parquet shards, one .parquet file, or HumanEval.jsonl.
  explicit HumanEval(const std::filesystem::path& path) {
    const auto add = [&](const json::Value& row, const std::string& where) {
      problems_.push_back({json_string(row, "prompt", where), json_string(row, "canonical_solution", where),
                           json_string(row, "test", where), json_string(row, "entry_point", where)});
    };
    const auto files = split_files(path, "HumanEval", "openai/openai_humaneval", "openai/human-eval's HumanEval.jsonl");
    if (path.extension() == ".jsonl") {
      for_each_jsonl(files[0], add);
    } else {
      for_each_parquet_row(files, {"prompt", "canonical_solution", "test", "entry_point"}, add);
    }
    order_ = shuffled_rows(problems_.size());
  }

  std::string name() const override { return "HumanEval"; }
  std::size_t size() const override { return problems_.size(); }
  Example example(std::size_t index) const override {
    check_index(index);
    const Problem& p = problems_[order_[index]];
    Example out;
    out.conversation.messages.push_back({"user", p.prompt});
    out.conversation.messages.push_back({"assistant", cat(p.prompt, "\n", p.solution)});
    out.extra["test"] = p.test;
    out.extra["entry_point"] = p.entry_point;
    return out;
  }
  bool has_scorer() const override { return true; }
  bool evaluate(const Example& example, std::string_view completion) const override;

 private:
  std::vector<Problem> problems_;
  std::vector<std::uint32_t> order_;
};

// The program nanochat's HumanEval evaluation runs: the prompt's imports, the completion's code,
// the tests and check(<entry_point>); the completion passes when it runs without an exception.
inline std::string humaneval_program(const Example& example, std::string_view completion) {
  const auto* prompt = std::get_if<std::string>(&example.conversation.messages.at(0).content);
  NANOCHAT_CHECK(prompt != nullptr, "HumanEval: the prompt must be a string");
  const auto test = example.extra.find("test");
  const auto entry = example.extra.find("entry_point");
  NANOCHAT_CHECK(test != example.extra.end() && entry != example.extra.end(),
                 "HumanEval: the example has no test or entry_point");
  return cat(humaneval_detail::leading_imports(*prompt), "\n\n", humaneval_detail::program_text(completion),
             "\n\n", test->second, "\n", "check(", entry->second, ")");
}

inline bool HumanEval::evaluate(const Example& example, std::string_view completion) const {
  return eval::run_python_sandboxed(humaneval_program(example, completion)).passed;
}

}  // namespace nanochat::tasks
