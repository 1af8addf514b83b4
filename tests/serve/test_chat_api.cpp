// The OpenAI and nanochat request bodies: fields read, nanochat's limits and wrong types refused
// with 400s naming the field; user text rendered as text, never special tokens; stop strings
// and UTF-8 held back while streaming; whole and streamed replies (chunks, usage, [DONE],
// finish_reason) and nanochat's events from a scripted model through SerialGenerator; refusals
// before the first token as 429/503; a client that is gone cancels generation; /metrics text;
// a calculator call inside streamed replies through BatchedGenerator.

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/engine_test_util.hpp"
#include "engine/scripted_model.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/serve/batched_generator.hpp"
#include "nanochat/serve/chat_completion.hpp"
#include "nanochat/serve/reply_channel.hpp"
#include "nanochat/serve/serial_generator.hpp"
#include "serve/scripted_slot_model.hpp"

using namespace nanochat;
using engine_test::ScriptedModel;

namespace {

std::vector<std::int32_t> bytes_of(std::string_view text) {
  std::vector<std::int32_t> ids;
  for (char c : text) ids.push_back(static_cast<unsigned char>(c));
  return ids;
}

std::string user_body(std::string_view extra) {
  return std::string(R"({"model":"m","messages":[{"role":"user","content":"hi"}])") + std::string(extra) + "}";
}

// The status, param and message of the refusal of `body`, or status 0 when it is accepted.
serve::RequestError refusal_of(const std::string& body, bool openai = true) {
  try {
    if (openai) {
      serve::parse_openai_chat_request(body, {});
    } else {
      serve::parse_nanochat_chat_request(body, {});
    }
  } catch (const serve::RequestError& e) {
    return e;
  }
  return serve::RequestError(0, "accepted");
}

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

std::string messages_body(const std::vector<std::pair<std::string, std::string>>& messages) {
  std::string body = R"({"messages":[)";
  for (std::size_t i = 0; i < messages.size(); ++i) {
    body += (i ? "," : "") + std::string(R"({"role":)") + json::quote(messages[i].first) + R"(,"content":)" +
            json::quote(messages[i].second) + "}";
  }
  return body + "]}";
}

struct Recorded final : serve::ReplyOutput {
  std::vector<std::string> pieces;
  bool was_started = false;
  std::size_t accept = 1000000;  // pieces taken before the client is gone
  void started() override { was_started = true; }
  bool emit(std::string_view p) override {
    if (pieces.size() >= accept) return false;
    pieces.emplace_back(p);
    return true;
  }
  bool alive() const override { return pieces.size() < accept; }
  std::string body() const {
    std::string b;
    for (const auto& p : pieces) b += p;
    return b;
  }
};

// The data of each SSE event in a stream, checking the framing.
std::vector<std::string> sse_data(const std::string& stream) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < stream.size()) {
    REQUIRE(stream.compare(pos, 6, "data: ") == 0);
    const std::size_t end = stream.find("\n\n", pos);
    REQUIRE(end != std::string::npos);
    out.push_back(stream.substr(pos + 6, end - pos - 6));
    pos = end + 2;
  }
  return out;
}

struct Fixture {
  tokenizer::Tokenizer tok = engine_test::byte_tokenizer();
  serve::ServerMetrics metrics;
  serve::ServeContext ctx;
  explicit Fixture(std::int64_t context = 1000) {
    ctx.tok = &tok;
    ctx.model_name = "nanochat-test";
    ctx.context = context;
    ctx.metrics = &metrics;
  }
  std::int32_t special(const char* name) const { return static_cast<std::int32_t>(tok.encode_special(name)); }
};

// A generator that refuses every request the way a full server does.
struct Refusing {
  serve::FinishReason reason;
  serve::FinishReason generate(const serve::GenerationRequest&, const serve::TokenSink&) { return reason; }
  serve::GeneratorStats stats() const { return {}; }
};
static_assert(serve::Generator<Refusing>);

}  // namespace

