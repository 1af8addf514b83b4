#pragma once
// SmolTalk (HuggingFaceTB/smol-smoltalk): general chat, train ~460K rows, test ~24K. An optional
// system message, then alternating user/assistant string messages (at least two).
//
// The dataset is published as parquet whose `messages` column is list<struct<content: string,
// role: string>>, a nested column; data::ParquetReader reads flat string columns only, so the
// parquet is refused with that explanation. The reader takes the same rows as JSONL, one
// {"messages": [...]} object (or bare message array) per line, which is what
// `datasets.load_dataset("HuggingFaceTB/smol-smoltalk", split=s).to_json(path)` writes.

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/data/parquet_reader.hpp"
#include "nanochat/tasks/conversation_checks.hpp"
#include "nanochat/tasks/dataset_files.hpp"
#include "nanochat/tasks/task.hpp"
#include "nanochat/tokenizer/chat_template.hpp"

namespace nanochat::tasks {

class SmolTalk final : public Task {
 public:
  static std::filesystem::path default_path(std::string_view split) {
    return task_data_dir() / "smol-smoltalk" / cat(split, ".jsonl");
  }

  explicit SmolTalk(const std::filesystem::path& file) {
    if (file.extension() == ".parquet") refuse_parquet(file);
    require_dataset_file(file, "SmolTalk",
                         "HuggingFaceTB/smol-smoltalk's split as JSONL, one {\"messages\": [...]} per line "
                         "(datasets' to_json writes it)");
    for_each_jsonl(file, [&](const json::Value& line, const std::string& where) {
      Conversation conv = tokenizer::conversation_from_json(line, where);
      check_chat_messages(conv, true, where);
      conversations_.push_back(std::move(conv));
    });
    order_ = shuffled_rows(conversations_.size());
  }

  std::string name() const override { return "SmolTalk"; }
  std::size_t size() const override { return conversations_.size(); }
  Example example(std::size_t index) const override {
    check_index(index);
    return {conversations_[order_[index]], {}, {}};
  }

 private:
  [[noreturn]] static void refuse_parquet(const std::filesystem::path& file) {
    require_dataset_file(file, "SmolTalk", "HuggingFaceTB/smol-smoltalk's split");
    std::string detail;
    try {
      data::ParquetReader reader(file);
      detail = "it has no nested column, but SmolTalk's rows are message lists";
    } catch (const Error& e) {
      detail = e.what();
    }
    NANOCHAT_FAIL(file.string(), ": SmolTalk's parquet stores `messages` as list<struct<content, role>>, a "
                  "nested column, and the parquet reader reads flat string columns only (", detail,
                  "); convert the split to JSONL (datasets' to_json) and pass the .jsonl file");
  }

  std::vector<Conversation> conversations_;
  std::vector<std::uint32_t> order_;
};

}  // namespace nanochat::tasks
