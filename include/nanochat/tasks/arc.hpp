#pragma once
// ARC (AI2 Reasoning Challenge, allenai/ai2_arc), Easy and Challenge: grade-school science
// questions in the multiple-choice format, with the dataset's own labels as letters (A-E, or
// 1-4 on a few rows). Read from the Hub's parquet (the default, hub_split_dir): columns id,
// question, choices (struct<text: list<string>, label: list<string>>) and answerKey. AI2's
// release JSONL (ARC-V1-Feb2018: ARC-<Easy|Challenge>/ARC-<...>-<Train|Dev|Test>.jsonl, one
// {"id", "question": {"stem", "choices": [{"text", "label"}]}, "answerKey"} per line) is read too.

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/tasks/dataset_files.hpp"
#include "nanochat/tasks/hub_datasets.hpp"
#include "nanochat/tasks/multiple_choice.hpp"
#include "nanochat/tasks/parquet_rows.hpp"
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

  // subset: "ARC-Easy" or "ARC-Challenge"; split: "train", "validation" or "test" (or AI2's
  // "Train", "Dev", "Test").
  static std::filesystem::path default_path(std::string_view subset, std::string_view split) {
    const std::string_view hub = split == "Train" ? "train" : split == "Dev" ? "validation" : split == "Test" ? "test" : split;
    return hub_split_dir("allenai/ai2_arc", subset, hub);
  }

  // path: a split's directory of parquet shards, one .parquet file, or one of AI2's .jsonl files.
  explicit ARC(const std::filesystem::path& path) : name_(name_of(path)) {
    const auto files =
        split_files(path, "ARC", "allenai/ai2_arc", "a .jsonl file of AI2's ARC-V1-Feb2018 release");
    if (path.extension() == ".jsonl") {
      for_each_jsonl(files[0], [&](const json::Value& row, const std::string& where) {
        const json::Value* question = row.find("question");
        NANOCHAT_CHECK(question != nullptr && question->is_object(), where, ": no \"question\" object");
        const json::Value* choices = question->find("choices");
        NANOCHAT_CHECK(choices != nullptr, where, ": the question has no \"choices\"");
        Question q{json_string(*question, "stem", where), {}, {}, json_string(row, "answerKey", where)};
        for (const json::Value& choice : choices->array(cat(where, ": choices"))) {
          q.choices.push_back(json_string(choice, "text", where));
          q.letters.push_back(json_string(choice, "label", where));
        }
        add(std::move(q), where);
      });
    } else {
      for_each_parquet_row(files, {"question", "choices", "answerKey"}, [&](const json::Value& row, const std::string& where) {
        Question q{json_string(row, "question", where), {}, {}, json_string(row, "answerKey", where)};
        const json::Value& choices = *row.find("choices");
        const json::Value* text = choices.find("text");
        const json::Value* label = choices.find("label");
        NANOCHAT_CHECK(text != nullptr && label != nullptr, where, ": choices must be a struct of \"text\" and \"label\"");
        for (const json::Value& t : text->array(cat(where, ": choices.text"))) q.choices.push_back(t.string(cat(where, ": a choice")));
        for (const json::Value& l : label->array(cat(where, ": choices.label"))) q.letters.push_back(l.string(cat(where, ": a label")));
        NANOCHAT_CHECK(q.choices.size() == q.letters.size(), where, ": ", q.choices.size(), " choices but ",
                       q.letters.size(), " labels");
        add(std::move(q), where);
      });
    }
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
  // A file's stem ("ARC-Easy-Train"); a split directory's config and split ("ARC-Easy-train").
  static std::string name_of(const std::filesystem::path& path) {
    std::error_code ec;
    if (!std::filesystem::is_directory(path, ec)) return path.stem().string();
    const std::filesystem::path dir = path.filename().empty() ? path.parent_path() : path;  // "dir/"
    return cat(dir.parent_path().filename().string(), "-", dir.filename().string());
  }

  void add(Question q, const std::string& where) {
    NANOCHAT_CHECK(std::find(q.letters.begin(), q.letters.end(), q.answer) != q.letters.end(), where, ": answerKey '",
                   q.answer, "' is not one of the choice labels");
    questions_.push_back(std::move(q));
  }

  std::string name_;
  std::vector<Question> questions_;
  std::vector<std::uint32_t> order_;
};

}  // namespace nanochat::tasks
