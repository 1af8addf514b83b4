#pragma once
// CustomJSON: conversations from a JSONL file, one JSON array of messages per line (nanochat's
// identity_conversations.jsonl, downloaded by speedrun.sh to BASE). Alternating user/assistant
// string messages, at least two. Unlike nanochat, which warns and yields no rows, a missing
// file is an error: silently training without the identity data is the surprise it warned of.

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/data/paths.hpp"
#include "nanochat/tasks/conversation_checks.hpp"
#include "nanochat/tasks/dataset_files.hpp"
#include "nanochat/tasks/task.hpp"
#include "nanochat/tokenizer/chat_template.hpp"

namespace nanochat::tasks {

// nanochat's identity conversations: where speedrun.sh fetches them from, and where they go.
inline constexpr std::string_view kIdentityConversationsUrl =
    "https://karpathy-public.s3.us-west-2.amazonaws.com/identity_conversations.jsonl";
inline std::filesystem::path default_identity_conversations() {
  return data::base_dir() / "identity_conversations.jsonl";
}

class CustomJSON final : public Task {
 public:
  explicit CustomJSON(const std::filesystem::path& file) : name_(cat("CustomJSON(", file.filename().string(), ")")) {
    require_dataset_file(file, "CustomJSON",
                         cat("a JSONL file of message arrays (nanochat's identity conversations: ",
                             kIdentityConversationsUrl, ")"));
    for_each_jsonl(file, [&](const json::Value& line, const std::string& where) {
      NANOCHAT_CHECK(line.is_array(), where, ": expected a JSON array of messages");
      Conversation conv = tokenizer::conversation_from_json(line, where);
      check_chat_messages(conv, false, where);
      conversations_.push_back(std::move(conv));
    });
  }

  std::string name() const override { return name_; }
  std::size_t size() const override { return conversations_.size(); }
  Example example(std::size_t index) const override {
    check_index(index);
    return {conversations_[index], {}, {}};
  }

 private:
  std::string name_;
  std::vector<Conversation> conversations_;
};

}  // namespace nanochat::tasks
