#pragma once
// nanochat's chat format: a conversation becomes token ids plus a training mask (1 where the
// model is trained to produce the token: assistant text, tool calls, the end of turn; 0 for the
// prompt, user turns and tool output, which the model reads but does not produce).
//   <|bos|> <|user_start|> user <|user_end|> <|assistant_start|> answer <|assistant_end|> ...
// A leading system message is folded into the first user message. Conversations are read from
// JSON in nanochat's schema: {"messages": [{"role", "content"}, ...]} or a bare message array;
// assistant content is a string or a list of {"type": "text"|"python"|"python_output", "text"}.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/tokenizer/tokenizer.hpp"

namespace nanochat::tokenizer {

struct MessagePart {
  std::string type;  // "text", "python" or "python_output"
  std::string text;
};

struct Message {
  std::string role;  // "system", "user" or "assistant"
  std::variant<std::string, std::vector<MessagePart>> content;
};

struct Conversation {
  std::vector<Message> messages;
};

struct RenderedConversation {
  std::vector<TokenId> ids;
  std::vector<std::uint8_t> mask;  // 1: a token the model is trained to produce
};

inline Conversation conversation_from_json(const json::Value& value, std::string_view source) {
  const json::Value* messages = value.is_array() ? &value : value.find("messages");
  NANOCHAT_CHECK(messages != nullptr, source, ": a conversation needs \"messages\"");
  Conversation conv;
  const json::Array& list = messages->array(cat(source, ": messages"));
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string where = cat(source, ": message ", i);
    const json::Value* role = list[i].find("role");
    const json::Value* content = list[i].find("content");
    NANOCHAT_CHECK(role != nullptr && content != nullptr, where, " needs \"role\" and \"content\"");
    Message m{role->string(where + " role"), std::string()};
    if (content->is_string()) {
      m.content = content->string(where);
    } else {
      std::vector<MessagePart> parts;
      for (const json::Value& part : content->array(where + " content")) {
        const json::Value* type = part.find("type");
        const json::Value* text = part.find("text");
        NANOCHAT_CHECK(type != nullptr && text != nullptr, where,
                       ": a content part needs \"type\" and \"text\"");
        parts.push_back({type->string(where + " part type"), text->string(where + " part text")});
      }
      m.content = std::move(parts);
    }
    conv.messages.push_back(std::move(m));
  }
  return conv;
}

inline Conversation parse_conversation(std::string_view json_text, std::string_view source) {
  return conversation_from_json(json::parse(json_text, source), source);
}

inline RenderedConversation render_conversation(const Tokenizer& tok, const Conversation& conversation,
                                                std::size_t max_tokens = 2048) {
  std::vector<Message> messages = conversation.messages;
  NANOCHAT_CHECK(!messages.empty(), "render_conversation: the conversation has no messages");
  if (messages[0].role == "system") {
    NANOCHAT_CHECK(messages.size() > 1 && messages[1].role == "user",
                   "render_conversation: a system message must be followed by a user message");
    const auto* system = std::get_if<std::string>(&messages[0].content);
    auto* user = std::get_if<std::string>(&messages[1].content);
    NANOCHAT_CHECK(system != nullptr && user != nullptr,
                   "render_conversation: system and user content must be strings");
    *user = *system + "\n\n" + *user;
    messages.erase(messages.begin());
  }
  const TokenId bos = tok.bos_id();
  const TokenId user_start = tok.encode_special("<|user_start|>");
  const TokenId user_end = tok.encode_special("<|user_end|>");
  const TokenId assistant_start = tok.encode_special("<|assistant_start|>");
  const TokenId assistant_end = tok.encode_special("<|assistant_end|>");
  const TokenId python_start = tok.encode_special("<|python_start|>");
  const TokenId python_end = tok.encode_special("<|python_end|>");
  const TokenId output_start = tok.encode_special("<|output_start|>");
  const TokenId output_end = tok.encode_special("<|output_end|>");

  RenderedConversation out;
  const auto add = [&](TokenId id, std::uint8_t mask) {
    out.ids.push_back(id);
    out.mask.push_back(mask);
  };
  const auto add_text = [&](std::string_view text, std::uint8_t mask) {
    tok.encode_into(text, out.ids);
    out.mask.resize(out.ids.size(), mask);
  };
  add(bos, 0);
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const Message& m = messages[i];
    const char* expected = i % 2 == 0 ? "user" : "assistant";
    NANOCHAT_CHECK(m.role == expected, "render_conversation: message ", i, " is from ", m.role,
                   " but should be from ", expected, " (roles must alternate user, assistant)");
    if (m.role == "user") {
      const auto* text = std::get_if<std::string>(&m.content);
      NANOCHAT_CHECK(text != nullptr, "render_conversation: user message ", i,
                     " must have string content");
      add(user_start, 0);
      add_text(*text, 0);
      add(user_end, 0);
      continue;
    }
    add(assistant_start, 0);
    if (const auto* text = std::get_if<std::string>(&m.content)) {
      add_text(*text, 1);
    } else {
      for (const MessagePart& part : std::get<std::vector<MessagePart>>(m.content)) {
        if (part.type == "text") {
          add_text(part.text, 1);
        } else if (part.type == "python") {
          add(python_start, 1);
          add_text(part.text, 1);
          add(python_end, 1);
        } else if (part.type == "python_output") {
          add(output_start, 0);
          add_text(part.text, 0);
          add(output_end, 0);
        } else {
          NANOCHAT_FAIL("render_conversation: message ", i, " has a part of unknown type \"",
                        part.type, "\"");
        }
      }
    }
    add(assistant_end, 1);
  }
  if (out.ids.size() > max_tokens) {
    out.ids.resize(max_tokens);
    out.mask.resize(max_tokens);
  }
  return out;
}

// The prompt for generating the conversation's last (assistant) message: everything before it,
// then <|assistant_start|>.
inline std::vector<TokenId> render_for_completion(const Tokenizer& tok, const Conversation& conversation,
                                                  std::size_t max_tokens = 2048) {
  NANOCHAT_CHECK(!conversation.messages.empty() && conversation.messages.back().role == "assistant",
                 "render_for_completion: the last message must be from the assistant");
  Conversation prompt = conversation;
  prompt.messages.pop_back();
  std::vector<TokenId> ids = render_conversation(tok, prompt, max_tokens).ids;
  ids.push_back(tok.encode_special("<|assistant_start|>"));
  return ids;
}

}  // namespace nanochat::tokenizer
