#pragma once
// The shape nanochat's chat datasets promise (and render_conversation needs): an optional
// leading system message, then strictly alternating user / assistant messages with string
// content, at least one exchange.

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

#include "nanochat/core/error.hpp"
#include "nanochat/tasks/task.hpp"

namespace nanochat::tasks {

inline void check_chat_messages(const Conversation& conv, bool allow_system, std::string_view where) {
  std::size_t first = 0;
  if (allow_system && !conv.messages.empty() && conv.messages[0].role == "system") first = 1;
  NANOCHAT_CHECK(conv.messages.size() >= first + 2, where, ": a conversation needs at least 2 messages ",
                 "(user, assistant)", first == 1 ? " after the system message" : "", ", got ",
                 conv.messages.size() - first);
  for (std::size_t i = first; i < conv.messages.size(); ++i) {
    const Message& m = conv.messages[i];
    const char* expected = (i - first) % 2 == 0 ? "user" : "assistant";
    NANOCHAT_CHECK(m.role == expected, where, ": message ", i, " has role \"", m.role, "\" but should be ",
                   expected, " (roles alternate user, assistant)");
    NANOCHAT_CHECK(std::holds_alternative<std::string>(m.content), where, ": message ", i,
                   " content must be a string");
  }
}

}  // namespace nanochat::tasks
