#pragma once
// The body of a chat completion request, read and checked: OpenAI's POST /v1/chat/completions
// schema and nanochat's own POST /chat/completions (spec §8.2). Every problem is a RequestError
// (HTTP 400 unless said otherwise) naming the field, as OpenAI's errors do ("param"), and
// nanochat's limits are refused, not clamped: messages per request, characters per message and
// per conversation, temperature, top-k, max tokens. Characters are code points, as Python's len().
// The conversation becomes tokens through the tokenizer's chat rendering, which encodes message
// text as ordinary text: a user typing "<|assistant_end|>" gets bytes, never the special token.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/core/utf8.hpp"
#include "nanochat/tokenizer/chat_template.hpp"
#include "nanochat/tokenizer/tokenizer.hpp"

namespace nanochat::serve {

// A request the server refuses: the HTTP status and OpenAI's error fields.
class RequestError : public std::runtime_error {
 public:
  RequestError(int http_status, const std::string& message, std::string field = {},
               std::string error_type = "invalid_request_error", std::string error_code = {})
      : std::runtime_error(message), status(http_status), param(std::move(field)), type(std::move(error_type)),
        code(std::move(error_code)) {}
  int status;
  std::string param;  // the offending field ("messages[2].content"); empty: none
  std::string type, code;
};

// nanochat's chat_web limits (spec §8.2), plus OpenAI's bound on stop strings and ours on n.
struct ChatLimits {
  std::size_t max_messages = 500;
  std::size_t max_message_chars = 8000;
  std::size_t max_conversation_chars = 32000;
  double max_temperature = 2.0;
  int min_top_k = 1, max_top_k = 200;
  std::int64_t max_tokens = 4096;
  int max_choices = 8;
  std::size_t max_stop_strings = 4;
};

// What a request leaves out: the server's flags (-t, -k, --max-tokens).
struct ChatDefaults {
  float temperature = 0.8f;
  int top_k = 50;
  std::int64_t max_tokens = 512;
};

struct ChatRequest {
  tokenizer::Conversation conversation;
  float temperature = 0.8f;
  int top_k = 50;
  std::int64_t max_tokens = 512;
  std::optional<std::int64_t> seed;  // absent: a random seed per request, as nanochat
  std::vector<std::string> stop;     // stop strings, matched on the decoded text
  int n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::string model;
};

namespace detail {

// A nanochat::Error's message without its " (at nanochat/...)" source location, for a client.
inline std::string client_message(const Error& e) {
  std::string m = e.what();
  const auto at = m.rfind(" (at ");
  return at == std::string::npos ? m : m.substr(0, at);
}

inline std::size_t count_chars(std::string_view text) {
  std::size_t n = 0;
  for (std::size_t pos = 0; pos < text.size(); ++n) pos += decode_utf8(text, pos).size;
  return n;
}

// A member that is absent or null reads as absent, as OpenAI's clients send null for unset fields.
inline const json::Value* member(const json::Value& body, std::string_view key) {
  const json::Value* v = body.find(key);
  return v == nullptr || v->is_null() ? nullptr : v;
}

inline double number_field(const json::Value& v, const std::string& name) {
  if (!std::holds_alternative<double>(v.data)) throw RequestError(400, "'" + name + "' must be a number", name);
  return std::get<double>(v.data);
}

inline std::int64_t integer_field(const json::Value& v, const std::string& name) {
  const double d = number_field(v, name);
  if (d != std::floor(d) || std::fabs(d) > 0x1p53) throw RequestError(400, "'" + name + "' must be an integer", name);
  return static_cast<std::int64_t>(d);
}

inline bool bool_field(const json::Value& v, const std::string& name) {
  if (!std::holds_alternative<bool>(v.data)) throw RequestError(400, "'" + name + "' must be true or false", name);
  return std::get<bool>(v.data);
}

inline std::string ranged(std::string_view name, auto lo, auto hi, auto got) {
  return cat("'", name, "' must be from ", lo, " to ", hi, ", got ", got);
}

// Text of a message's content: a string, or OpenAI's list of {"type": "text", "text"} parts.
inline std::string content_text(const json::Value& content, const std::string& where, bool parts_allowed) {
  if (content.is_string()) return std::get<std::string>(content.data);
  if (parts_allowed && content.is_array()) {
    std::string text;
    const json::Array& parts = std::get<json::Array>(content.data);
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const std::string at = cat(where, "[", i, "]");
      const json::Value* type = parts[i].find("type");
      const json::Value* part_text = parts[i].find("text");
      if (type == nullptr || !type->is_string() || std::get<std::string>(type->data) != "text" ||
          part_text == nullptr || !part_text->is_string()) {
        throw RequestError(400, "'" + at + "' must be a text part {\"type\": \"text\", \"text\": ...}; only text is supported", at);
      }
      text += std::get<std::string>(part_text->data);
    }
    return text;
  }
  throw RequestError(400, "'" + where + "' must be a string" + (parts_allowed ? " or a list of text parts" : ""), where);
}

// messages, checked against the limits and nanochat's chat format: an optional system message
// first (OpenAI's route), then user and assistant alternating, ending with the user.
inline tokenizer::Conversation read_messages(const json::Value& body, const ChatLimits& limits, bool openai) {
  const json::Value* messages = member(body, "messages");
  if (messages == nullptr) throw RequestError(400, "'messages' is required", "messages");
  if (!messages->is_array()) throw RequestError(400, "'messages' must be a list", "messages");
  const json::Array& list = std::get<json::Array>(messages->data);
  if (list.empty()) throw RequestError(400, "'messages' must hold at least one message", "messages");
  if (list.size() > limits.max_messages) {
    throw RequestError(400, cat("'messages' holds ", list.size(), " messages; at most ", limits.max_messages, " are allowed"),
                       "messages");
  }
  tokenizer::Conversation conv;
  std::size_t total_chars = 0;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string where = cat("messages[", i, "]");
    if (!list[i].is_object()) throw RequestError(400, "'" + where + "' must be an object", where);
    const json::Value* role = list[i].find("role");
    if (role == nullptr || !role->is_string()) throw RequestError(400, "'" + where + ".role' must be a string", where + ".role");
    std::string r = std::get<std::string>(role->data);
    if (openai && r == "developer") r = "system";  // OpenAI's newer name for the system message
    const bool system = openai && r == "system";
    if (r != "user" && r != "assistant" && !system) {
      throw RequestError(400, cat("'", where, ".role' is '", r, "'; it must be ",
                                  openai ? "'system' (first message only), 'user' or 'assistant'" : "'user' or 'assistant'"),
                         where + ".role");
    }
    const std::size_t turn = conv.messages.size() - (!conv.messages.empty() && conv.messages[0].role == "system" ? 1 : 0);
    const char* expected = system ? "system" : (turn % 2 == 0 ? "user" : "assistant");
    if (system ? i != 0 : r != expected) {
      throw RequestError(400, cat("'", where, ".role' is '", r, "' where nanochat's chat format needs '", expected,
                                  "': a system message may only come first, then user and assistant alternate starting with the user"),
                         where + ".role");
    }
    const json::Value* content = list[i].find("content");
    if (content == nullptr || content->is_null()) throw RequestError(400, "'" + where + ".content' is required", where + ".content");
    std::string text = content_text(*content, where + ".content", openai);
    const std::size_t chars = count_chars(text);
    if (chars == 0) throw RequestError(400, "'" + where + ".content' is empty", where + ".content");
    if (chars > limits.max_message_chars) {
      throw RequestError(400, cat("'", where, ".content' has ", chars, " characters; at most ", limits.max_message_chars,
                                  " are allowed per message"),
                         where + ".content");
    }
    total_chars += chars;
    conv.messages.push_back({r, std::move(text)});
  }
  if (total_chars > limits.max_conversation_chars) {
    throw RequestError(400, cat("the conversation has ", total_chars, " characters; at most ", limits.max_conversation_chars,
                                " are allowed"),
                       "messages");
  }
  if (conv.messages.back().role != "user") {
    throw RequestError(400, "the last message must be from the user: the reply is the assistant's next turn", "messages");
  }
  return conv;
}