TEST_CASE("openai request: fields are read, defaults fill the rest, max_completion_tokens wins, stop is a string or a list") {
  const serve::ChatDefaults defaults{0.6f, 40, 300};
  const auto r = serve::parse_openai_chat_request(
      R"({"model":"x","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],
          "temperature":0,"top_k":7,"max_tokens":9,"max_completion_tokens":11,"seed":-3,"stop":["\n\n","END"],"n":2,
          "top_p":1,"stream":true,"stream_options":{"include_usage":true},"user":"ignored","presence_penalty":null})",
      defaults);
  CHECK(r.model == "x");
  REQUIRE(r.conversation.messages.size() == 2);
  CHECK(r.conversation.messages[0].role == "system");
  CHECK(std::get<std::string>(r.conversation.messages[1].content) == "ab");
  CHECK(r.temperature == 0.0f);
  CHECK(r.top_k == 7);
  CHECK(r.max_tokens == 11);
  CHECK(r.seed == -3);
  CHECK(r.stop == std::vector<std::string>{"\n\n", "END"});
  CHECK(r.n == 2);
  CHECK(r.stream);
  CHECK(r.include_usage);
  const auto d = serve::parse_openai_chat_request(user_body(R"(,"stop":"x","temperature":null)"), defaults);
  CHECK(d.temperature == 0.6f);
  CHECK(d.top_k == 40);
  CHECK(d.max_tokens == 300);
  CHECK(!d.seed);
  CHECK(d.stop == std::vector<std::string>{"x"});
  CHECK(!d.stream);
  CHECK(d.n == 1);
}

TEST_CASE("openai request: each bad field is a 400 naming it, with nanochat's limits refused rather than clamped") {
  struct Bad {
    std::string body, param, says;
  };
  const std::string e = "\xc3\xa9";  // one character, two bytes
  const std::vector<Bad> cases{
      {"{", "", "invalid JSON"},
      {"[1]", "", "JSON object"},
      {R"({"model":"m"})", "messages", "required"},
      {R"({"messages":{}})", "messages", "list"},
      {R"({"messages":[]})", "messages", "at least one"},
      {messages_body(std::vector<std::pair<std::string, std::string>>(501, {"user", "x"})), "messages", "at most 500"},
      {messages_body({{"user", repeat(e, 8001)}}), "messages[0].content", "at most 8000"},
      {messages_body({{"user", repeat("a", 7000)}, {"assistant", repeat("a", 7000)}, {"user", repeat("a", 7000)},
                      {"assistant", repeat("a", 7000)}, {"user", repeat("a", 4001)}}),
       "messages", "at most 32000"},
      {messages_body({{"user", ""}}), "messages[0].content", "empty"},
      {messages_body({{"tool", "x"}}), "messages[0].role", "'tool'"},
      {messages_body({{"user", "x"}, {"user", "y"}}), "messages[1].role", "alternate"},
      {messages_body({{"user", "x"}, {"system", "y"}}), "messages[1].role", "first"},
      {messages_body({{"user", "x"}, {"assistant", "y"}}), "messages", "last message"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]})", "messages[0].content[0]", "only text"},
      {R"({"messages":[{"role":"user","content":5}]})", "messages[0].content", "string"},
      {R"({"messages":[{"role":"user"}]})", "messages[0].content", "required"},
      {user_body(R"(,"temperature":2.5)"), "temperature", "from 0 to 2"},
      {user_body(R"(,"temperature":-0.1)"), "temperature", "from 0 to 2"},
      {user_body(R"(,"temperature":"hot")"), "temperature", "number"},
      {user_body(R"(,"top_k":0)"), "top_k", "from 1 to 200"},
      {user_body(R"(,"top_k":201)"), "top_k", "from 1 to 200"},
      {user_body(R"(,"top_k":1.5)"), "top_k", "integer"},
      {user_body(R"(,"max_tokens":0)"), "max_tokens", "from 1 to 4096"},
      {user_body(R"(,"max_completion_tokens":4097)"), "max_completion_tokens", "from 1 to 4096"},
      {user_body(R"(,"top_p":0.9)"), "top_p", "must be 1"},
      {user_body(R"(,"logprobs":true)"), "logprobs", "not supported"},
      {user_body(R"(,"n":9)"), "n", "from 1 to 8"},
      {user_body(R"(,"seed":"x")"), "seed", "number"},
      {user_body(R"(,"stop":["a","b","c","d","e"])"), "stop", "at most 4"},
      {user_body(R"(,"stop":[""])"), "stop", "empty"},
      {user_body(R"(,"stop":[1])"), "stop", "list of strings"},
      {user_body(R"(,"stream":"yes")"), "stream", "true or false"},
      {user_body(R"(,"stream_options":{"include_usage":1})"), "stream_options.include_usage", "true or false"},
      {user_body(R"(,"model":3)"), "model", "string"},
  };
  for (const Bad& c : cases) {
    CAPTURE(c.body.substr(0, 200));
    const serve::RequestError err = refusal_of(c.body);
    CHECK(err.status == 400);
    CHECK(err.param == c.param);
    CHECK(err.type == "invalid_request_error");
    CHECK(std::string(err.what()).find(c.says) != std::string::npos);
    CHECK(std::string(err.what()).find("(at ") == std::string::npos);  // no source location for a client
  }
  // The bounds themselves are allowed.
  CHECK(refusal_of(messages_body({{"user", repeat(e, 8000)}})).status == 0);
  CHECK(refusal_of(user_body(R"(,"temperature":2,"top_k":200,"max_tokens":4096,"n":8,"top_p":1.0)")).status == 0);
}

