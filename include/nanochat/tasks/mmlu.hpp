#pragma once
// MMLU (Hendrycks et al.): four-choice questions, rendered in the multiple-choice format with
// letters A-D; the assistant answers with the letter. Read from the original release's CSVs
// (data.tar: data/<split>/*.csv, no header, columns question, A, B, C, D, answer letter):
// data/test/<subject>_test.csv is nanochat's "all"/test (14,042 rows), data/auxiliary_train/
// its auxiliary_train (99,842 rows; no subject). The files are read in name order. Hugging
// Face's parquet stores `choices` as list<string>, a nested column data::ParquetReader does not
// read, hence the CSVs.

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/read_file.hpp"
#include "nanochat/tasks/csv.hpp"
#include "nanochat/tasks/dataset_files.hpp"
#include "nanochat/tasks/multiple_choice.hpp"
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

  // split: "test", "dev", "val" or "auxiliary_train".
  static std::filesystem::path default_path(std::string_view split) {
    return task_data_dir() / "mmlu" / "data" / split;
  }

  // directory: one split's folder of CSVs.
  explicit MMLU(const std::filesystem::path& directory) {
    std::error_code ec;
    NANOCHAT_CHECK(std::filesystem::is_directory(directory, ec), "MMLU: missing ", directory.string(),
                   "; put the CSVs of that split of the MMLU release (data.tar's data/<split>/) there");
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(directory)) {
      if (entry.path().extension() == ".csv") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    NANOCHAT_CHECK(!files.empty(), "MMLU: ", directory.string(), " holds no .csv files; put the CSVs of that ",
                   "split of the MMLU release there");
    const std::string split_suffix = cat("_", directory.filename().string());
    for (const auto& file : files) {
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
        NANOCHAT_CHECK(letter.size() == 1 && letter[0] >= 'A' && letter[0] <= 'D', file.string(), ": record ",
                       record, ": answer '", letter, "' is not one of A, B, C, D");
        questions_.push_back({fields[0], {fields[1], fields[2], fields[3], fields[4]},
                              static_cast<std::size_t>(letter[0] - 'A'), subject});
      });
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
  std::vector<Question> questions_;
  std::vector<std::uint32_t> order_;
};

}  // namespace nanochat::tasks
