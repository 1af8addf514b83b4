#pragma once
// MMLU (cais/mmlu): four-choice questions, rendered in the multiple-choice format with letters
// A-D; the assistant answers with the letter. Read from the Hub's parquet (the default,
// hub_split_dir): config "all" splits test (14,042 rows), validation and dev with columns
// question, subject, choices (list<string>) and answer (int64, the ClassLabel index 0-3); config
// "auxiliary_train" split train (99,842 rows), whose rows sit in a struct column `train` that is
// unwrapped, as nanochat does. A directory of the original release's CSVs (data.tar's
// data/<split>/*.csv, no header: question, A, B, C, D, answer letter; the subject from the file
// name) or one such .csv file is read too. Files are read in name order.

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/read_file.hpp"
#include "nanochat/data/parquet_reader.hpp"
#include "nanochat/tasks/csv.hpp"
#include "nanochat/tasks/dataset_files.hpp"
#include "nanochat/tasks/hub_datasets.hpp"
#include "nanochat/tasks/multiple_choice.hpp"
#include "nanochat/tasks/parquet_rows.hpp"
#include "nanochat/tasks/task.hpp"

namespace nanochat::tasks {

class MMLU final : public Task {
 public:
  struct Question {
    std::string question;
    std::vector<std::string> choices;
    std::size_t answer;  // 0..3
    std::string subject;
  };

  // split: "test", "validation" (or the release's "val"), "dev" (config "all"), or
  // "auxiliary_train" (config auxiliary_train, split train).
  static std::filesystem::path default_path(std::string_view split) {
    if (split == "auxiliary_train") return hub_split_dir("cais/mmlu", "auxiliary_train", "train");
    return hub_split_dir("cais/mmlu", "all", split == "val" ? "validation" : split);
  }

  // path: a split's directory of parquet shards or of release CSVs, or one .parquet or .csv file.
  explicit MMLU(const std::filesystem::path& path) {
    constexpr std::string_view kOtherForms = "the release's CSVs of that split (a directory or a file)";
    std::vector<std::filesystem::path> csvs = release_csvs(path);
    if (path.extension() == ".csv") csvs = split_files(path, "MMLU", "cais/mmlu", kOtherForms);
    if (!csvs.empty()) {
      for (const auto& file : csvs) read_csv(file);
    } else {
      read_parquet(split_files(path, "MMLU", "cais/mmlu", kOtherForms));
    }
    order_ = shuffled_rows(questions_.size());
  }

  std::string name() const override { return "MMLU"; }
  std::size_t size() const override { return questions_.size(); }
  Example example(std::size_t index) const override {
    check_index(index);
    const Question& q = questions_[order_[index]];
    std::vector<std::string> letters = {"A", "B", "C", "D"};
    const std::string answer = letters[q.answer];
    Example out = multiple_choice_example(q.question, std::move(letters), q.choices, answer);
    out.extra["subject"] = q.subject;
    return out;
  }
  EvalType eval_type() const override { return EvalType::categorical; }
  bool has_scorer() const override { return true; }
  bool evaluate(const Example& example, std::string_view chosen) const override {
    return multiple_choice_correct(example, chosen, "MMLU");
  }

 private:
  // The release's CSVs in a directory that holds no parquet, in name order; else none.
  static std::vector<std::filesystem::path> release_csvs(const std::filesystem::path& path) {
    std::error_code ec;
    std::vector<std::filesystem::path> csvs;
    if (!std::filesystem::is_directory(path, ec)) return csvs;
    for (const auto& entry : std::filesystem::directory_iterator(path)) {
      if (entry.path().extension() == ".parquet") return {};
      if (entry.path().extension() == ".csv") csvs.push_back(entry.path());
    }
    std::sort(csvs.begin(), csvs.end());
    return csvs;
  }

  void read_parquet(const std::vector<std::filesystem::path>& files) {
    const auto add = [&](const json::Value& row, const std::string& where) {
      const json::Value* choices = row.find("choices");
      const json::Value* answer_value = row.find("answer");
      NANOCHAT_CHECK(choices != nullptr && answer_value != nullptr, where, ": no \"choices\" or \"answer\"");
      const auto& list = choices->array(cat(where, ": choices"));
      NANOCHAT_CHECK(list.size() == 4, where, ": ", list.size(), " choices; MMLU questions have 4");
      Question q{json_string(row, "question", where), {}, 0, json_string(row, "subject", where)};
      for (const json::Value& choice : list) q.choices.push_back(choice.string(cat(where, ": a choice")));
      const double answer = answer_value->number(cat(where, ": answer"));
      NANOCHAT_CHECK(answer == 0 || answer == 1 || answer == 2 || answer == 3, where, ": answer ", answer,
                     " is not one of 0, 1, 2, 3 (A-D)");
      q.answer = static_cast<std::size_t>(answer);
      questions_.push_back(std::move(q));
    };
    // auxiliary_train wraps each row in a struct column `train`.
    if (data::ParquetReader(files[0]).schema().has_field("train")) {
      for_each_parquet_row(files, {"train"}, [&](const json::Value& row, const std::string& where) {
        const json::Value& inner = *row.find("train");
        NANOCHAT_CHECK(inner.is_object(), where, ": train must be a struct of the row's fields");
        add(inner, where);
      });
    } else {
      for_each_parquet_row(files, {"question", "subject", "choices", "answer"}, add);
    }
  }

  void read_csv(const std::filesystem::path& file) {
    const std::string split_suffix = cat("_", file.parent_path().filename().string());
    std::string subject = file.stem().string();
    // <subject>_<split>.csv names the subject; auxiliary_train's files are sources, not subjects.
    if (subject.size() > split_suffix.size() && subject.ends_with(split_suffix)) {
      subject.resize(subject.size() - split_suffix.size());
    } else {
      subject.clear();
    }
    const std::string text = read_file(file);
    for_each_csv_record(text, file.string(), [&](const std::vector<std::string>& fields, std::size_t record) {
      NANOCHAT_CHECK(fields.size() == 6, file.string(), ": record ", record, " has ", fields.size(),
                     " fields; MMLU rows are question, A, B, C, D, answer");
      const std::string& letter = fields[5];
      NANOCHAT_CHECK(letter.size() == 1 && letter[0] >= 'A' && letter[0] <= 'D', file.string(), ": record ", record,
                     ": answer '", letter, "' is not one of A, B, C, D");
      questions_.push_back({fields[0], {fields[1], fields[2], fields[3], fields[4]},
                            static_cast<std::size_t>(letter[0] - 'A'), subject});
    });
  }

  std::vector<Question> questions_;
  std::vector<std::uint32_t> order_;
};

}  // namespace nanochat::tasks