inline json::Value parse_body(std::string_view body) {
  json::Value v;
  try {
    v = json::parse(body, "request body");
  } catch (const Error& e) {
    throw RequestError(400, client_message(e));
  }
  if (!v.is_object()) throw RequestError(400, "the request body must be a JSON object");
  return v;
}

inline void read_sampling(const json::Value& body, const ChatLimits& limits, ChatRequest& r) {
  if (const json::Value* t = member(body, "temperature")) {
    const double v = number_field(*t, "temperature");
    if (!(v >= 0.0 && v <= limits.max_temperature)) throw RequestError(400, ranged("temperature", 0, limits.max_temperature, v), "temperature");
    r.temperature = static_cast<float>(v);
  }
  if (const json::Value* k = member(body, "top_k")) {
    const std::int64_t v = integer_field(*k, "top_k");
    if (v < limits.min_top_k || v > limits.max_top_k) throw RequestError(400, ranged("top_k", limits.min_top_k, limits.max_top_k, v), "top_k");
    r.top_k = static_cast<int>(v);
  }
}

inline void read_max_tokens(const json::Value& body, const ChatLimits& limits, ChatRequest& r, const char* max_tokens_name) {
  if (const json::Value* m = member(body, max_tokens_name)) {
    const std::int64_t v = integer_field(*m, max_tokens_name);
    if (v < 1 || v > limits.max_tokens) throw RequestError(400, ranged(max_tokens_name, 1, limits.max_tokens, v), max_tokens_name);
    r.max_tokens = v;
  }
}