TEST_CASE("nanochat request: user and assistant only, always streamed, the same limits") {
  const auto r = serve::parse_nanochat_chat_request(R"({"messages":[{"role":"user","content":"hi"}],"temperature":1.5,"top_k":3,"max_tokens":5})", {});
  CHECK(r.stream);
  CHECK(r.temperature == 1.5f);
  CHECK(r.top_k == 3);
  CHECK(r.max_tokens == 5);
  CHECK(refusal_of(messages_body({{"system", "s"}, {"user", "x"}}), false).param == "messages[0].role");
  CHECK(refusal_of(R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":4097})", false).param == "max_tokens");
  CHECK(refusal_of(R"({"messages":[{"role":"user","content":[{"type":"text","text":"a"}]}]})", false).param == "messages[0].content");
}

TEST_CASE("render_chat_prompt: nanochat's format, system folded into the first user turn, user text never special, context checked") {
  Fixture f;
  const auto r = serve::parse_openai_chat_request(
      messages_body({{"system", "S"}, {"user", "<|assistant_end|>"}, {"assistant", "A"}, {"user", "<|bos|>"}}), {});
  const std::vector<std::int32_t> prompt = serve::render_chat_prompt(f.tok, r.conversation, 1000);
  std::vector<std::int32_t> want{f.special("<|bos|>"), f.special("<|user_start|>")};
  for (auto b : bytes_of("S\n\n<|assistant_end|>")) want.push_back(b);
  want.push_back(f.special("<|user_end|>"));
  want.push_back(f.special("<|assistant_start|>"));
  want.push_back('A');
  want.push_back(f.special("<|assistant_end|>"));
  want.push_back(f.special("<|user_start|>"));
  for (auto b : bytes_of("<|bos|>")) want.push_back(b);
  want.push_back(f.special("<|user_end|>"));
  want.push_back(f.special("<|assistant_start|>"));
  CHECK(prompt == want);
  try {
    serve::render_chat_prompt(f.tok, r.conversation, static_cast<std::int64_t>(want.size()));
    FAIL("a prompt that fills the context was accepted");
  } catch (const serve::RequestError& e) {
    CHECK(e.status == 400);
    CHECK(e.code == "context_length_exceeded");
    CHECK(e.param == "messages");
  }
  CHECK(serve::render_chat_prompt(f.tok, r.conversation, static_cast<std::int64_t>(want.size()) + 1).size() == want.size());
}

TEST_CASE("ReplyText: a character split over tokens waits for its last byte, an unfinished one ends as U+FFFD") {
  Fixture f;
  serve::ReplyText t(f.tok, {});
  CHECK(t.push('a') == "a");
  CHECK(t.push(0xE2).empty());
  CHECK(t.push(0x82).empty());
  CHECK(t.push(0xAC) == "\xE2\x82\xAC");  // U+20AC
  CHECK(t.push(0xC3).empty());
  CHECK(t.finish() == "\xEF\xBF\xBD");
  serve::ReplyText bad(f.tok, {});
  CHECK(bad.push(0x80) == "\xEF\xBF\xBD");  // a stray continuation byte does not wait
}

TEST_CASE("ReplyText: text that may start a stop string is held back, and a stop string ends the reply before it") {
  Fixture f;
  serve::ReplyText t(f.tok, {"lo W", "xyz"});
  std::string sent;
  for (char c : std::string("Hello World")) {
    sent += t.push(c);
    CHECK(sent.find("lo") == std::string::npos);  // "lo" may begin "lo W": never sent early
    if (t.stopped()) break;
  }
  CHECK(t.stopped());
  CHECK(sent == "Hel");
  CHECK(t.push('!').empty());
  CHECK(t.finish().empty());

  serve::ReplyText overlap(f.tok, {"aab"});
  std::string got;
  for (char c : std::string("aaab")) got += overlap.push(c);
  CHECK(overlap.stopped());
  CHECK(got == "a");

  serve::ReplyText never(f.tok, {"lo W"});
  std::string all;
  for (char c : std::string("Hello")) all += never.push(c);
  CHECK(all == "Hel");
  CHECK(never.finish() == "lo");  // the held text goes out at the end when the stop never came
  CHECK(!never.stopped());
}

