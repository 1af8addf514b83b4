#pragma once
// SmolTalk (HuggingFaceTB/smol-smoltalk): general chat, train ~460K rows, test ~24K. An optional
// system message, then alternating user/assistant string messages (at least two).
//
// Read from the split's parquet as the Hub serves it (its `messages` column is
// list<struct<content: string, role: string>>, assembled by data::read_field): a directory of
// shards (the default, hub_split_dir) or one .parquet file. A .jsonl file is read too, one
// {"messages": [...]} object (or bare message array) per line, as datasets' to_json writes it.

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/tasks/conversation_checks.hpp"
#include "nanochat/tasks/dataset_files.hpp"
#include "nanochat/tasks/hub_datasets.hpp"
#include "nanochat/tasks/parquet_rows.hpp"
#include "nanochat/tasks/task.hpp"
#include "nanochat/tokenizer/chat_template.hpp"

namespace nanochat::tasks {

class SmolTalk final : public Task {
 public:
  // split: "train" or "test".
  static std::filesystem::path default_path(std::string_view split) {
    return hub_split_dir("HuggingFaceTB/smol-smoltalk", "default", split);
  }

  // path: a split's directory of parquet shards, one .parquet file, or a .jsonl file.
  explicit SmolTalk(const std::filesystem::path& path) {
    const auto add = [&](const json::Value& row, const std::string& where) {
      Conversation conv = tokenizer::conversation_from_json(row, where);
      check_chat_messages(conv, true, where);
      conversations_.push_back(std::move(conv));
    };
    const auto files =
        split_files(path, "SmolTalk", "HuggingFaceTB/smol-smoltalk", "a JSONL of its rows (datasets' to_json)");
    if (path.extension() == ".jsonl") {
      for_each_jsonl(files[0], add);
    } else {
      for_each_parquet_row(files, {"messages"}, add);
    }
    order_ = shuffled_rows(conversations_.size());
  }

  std::string name() const override { return "SmolTalk"; }
  std::size_t size() const override { return conversations_.size(); }
  Example example(std::size_t index) const override {
    check_index(index);
    return {conversations_[order_[index]], {}, {}};
  }

 private:
  std::vector<Conversation> conversations_;
  std::vector<std::uint32_t> order_;
};

}  // namespace nanochat::tasks
