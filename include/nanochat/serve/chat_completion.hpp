#pragma once
// One chat completion through any Generator, written for either API: OpenAI's (a whole
// chat.completion, or chat.completion.chunk events then [DONE]) or nanochat's ({"token"} events
// then {"done"}). The reply's body goes to a ReplyOutput piece by piece as it is made; the
// HTTP side only moves the pieces. The n choices of a request run one after another (choice i
// with seed + i). A refusal before anything was sent (queue full, timed out in the queue) comes
// back as a RequestError, so the HTTP side can still answer with its status; after the first
// piece, a refusal is an error event in the stream. A client that is gone cancels generation at
// the next token.

#include <chrono>
#include <cstdint>
#include <ctime>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/serve/chat_request.hpp"
#include "nanochat/serve/generator.hpp"
#include "nanochat/serve/openai_format.hpp"
#include "nanochat/serve/reply_text.hpp"
#include "nanochat/serve/server_metrics.hpp"

namespace nanochat::serve {

enum class Api { openai, nanochat };

// Where a completion's body goes. started() comes at the first generated token (before any
// piece); emit() gets the pieces in order and returns false when the client is gone, as
// alive() does.
class ReplyOutput {
 public:
  virtual ~ReplyOutput() = default;
  virtual void started() = 0;
  virtual bool emit(std::string_view piece) = 0;
  virtual bool alive() const = 0;
};

// The server's side of a completion: the tokenizer, the name it answers as, the model's
// context, how long a request may wait for a slot, and where counts go.
struct ServeContext {
  const tokenizer::Tokenizer* tok = nullptr;
  std::string model_name;
  std::int64_t context = 0;
  std::chrono::milliseconds queue_timeout{60'000};
  ServerMetrics* metrics = nullptr;
};

// The HTTP answer for a refused request, in the route's error shape.
struct HttpReply {
  int status = 200;
  std::string body;
};

inline HttpReply error_reply(Api api, const RequestError& e) {
  if (api == Api::nanochat) return {e.status, nanochat_error_json(e.what())};
  return {e.status, error_json(e.what(), e.type, e.param, e.code)};
}

inline RequestError refusal(FinishReason reason) {
  if (reason == FinishReason::queue_full) {
    return RequestError(429, "every generation slot is busy and the wait queue is full; retry later", "",
                        "rate_limit_error", "queue_full");
  }
  return RequestError(503, "the request waited for a generation slot past its deadline; retry later", "",
                      "timeout_error", "queue_timeout");
}

inline std::string completion_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "chatcmpl-";
  for (int i = 0; i < 24; ++i) id += kHex[rng() & 15];
  return id;
}

// A seed for a request that names none, in [0, 2^31 - 1] as nanochat's chat_web draws it.
inline std::uint64_t random_seed() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng() & 0x7fffffffu;
}

template <Generator G>
std::optional<RequestError> run_chat_completion(G& gen, const ServeContext& ctx, Api api, const ChatRequest& req,
                                                const std::vector<std::int32_t>& prompt, ReplyOutput& out) {
  using clock = std::chrono::steady_clock;
  const auto arrived = clock::now();
  const CompletionHeader header{completion_id(), static_cast<std::int64_t>(std::time(nullptr)),
                                req.model.empty() ? ctx.model_name : req.model};
  const bool openai_stream = api == Api::openai && req.stream;
  std::vector<Choice> choices;
  Usage usage{static_cast<std::int64_t>(prompt.size()), 0};
  bool any_piece = false, any_token = false;
  const auto send = [&](const std::string& piece) {
    any_piece = true;
    return out.emit(piece);
  };
  const auto send_text = [&](std::size_t index, const std::string& text) {
    if (text.empty()) return out.alive();
    if (api == Api::nanochat) return send(nanochat_token_event(text, 0));
    if (openai_stream) return send(sse_event(chunk_json(header, index, {false, text, true, {}}, req.include_usage)));
    choices[index].text += text;
    return out.alive();
  };

  for (int i = 0; i < req.n; ++i) {
    const auto index = static_cast<std::size_t>(i);
    choices.push_back({});
    GenerationRequest g;
    g.prompt = prompt;
    g.max_tokens = req.max_tokens;
    g.sampling = {req.temperature, req.top_k, req.seed ? static_cast<std::uint64_t>(*req.seed + i) : random_seed()};
    g.deadline = clock::now() + ctx.queue_timeout;
    ReplyText text(*ctx.tok, req.stop);
    std::int64_t tokens = 0;
    clock::time_point first{}, last{};
    bool client_gone = false;
    const FinishReason reason = gen.generate(g, [&](const GeneratedToken& t) {
      last = clock::now();
      if (tokens++ == 0) {
        first = last;
        if (i == 0 && ctx.metrics) ctx.metrics->first_token(std::chrono::duration<double>(first - arrived).count());
        if (!any_token) out.started();
        any_token = true;
        if (openai_stream && !send(sse_event(chunk_json(header, index, {true, "", true, {}}, req.include_usage)))) {
          client_gone = true;
          return false;
        }
      }
      const std::string piece = text.push(t.id);
      if (!send_text(index, piece)) {
        client_gone = true;
        return false;
      }
      return !text.stopped();
    });
    usage.completion_tokens += tokens;
    if (ctx.metrics) {
      ctx.metrics->generated(i == 0 ? usage.prompt_tokens : 0, tokens, std::chrono::duration<double>(last - first).count());
    }
    if (client_gone || (reason == FinishReason::cancelled && !text.stopped())) return std::nullopt;
    if (reason == FinishReason::queue_full || reason == FinishReason::timeout) {
      const RequestError e = refusal(reason);
      if (!any_piece && !any_token) return e;
      // Part of the reply is out (a stream, or a whole reply already answered with 200): it
      // ends with the error.
      const std::string body = api == Api::openai ? error_json(e.what(), e.type, e.param, e.code) : nanochat_error_json(e.what());
      send(req.stream ? sse_event(body) : body);
      return std::nullopt;
    }
    if (!send_text(index, text.finish())) return std::nullopt;
    choices[index].finish_reason = reason == FinishReason::length ? "length" : "stop";
    if (openai_stream && tokens == 0 && !send(sse_event(chunk_json(header, index, {true, "", true, {}}, req.include_usage)))) {
      return std::nullopt;
    }
    if (openai_stream && !send(sse_event(chunk_json(header, index, {false, "", false, choices[index].finish_reason}, req.include_usage)))) {
      return std::nullopt;
    }
  }
  if (api == Api::nanochat) {
    send(nanochat_done_event());
  } else if (openai_stream) {
    if (req.include_usage) send(sse_event(usage_chunk_json(header, usage)));
    send(std::string(sse_done));
  } else {
    send(completion_json(header, choices, usage));
  }
  return std::nullopt;
}

}  // namespace nanochat::serve
