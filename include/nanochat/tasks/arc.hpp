#pragma once
// ARC (AI2 Reasoning Challenge), Easy and Challenge: grade-school science questions in the
// multiple-choice format, with the dataset's own labels as letters (A-E, or 1-4 on a few rows).
// Read from AI2's release (ARC-V1-Feb2018: ARC-<Easy|Challenge>/ARC-<...>-<Train|Dev|Test>.jsonl),
// one {"id", "question": {"stem", "choices": [{"text", "label"}]}, "answerKey"} per line.
// Hugging Face's parquet stores `choices` as struct<text: list<string>, label: list<string>>,
// nested columns data::ParquetReader does not read, hence AI2's JSONL.

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/tasks/dataset_files.hpp"
#include "nanochat/tasks/multiple_choice.hpp"
#include "nanochat/tasks/task.hpp"

namespace nanochat::tasks {

class ARC final : public Task {
 public:
  struct Question {
    std::string question;
    std::vector<std::string> choices;
    std::vector<std::string> letters;
    std::string answer;
  };

  // subset: "ARC-Easy" or "ARC-Challenge"; split: "Train", "Dev" or "Test".
  static std::filesystem::path default_path(std::string_view subset, std::string_view split) {
    return task_data_dir() / "ARC-V1-Feb2018-2" / subset / cat(subset, "-", split, ".jsonl");
  }

  explicit ARC(const std::filesystem::path& file) : name_(file.stem().string()) {
    require_dataset_file(file, "ARC", "that file of AI2's ARC-V1-Feb2018 release");
    for_each_jsonl(file, [&](const json::Value& row, const std::string& where) {
      const json::Value* question = row.find("question");
      NANOCHAT_CHECK(question != nullptr && question->is_object(), where, ": no \"question\" object");
      const json::Value* choices = question->find("choices");
      NANOCHAT_CHECK(choices != nullptr, where, ": the question has no \"choices\"");
      Question q{json_string(*question, "stem", where), {}, {}, json_string(row, "answerKey", where)};
      for (const json::Value& choice : choices->array(cat(where, ": choices"))) {
        q.choices.push_back(json_string(choice, "text", where));
        q.letters.push_back(json_string(choice, "label", where));
      }
      NANOCHAT_CHECK(std::find(q.letters.begin(), q.letters.end(), q.answer) != q.letters.end(), where,
                     ": answerKey '", q.answer, "' is not one of the choice labels");
      questions_.push_back(std::move(q));
    });
    order_ = shuffled_rows(questions_.size());
  }

  std::string name() const override { return name_; }
  std::size_t size() const override { return questions_.size(); }
  Example example(std::size_t index) const override {
    check_index(index);
    const Question& q = questions_[order_[index]];
    return multiple_choice_example(q.question, q.letters, q.choices, q.answer);
  }
  EvalType eval_type() const override { return EvalType::categorical; }
  bool has_scorer() const override { return true; }
  bool evaluate(const Example& example, std::string_view chosen) const override {
    return multiple_choice_correct(example, chosen, "ARC");
  }

 private:
  std::string name_;
  std::vector<Question> questions_;
  std::vector<std::uint32_t> order_;
};

}  // namespace nanochat::tasks