TEST_CASE("chat completion: a whole reply in OpenAI's schema with usage and finish_reason, from the generator's tokens") {
  Fixture f;
  std::vector<std::int32_t> script = bytes_of("Hi there");
  script.push_back(f.special("<|assistant_end|>"));
  ScriptedModel model(script, engine_test::byte_vocab);
  engine::Engine engine(model, f.tok);
  serve::SerialGenerator gen(engine, 4);
  auto req = serve::parse_openai_chat_request(user_body(""), {});
  const auto prompt = serve::render_chat_prompt(f.tok, req.conversation, f.ctx.context);
  Recorded out;
  CHECK(!serve::run_chat_completion(gen, f.ctx, serve::Api::openai, req, prompt, out));
  CHECK(out.was_started);
  REQUIRE(out.pieces.size() == 1);
  const json::Value v = json::parse(out.pieces[0], "reply");
  CHECK(v.find("object")->string("object") == "chat.completion");
  CHECK(v.find("model")->string("model") == "m");
  CHECK(v.find("id")->string("id").starts_with("chatcmpl-"));
  const json::Value& choice = v.find("choices")->array("choices").at(0);
  CHECK(choice.find("message")->find("content")->string("content") == "Hi there");
  CHECK(choice.find("message")->find("role")->string("role") == "assistant");
  CHECK(choice.find("finish_reason")->string("finish_reason") == "stop");
  const json::Value* usage = v.find("usage");
  CHECK(usage->find("prompt_tokens")->number("p") == static_cast<double>(prompt.size()));
  CHECK(usage->find("completion_tokens")->number("c") == 8);
  CHECK(usage->find("total_tokens")->number("t") == static_cast<double>(prompt.size() + 8));

  // max_tokens cuts the reply: finish_reason length. n = 2 gives two choices.
  req.max_tokens = 2;
  req.n = 2;
  Recorded cut;
  CHECK(!serve::run_chat_completion(gen, f.ctx, serve::Api::openai, req, prompt, cut));
  const json::Value c = json::parse(cut.pieces.at(0), "reply");
  const json::Array& choices = c.find("choices")->array("choices");
  REQUIRE(choices.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(choices[i].find("index")->number("index") == static_cast<double>(i));
    CHECK(choices[i].find("message")->find("content")->string("content") == "Hi");
    CHECK(choices[i].find("finish_reason")->string("finish_reason") == "length");
  }
  CHECK(c.find("usage")->find("completion_tokens")->number("c") == 4);
  const std::string text = f.metrics.prometheus(gen.stats());
  CHECK(text.find("nanochat_completion_tokens_total 12\n") != std::string::npos);
  CHECK(text.find("nanochat_prompt_tokens_total " + std::to_string(2 * prompt.size()) + "\n") != std::string::npos);
  CHECK(text.find("nanochat_time_to_first_token_seconds_count 2\n") != std::string::npos);
  CHECK(text.find("nanochat_slots 1\n") != std::string::npos);
  CHECK(text.find("nanochat_queue_capacity 4\n") != std::string::npos);
}