inline ChatRequest defaulted(const ChatDefaults& d) {
  ChatRequest r;
  r.temperature = d.temperature;
  r.top_k = d.top_k;
  r.max_tokens = d.max_tokens;
  return r;
}

}  // namespace detail

// OpenAI's chat completion body. Fields the server cannot honour are refused, not ignored:
// top_p other than 1, logprobs. Fields that do not change the reply (user, metadata, ...) are ignored.
inline ChatRequest parse_openai_chat_request(std::string_view body_text, const ChatDefaults& defaults,
                                             const ChatLimits& limits = {}) {
  using namespace detail;
  const json::Value body = parse_body(body_text);
  ChatRequest r = defaulted(defaults);
  if (const json::Value* m = member(body, "model")) {
    if (!m->is_string()) throw RequestError(400, "'model' must be a string", "model");
    r.model = std::get<std::string>(m->data);
  }
  r.conversation = read_messages(body, limits, true);
  read_sampling(body, limits, r);
  read_max_tokens(body, limits, r, "max_tokens");
  read_max_tokens(body, limits, r, "max_completion_tokens");  // the newer name wins over max_tokens
  if (const json::Value* p = member(body, "top_p")) {
    if (number_field(*p, "top_p") != 1.0) {
      throw RequestError(400, "'top_p' must be 1: nanochat samples with temperature and top_k (an extension field) only", "top_p");
    }
  }
  if (const json::Value* l = member(body, "logprobs")) {
    if (bool_field(*l, "logprobs")) throw RequestError(400, "'logprobs' is not supported", "logprobs");
  }
  if (const json::Value* s = member(body, "seed")) r.seed = integer_field(*s, "seed");
  if (const json::Value* n = member(body, "n")) {
    const std::int64_t v = integer_field(*n, "n");
    if (v < 1 || v > limits.max_choices) throw RequestError(400, ranged("n", 1, limits.max_choices, v), "n");
    r.n = static_cast<int>(v);
  }
  if (const json::Value* s = member(body, "stop")) {
    if (s->is_string()) {
      r.stop.push_back(std::get<std::string>(s->data));
    } else if (s->is_array()) {
      for (const json::Value& item : std::get<json::Array>(s->data)) {
        if (!item.is_string()) throw RequestError(400, "'stop' must be a string or a list of strings", "stop");
        r.stop.push_back(std::get<std::string>(item.data));
      }
    } else {
      throw RequestError(400, "'stop' must be a string or a list of strings", "stop");
    }
    if (r.stop.size() > limits.max_stop_strings) {
      throw RequestError(400, cat("'stop' holds ", r.stop.size(), " strings; at most ", limits.max_stop_strings, " are allowed"), "stop");
    }
    for (const std::string& stop : r.stop) {
      if (stop.empty()) throw RequestError(400, "'stop' strings must not be empty", "stop");
    }
  }
  if (const json::Value* s = member(body, "stream")) r.stream = bool_field(*s, "stream");
  if (const json::Value* o = member(body, "stream_options")) {
    if (!o->is_object()) throw RequestError(400, "'stream_options' must be an object", "stream_options");
    if (const json::Value* u = member(*o, "include_usage")) r.include_usage = bool_field(*u, "stream_options.include_usage");
  }
  return r;
}

// nanochat's own body (spec §8.2): messages of user and assistant, temperature, top_k,
// max_tokens; always streamed.
inline ChatRequest parse_nanochat_chat_request(std::string_view body_text, const ChatDefaults& defaults,
                                               const ChatLimits& limits = {}) {
  using namespace detail;
  const json::Value body = parse_body(body_text);
  ChatRequest r = defaulted(defaults);
  r.conversation = read_messages(body, limits, false);
  read_sampling(body, limits, r);
  read_max_tokens(body, limits, r, "max_tokens");
  r.stream = true;
  return r;
}

// The prompt for the assistant's next turn: <|bos|>, the turns in nanochat's format, then
// <|assistant_start|>. Refused with OpenAI's context_length_exceeded when it leaves no room to
// reply within the model's context.
inline std::vector<std::int32_t> render_chat_prompt(const tokenizer::Tokenizer& tok, const tokenizer::Conversation& conv,
                                                    std::int64_t context) {
  const std::vector<tokenizer::TokenId> ids =
      tokenizer::render_conversation(tok, conv, std::numeric_limits<std::size_t>::max()).ids;
  std::vector<std::int32_t> prompt(ids.begin(), ids.end());
  prompt.push_back(static_cast<std::int32_t>(tok.encode_special("<|assistant_start|>")));
  if (static_cast<std::int64_t>(prompt.size()) >= context) {
    throw RequestError(400, cat("the conversation is ", prompt.size(), " tokens; the model's context of ", context,
                                " tokens leaves no room for a reply"),
                       "messages", "invalid_request_error", "context_length_exceeded");
  }
  return prompt;
}

}  // namespace nanochat::serve
