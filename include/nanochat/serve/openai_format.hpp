#pragma once
// The JSON the server answers with: OpenAI's chat.completion and chat.completion.chunk objects,
// its error object and model list, Server-Sent Events framing (`data: ...\n\n`, `data: [DONE]`),
// and nanochat's own events (spec §8.2: {"token": ..., "gpu": ...} then {"done": true}, errors
// as FastAPI's {"detail": ...}). Text is written as it is (UTF-8 kept, not \u-escaped).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/json.hpp"

namespace nanochat::serve {

struct Usage {
  std::int64_t prompt_tokens = 0, completion_tokens = 0;
};

struct Choice {
  std::string text;
  std::string finish_reason;  // "stop" or "length"
};

// Fields every object of one completion shares.
struct CompletionHeader {
  std::string id;  // "chatcmpl-..."
  std::int64_t created = 0;  // Unix seconds
  std::string model;
};

inline std::string sse_event(std::string_view data) { return "data: " + std::string(data) + "\n\n"; }
inline constexpr std::string_view sse_done = "data: [DONE]\n\n";

inline std::string usage_json(const Usage& u) {
  return "{\"prompt_tokens\":" + std::to_string(u.prompt_tokens) + ",\"completion_tokens\":" +
         std::to_string(u.completion_tokens) + ",\"total_tokens\":" + std::to_string(u.prompt_tokens + u.completion_tokens) + "}";
}

namespace detail {
inline std::string header_json(const CompletionHeader& h, std::string_view object) {
  return "{\"id\":" + json::quote(h.id) + ",\"object\":\"" + std::string(object) + "\",\"created\":" +
         std::to_string(h.created) + ",\"model\":" + json::quote(h.model);
}
inline std::string nullable(std::string_view s) { return s.empty() ? "null" : json::quote(s); }
}  // namespace detail

inline std::string completion_json(const CompletionHeader& h, const std::vector<Choice>& choices, const Usage& usage) {
  std::string out = detail::header_json(h, "chat.completion") + ",\"choices\":[";
  for (std::size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) out += ',';
    out += "{\"index\":" + std::to_string(i) + ",\"message\":{\"role\":\"assistant\",\"content\":" +
           json::quote(choices[i].text) + "},\"logprobs\":null,\"finish_reason\":" +
           detail::nullable(choices[i].finish_reason) + "}";
  }
  return out + "],\"usage\":" + usage_json(usage) + "}";
}

// One streamed piece of choice `index`: the role (first chunk), content, or the finish reason
// (last chunk, empty delta). With include_usage every chunk carries "usage": null, as OpenAI's.
struct ChunkDelta {
  bool role = false;
  std::string content;
  bool has_content = false;
  std::string finish_reason;
};

inline std::string chunk_json(const CompletionHeader& h, std::size_t index, const ChunkDelta& d, bool include_usage) {
  std::string delta = "{";
  if (d.role) delta += "\"role\":\"assistant\"";
  if (d.has_content) delta += std::string(d.role ? "," : "") + "\"content\":" + json::quote(d.content);
  delta += "}";
  return detail::header_json(h, "chat.completion.chunk") + ",\"choices\":[{\"index\":" + std::to_string(index) +
         ",\"delta\":" + delta + ",\"logprobs\":null,\"finish_reason\":" + detail::nullable(d.finish_reason) + "}]" +
         (include_usage ? ",\"usage\":null" : "") + "}";
}

// The chunk after the last choice finishes when stream_options.include_usage is set.
inline std::string usage_chunk_json(const CompletionHeader& h, const Usage& usage) {
  return detail::header_json(h, "chat.completion.chunk") + ",\"choices\":[],\"usage\":" + usage_json(usage) + "}";
}

// OpenAI's error body: {"error": {"message", "type", "param", "code"}}.
inline std::string error_json(std::string_view message, std::string_view type, std::string_view param, std::string_view code) {
  return "{\"error\":{\"message\":" + json::quote(message) + ",\"type\":" + json::quote(type) +
         ",\"param\":" + detail::nullable(param) + ",\"code\":" + detail::nullable(code) + "}}";
}

inline std::string models_json(std::string_view model, std::int64_t created) {
  return "{\"object\":\"list\",\"data\":[{\"id\":" + json::quote(model) + ",\"object\":\"model\",\"created\":" +
         std::to_string(created) + ",\"owned_by\":\"nanochat\"}]}";
}

inline std::string nanochat_token_event(std::string_view text, int gpu) {
  return sse_event("{\"token\":" + json::quote(text) + ",\"gpu\":" + std::to_string(gpu) + "}");
}
inline std::string nanochat_done_event() { return sse_event("{\"done\":true}"); }
inline std::string nanochat_error_json(std::string_view detail) { return "{\"detail\":" + json::quote(detail) + "}"; }

}  // namespace nanochat::serve