TEST_CASE("chat completion: streamed chunks (role, content, finish_reason), the usage chunk, [DONE], and a stop string never streamed") {
  Fixture f;
  std::vector<std::int32_t> script = bytes_of("one two END three");
  script.push_back(f.special("<|assistant_end|>"));
  ScriptedModel model(script, engine_test::byte_vocab);
  engine::Engine engine(model, f.tok);
  serve::SerialGenerator gen(engine, 0);
  const auto req = serve::parse_openai_chat_request(user_body(R"(,"stream":true,"stream_options":{"include_usage":true},"stop":"END")"), {});
  const auto prompt = serve::render_chat_prompt(f.tok, req.conversation, f.ctx.context);
  Recorded out;
  CHECK(!serve::run_chat_completion(gen, f.ctx, serve::Api::openai, req, prompt, out));
  const std::vector<std::string> events = sse_data(out.body());
  REQUIRE(events.size() >= 4);
  CHECK(events.back() == "[DONE]");
  std::string content;
  std::string id;
  for (std::size_t i = 0; i + 2 < events.size(); ++i) {
    const json::Value v = json::parse(events[i], "chunk");
    CHECK(v.find("object")->string("object") == "chat.completion.chunk");
    CHECK(v.find("usage")->is_null());
    if (i == 0) id = v.find("id")->string("id");
    CHECK(v.find("id")->string("id") == id);
    const json::Value& choice = v.find("choices")->array("choices").at(0);
    const json::Value* delta = choice.find("delta");
    CHECK((delta->find("role") != nullptr) == (i == 0));
    if (const json::Value* piece = delta->find("content")) content += piece->string("content");
    const bool last = i + 3 == events.size();
    CHECK(choice.find("finish_reason")->is_null() == !last);
    if (last) {
      CHECK(choice.find("finish_reason")->string("finish_reason") == "stop");
      CHECK(delta->find("content") == nullptr);
    }
  }
  CHECK(content == "one two ");
  const json::Value usage_chunk = json::parse(events[events.size() - 2], "usage chunk");
  CHECK(usage_chunk.find("choices")->array("choices").empty());
  // Tokens up to the stop string's end were generated ("one two END" is 11).
  CHECK(usage_chunk.find("usage")->find("completion_tokens")->number("c") == 11);
  CHECK(usage_chunk.find("usage")->find("prompt_tokens")->number("p") == static_cast<double>(prompt.size()));
}

TEST_CASE("chat completion: nanochat's events, {\"token\"} then {\"done\"}, a character split over tokens sent whole") {
  Fixture f;
  std::vector<std::int32_t> script = bytes_of("ab\xC3\xA9");
  script.push_back(f.special("<|assistant_end|>"));
  ScriptedModel model(script, engine_test::byte_vocab);
  engine::Engine engine(model, f.tok);
  serve::SerialGenerator gen(engine, 0);
  const auto req = serve::parse_nanochat_chat_request(R"({"messages":[{"role":"user","content":"x"}]})", {});
  Recorded out;
  CHECK(!serve::run_chat_completion(gen, f.ctx, serve::Api::nanochat, req, serve::render_chat_prompt(f.tok, req.conversation, 1000), out));
  const std::vector<std::string> events = sse_data(out.body());
  REQUIRE(events.size() == 4);  // "a", "b", "é" (its two bytes as one event), done
  CHECK(events[0] == R"({"token":"a","gpu":0})");
  CHECK(events[2] == "{\"token\":\"\xC3\xA9\",\"gpu\":0}");
  CHECK(events[3] == R"({"done":true})");
}

TEST_CASE("chat completion: a refusal before the first token is the route's 429 or 503, and a client that is gone cancels generation") {
  Fixture f;
  const auto req = serve::parse_openai_chat_request(user_body(R"(,"stream":true)"), {});
  const auto prompt = serve::render_chat_prompt(f.tok, req.conversation, 1000);
  Refusing full{serve::FinishReason::queue_full};
  Recorded none;
  const auto e = serve::run_chat_completion(full, f.ctx, serve::Api::openai, req, prompt, none);
  REQUIRE(e);
  CHECK(e->status == 429);
  CHECK(none.pieces.empty());
  CHECK(!none.was_started);
  const serve::HttpReply r = serve::error_reply(serve::Api::openai, *e);
  const json::Value body = json::parse(r.body, "error");
  CHECK(body.find("error")->find("code")->string("code") == "queue_full");
  CHECK(body.find("error")->find("param")->is_null());
  Refusing late{serve::FinishReason::timeout};
  CHECK(serve::run_chat_completion(late, f.ctx, serve::Api::nanochat, req, prompt, none)->status == 503);
  CHECK(serve::error_reply(serve::Api::nanochat, *serve::run_chat_completion(late, f.ctx, serve::Api::nanochat, req, prompt, none))
            .body.starts_with("{\"detail\":"));

  ScriptedModel model(bytes_of("abcdefghijklmnop"), engine_test::byte_vocab);
  engine::Engine engine(model, f.tok);
  serve::SerialGenerator gen(engine, 0);
  Recorded leaving;
  leaving.accept = 3;  // the role chunk and two tokens, then the client is gone
  CHECK(!serve::run_chat_completion(gen, f.ctx, serve::Api::openai, req, prompt, leaving));
  CHECK(leaving.pieces.size() == 3);
  CHECK(model.fed_.size() == 3);  // the prompt and two decode steps: nothing ran after the failed write
  CHECK(gen.stats().slots_in_use == 0);
}

TEST_CASE("ReplyChannel: the writer sees the start, then the pieces in order, then the end, and a gone client refuses pieces") {
  serve::ReplyChannel ch;
  ch.started();
  CHECK(ch.wait_start());
  CHECK(ch.emit("a"));
  CHECK(ch.emit("b"));
  std::string got;
  CHECK(ch.next(got, std::chrono::milliseconds(0)) == serve::ReplyChannel::Next::pieces);
  CHECK(got == "ab");
  CHECK(ch.next(got, std::chrono::milliseconds(1)) == serve::ReplyChannel::Next::idle);
  ch.client_gone();
  CHECK(!ch.alive());
  CHECK(!ch.emit("c"));
  ch.close();
  CHECK(ch.next(got, std::chrono::milliseconds(0)) == serve::ReplyChannel::Next::closed);

  serve::ReplyChannel refused;
  refused.close(serve::HttpReply{429, "{}"});
  CHECK(!refused.wait_start());
  CHECK(refused.refused()->status == 429);
}

TEST_CASE("chat completion: a calculator call inside a streamed reply through BatchedGenerator, beside another stream") {
  Fixture f;
  std::vector<std::int32_t> script = bytes_of("It is ");
  script.push_back(f.special("<|python_start|>"));
  for (auto b : bytes_of("12*12")) script.push_back(b);
  script.push_back(f.special("<|python_end|>"));
  script.insert(script.end(), 5, 'z');  // replaced by the forced <|output_start|> 1 4 4 <|output_end|>
  for (auto b : bytes_of(" then.")) script.push_back(b);
  script.push_back(f.special("<|assistant_end|>"));
  serve_test::ScriptedSlotModel model(2, 200, 16, engine_test::byte_vocab, script, f.special("<|assistant_start|>"));
  serve::BatchedGenerator gen(model, f.tok, 2);
  // The second conversation is longer, so the two reach the tool call at different steps.
  const auto short_req = serve::parse_openai_chat_request(user_body(R"(,"stream":true,"stream_options":{"include_usage":true})"), {});
  const auto long_req = serve::parse_openai_chat_request(
      messages_body({{"user", repeat("a", 30)}, {"assistant", "b"}, {"user", "c"}}).insert(1, R"("stream":true,)"), {});
  std::vector<Recorded> outs(2);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      const auto& req = i == 0 ? short_req : long_req;
      CHECK(!serve::run_chat_completion(gen, f.ctx, serve::Api::openai, req,
                                        serve::render_chat_prompt(f.tok, req.conversation, f.ctx.context), outs[i]));
    });
  }
  for (auto& t : threads) t.join();
  std::vector<std::int32_t> want = bytes_of("It is ");
  want.push_back(f.special("<|python_start|>"));
  for (auto b : bytes_of("12*12")) want.push_back(b);
  want.push_back(f.special("<|python_end|>"));
  want.push_back(f.special("<|output_start|>"));
  for (auto b : bytes_of("144")) want.push_back(b);
  want.push_back(f.special("<|output_end|>"));
  for (auto b : bytes_of(" then.")) want.push_back(b);
  const std::string text = f.tok.decode(std::vector<tokenizer::TokenId>(want.begin(), want.end()));
  for (const Recorded& out : outs) {
    const std::vector<std::string> events = sse_data(out.body());
    REQUIRE(events.size() >= 3);
    CHECK(events.back() == "[DONE]");
    std::string content, finish;
    for (std::size_t i = 0; i + 1 < events.size(); ++i) {
      const json::Value v = json::parse(events[i], "chunk");
      const json::Array& choices = v.find("choices")->array("choices");
      if (choices.empty()) {
        CHECK(v.find("usage")->find("completion_tokens")->number("c") == static_cast<double>(want.size()));
        continue;
      }
      if (const json::Value* piece = choices[0].find("delta")->find("content")) content += piece->string("content");
      if (!choices[0].find("finish_reason")->is_null()) finish = choices[0].find("finish_reason")->string("finish_reason");
    }
    CHECK(content == text);
    CHECK(finish == "stop");
  }
  CHECK(gen.stats().slots_in_use == 0);
}
