// chat_web: serve a chat model over HTTP (spec §8.2, issue 20): OpenAI's POST
// /v1/chat/completions (whole or streamed as SSE) and GET /v1/models, nanochat's own POST
// /chat/completions event stream, GET /health and Prometheus GET /metrics. Loads a checkpoint as
// chat_cli does; with --slots 1 answers one request at a time on the Engine
// (serve/serial_generator.hpp), with more decodes that many at once by continuous batching over a
// KV-cache pool (serve/batched_generator.hpp); either way with a bounded wait queue (429 beyond).
// The HTTP side is cpp-httplib (Debian's libcpp-httplib-dev): a
// blocking thread-per-connection server, which suits a generator that blocks its caller. The
// request logic lives in include/nanochat/serve/; this file moves bytes between it and sockets.

#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/core/flags.hpp"
#include "nanochat/core/read_file.hpp"
#include "nanochat/core/limits.hpp"
#include "nanochat/data/paths.hpp"
#include "nanochat/engine/chat_model.hpp"
#include "nanochat/model/slot_decoder.hpp"
#include "nanochat/serve/batched_generator.hpp"
#include "nanochat/serve/chat_completion.hpp"
#include "nanochat/serve/chat_page.hpp"
#include "nanochat/serve/reply_channel.hpp"
#include "nanochat/serve/serial_generator.hpp"

using namespace nanochat;
using nanochat::cpu::Cpu;

namespace {

struct Options {
  std::string checkpoint, source = "sft", model_tag, tokenizer, device = "cpu", dtype = "bfloat16";
  std::string host = "127.0.0.1", api_key, marked_js = "/usr/share/javascript/marked/marked.min.js";
  std::int64_t step = -1, max_tokens = 512, slots = 1, context = 0, queue = 16, max_body = 1 << 20;
  int port = 8000, top_k = 50;
  float temperature = 0.8f;
  double queue_timeout = 60, io_timeout = 30;
};

// One completion in flight: its channel, and the thread generating into it. Destroyed when the
// response is done (or abandoned): the client is marked gone, so the thread ends at its next token.
struct Job {
  serve::ReplyChannel channel;
  std::thread worker;
  ~Job() {
    channel.client_gone();
    if (worker.joinable()) worker.join();
  }
};

struct InFlight {
  serve::ServerMetrics* m;
  explicit InFlight(serve::ServerMetrics& metrics) : m(&metrics) { m->enter(); }
  ~InFlight() { m->leave(); }
};

template <class G>
class ChatServer {
 public:
  ChatServer(G& gen, const serve::ServeContext& ctx, const serve::ChatDefaults& defaults, const Options& opt)
      : gen_(gen), ctx_(ctx), defaults_(defaults), opt_(opt), marked_js_(load_marked(opt.marked_js)) {}

  void routes(httplib::Server& svr) {
    // The page and its markdown script hold nothing of the model's: no API key asked for them.
    svr.Get("/", [](const httplib::Request&, httplib::Response& r) {
      r.set_content(serve::chat_page_html.data(), serve::chat_page_html.size(), "text/html; charset=utf-8");
    });
    svr.Get("/marked.min.js", [this](const httplib::Request&, httplib::Response& r) {
      if (marked_js_.empty()) {
        r.status = 404;
        r.set_content(cat("// chat_web has no markdown script: ", opt_.marked_js, " is missing (apt install libjs-marked)\n"),
                      "text/javascript");
        return;
      }
      r.set_content(marked_js_, "text/javascript; charset=utf-8");
    });
    svr.Post("/v1/chat/completions", [this](const httplib::Request& q, httplib::Response& r) { chat(serve::Api::openai, q, r); });
    svr.Post("/chat/completions", [this](const httplib::Request& q, httplib::Response& r) { chat(serve::Api::nanochat, q, r); });
    svr.Get("/v1/models", [this](const httplib::Request& q, httplib::Response& r) {
      if (!authorized(serve::Api::openai, q, r, "/v1/models")) return;
      r.set_content(serve::models_json(ctx_.model_name, started_), "application/json");
      metrics().request_done("/v1/models", 200);
    });
    svr.Get("/health", [this](const httplib::Request&, httplib::Response& r) {
      const serve::GeneratorStats s = gen_.stats();
      r.set_content(cat("{\"status\":\"ok\",\"ready\":true,\"slots\":", s.slots, ",\"slots_in_use\":", s.slots_in_use,
                        ",\"available_workers\":", s.slots - s.slots_in_use, ",\"queued\":", s.queued,
                        ",\"queue_capacity\":", s.queue_capacity, ",\"prompt_tokens_reused\":", s.prompt_tokens_reused, "}"),
                    "application/json");
    });
    svr.Get("/metrics", [this](const httplib::Request& q, httplib::Response& r) {
      if (!authorized(serve::Api::openai, q, r, "/metrics")) return;
      r.set_content(metrics().prometheus(gen_.stats()), "text/plain; version=0.0.4");
    });
    // CORS preflight: nanochat's server allows every origin, method and header.
    svr.Options(".*", [](const httplib::Request&, httplib::Response& r) {
      r.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      r.set_header("Access-Control-Allow-Headers", "*");
      r.status = 204;
    });
    svr.set_error_handler([this](const httplib::Request& q, httplib::Response& r) {
      if (!r.body.empty()) return;
      const std::string message = r.status == 413 ? cat("the request body is larger than ", opt_.max_body, " bytes")
                                  : r.status == 404 ? cat("no route ", q.method, " ", q.path)
                                                    : cat("HTTP ", r.status);
      r.set_content(serve::error_json(message, "invalid_request_error", "", ""), "application/json");
    });
  }

 private:
  serve::ServerMetrics& metrics() { return *ctx_.metrics; }

  // Debian's libjs-marked, read once; without it the page shows replies as plain text and says so.
  static std::string load_marked(const std::string& path) {
    if (path.empty()) return {};
    try {
      return read_file(path);
    } catch (const Error& e) {
      std::fprintf(stderr, "chat_web: %s; the page at / shows replies as plain text (apt install libjs-marked)\n", e.what());
      return {};
    }
  }

  bool authorized(serve::Api api, const httplib::Request& q, httplib::Response& r, const std::string& route) {
    if (opt_.api_key.empty() || q.get_header_value("Authorization") == "Bearer " + opt_.api_key) return true;
    const serve::RequestError e(401, "a valid API key is required: send the header 'Authorization: Bearer <key>'", "",
                                "invalid_request_error", "invalid_api_key");
    reply(r, serve::error_reply(api, e));
    metrics().request_done(route, 401);
    return false;
  }

  static void reply(httplib::Response& r, const serve::HttpReply& h) {
    r.status = h.status;
    r.set_content(h.body, "application/json");
  }

  void chat(serve::Api api, const httplib::Request& q, httplib::Response& r) {
    const std::string route = api == serve::Api::openai ? "/v1/chat/completions" : "/chat/completions";
    if (!authorized(api, q, r, route)) return;
    auto in_flight = std::make_shared<InFlight>(metrics());
    serve::ChatRequest request;
    std::vector<std::int32_t> prompt;
    try {
      request = api == serve::Api::openai ? serve::parse_openai_chat_request(q.body, defaults_)
                                          : serve::parse_nanochat_chat_request(q.body, defaults_);
      prompt = serve::render_chat_prompt(*ctx_.tok, request.conversation, ctx_.context);
    } catch (const serve::RequestError& e) {
      reply(r, serve::error_reply(api, e));
      metrics().request_done(route, e.status);
      return;
    }
    auto job = std::make_shared<Job>();
    job->worker = std::thread([this, api, request, prompt = std::move(prompt), channel = &job->channel] {
      std::optional<serve::HttpReply> refused;
      try {
        if (auto e = serve::run_chat_completion(gen_, ctx_, api, request, prompt, *channel)) refused = serve::error_reply(api, *e);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "chat_web: generation failed: %s\n", e.what());
        refused = serve::error_reply(api, serve::RequestError(500, cat("generation failed: ", e.what()), "", "server_error"));
      }
      channel->close(refused);
    });
    const char* type = request.stream ? "text/event-stream" : "application/json";
    if (!job->channel.wait_start()) {  // over before a token: refused, or a reply without tokens
      job->worker.join();
      if (auto refused = job->channel.refused()) {
        reply(r, *refused);
      } else {
        std::string body;
        job->channel.next(body, std::chrono::milliseconds(0));
        r.set_content(body, type);
      }
      metrics().request_done(route, r.status);
      return;
    }
    // Generating: the reply goes out as it comes. A whole (non-streamed) reply writes a space
    // (JSON allows leading whitespace) after each idle second, so a client that left is noticed
    // by a failed write and its generation cancelled, as a stream's next chunk would.
    r.set_header("Cache-Control", "no-cache");
    const bool stream = request.stream;
    r.set_chunked_content_provider(
        type,
        [job, stream](std::size_t, httplib::DataSink& sink) {
          std::string piece;
          switch (job->channel.next(piece, std::chrono::seconds(1))) {
            case serve::ReplyChannel::Next::pieces: break;
            case serve::ReplyChannel::Next::idle:
              if (stream) return true;
              piece = " ";
              break;
            case serve::ReplyChannel::Next::closed: sink.done(); return true;
          }
          if (!sink.write(piece.data(), piece.size())) {
            job->channel.client_gone();
            return false;
          }
          return true;
        },
        [this, job, route, in_flight](bool success) {
          job->channel.client_gone();
          metrics().request_done(route, success ? 200 : 499);  // 499: the client closed the connection first
        });
  }

  G& gen_;
  serve::ServeContext ctx_;
  serve::ChatDefaults defaults_;
  const Options& opt_;
  std::string marked_js_;
  std::int64_t started_ = static_cast<std::int64_t>(std::time(nullptr));
};

// Debian's cpp-httplib is a compiled library that listens with a backlog of 5 (its
// CPPHTTPLIB_LISTEN_BACKLOG is fixed when the library is built). A burst of concurrent clients past
// it has its handshakes dropped and retried a second or more later: stalls, a skewed time to first
// token and, under load, reset connections. Linux lets listen() be called again on a listening
// socket to change its backlog, so the socket bound to our port is found and given the kernel's
// maximum (somaxconn caps it).
inline void raise_listen_backlog(int port) {
  for (int fd = 0; fd < 1024; ++fd) {
    int listening = 0;
    socklen_t size = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0 || listening == 0) continue;
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) continue;
    int bound = -1;
    if (address.ss_family == AF_INET) bound = ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
    if (address.ss_family == AF_INET6) bound = ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
    if (bound == port) ::listen(fd, SOMAXCONN);
  }
}

template <class G>
int serve_forever(G& gen, const serve::ServeContext& ctx, const Options& opt) {
  httplib::Server svr;
  // Every request holds a thread while it waits or streams: room for the slots, the queue, and
  // a few quick requests (health, metrics) beside them. More wait in httplib's own queue.
  const auto threads = static_cast<std::size_t>(opt.slots + opt.queue + 4);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr.set_payload_max_length(static_cast<std::size_t>(opt.max_body));
  const auto io = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::duration<double>(opt.io_timeout));
  svr.set_read_timeout(io);
  svr.set_write_timeout(io);
  svr.set_default_headers({{"Access-Control-Allow-Origin", "*"}});
  svr.set_logger([](const httplib::Request& q, const httplib::Response& r) {
    std::fprintf(stderr, "chat_web: %s %s %d\n", q.method.c_str(), q.path.c_str(), r.status);
  });
  ChatServer<G> server(gen, ctx, {opt.temperature, opt.top_k, opt.max_tokens}, opt);
  server.routes(svr);
  const int port = opt.port == 0 ? svr.bind_to_any_port(opt.host) : (svr.bind_to_port(opt.host, opt.port) ? opt.port : -1);
  NANOCHAT_CHECK(port > 0, "chat_web: cannot listen on ", opt.host, ":", opt.port, " (in use, or not an address of this machine)");
  raise_listen_backlog(port);
  // SIGINT and SIGTERM stop the server from a thread of their own (they are blocked in all others).
  std::thread stopper([&svr] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    sigwait(&set, &sig);
    svr.stop();
  });
  std::printf("chat_web: serving %s on http://%s:%d\n", ctx.model_name.c_str(), opt.host.c_str(), port);
  std::fflush(stdout);
  svr.listen_after_bind();
  pthread_kill(stopper.native_handle(), SIGTERM);  // the server stopped on its own: let the stopper go
  stopper.join();
  return 0;
}

int run(const Options& opt) {
  NANOCHAT_CHECK(opt.device != "cuda", "--device cuda: the model does not run on the Cuda backend yet; use --device cpu");
  NANOCHAT_CHECK(opt.device == "cpu", "--device ", opt.device, " is unknown; use cpu");
  const auto chat_model =
      engine::ChatModel::open(opt.checkpoint, opt.source, opt.model_tag, opt.step, opt.tokenizer, opt.dtype);
  serve::ServerMetrics metrics;
  serve::ServeContext ctx;
  ctx.tok = &chat_model.tok;
  ctx.model_name =
      "nanochat-" + chat_model.checkpoint.parent_path().filename().string() + "-" + chat_model.checkpoint.stem().string();
  ctx.queue_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(opt.queue_timeout * 1000));
  ctx.metrics = &metrics;
  Cpu cpu;
  return engine::with_chat_weights(cpu, chat_model, [&]<Config C, class W>(const GptWeights<C, Cpu, W>& weights,
                                                                            std::int64_t seq_len) {
    // One meaning for any number of slots: positions per request, prompt and reply, by default the
    // trained sequence length (the positions the model learned; a pool of many slots is planned
    // up front from it, so the default must stay affordable).
    const std::int64_t context = opt.context > 0 ? opt.context : seq_len;
    if (opt.slots == 1)
      return engine::with_engine(cpu, weights, chat_model.tok, 1, context, [&](auto& engine, std::int64_t positions) {
        serve::SerialGenerator gen(engine, opt.queue);
        ctx.context = positions;
        return serve_forever(gen, ctx, opt);
      });
    SlotDecoder<C, Cpu, W> decoder(cpu, weights, opt.slots, context, std::max<std::int64_t>(256, opt.slots));
    const double mib = 1 << 20;
    std::fprintf(stderr,
                 "chat_web: %lld slots of %lld positions, %.1f MiB of KV cache and activations, %.1f MiB of "
                 "weights packed for steps of many rows\n",
                 static_cast<long long>(opt.slots), static_cast<long long>(decoder.max_positions()),
                 static_cast<double>(decoder.bytes() - decoder.packed_weight_bytes()) / mib,
                 static_cast<double>(decoder.packed_weight_bytes()) / mib);
    serve::BatchedGenerator gen(decoder, chat_model.tok, opt.queue);
    ctx.context = decoder.max_positions();
    return serve_forever(gen, ctx, opt);
  });
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  std::vector<std::string> positional;
  Flags flags("chat_web", "Serve a nanochat model over HTTP: OpenAI's chat completions API and nanochat's own.");
  flags.add("checkpoint", opt.checkpoint, "weights file (.safetensors); else found from --source/--model-tag/--step")
      .add("source", opt.source, "checkpoint source: base, mid, sft or rl", 'i')
      .add("model-tag", opt.model_tag, "checkpoint tag (default: the largest d<N> with a complete checkpoint)", 'g')
      .add("step", opt.step, "checkpoint step (default: the last)", {-1, max_count}, 's')
      .add("tokenizer", opt.tokenizer, "tokenizer directory (default: <base>/tokenizer)")
      .add("temperature", opt.temperature, "default sampling temperature (0: greedy)", {0.0f, 2.0f}, 't')
      .add("top-k", opt.top_k, "default top-k", {1, 200}, 'k')
      .add("max-tokens", opt.max_tokens, "default most tokens per reply", {1, 4096}, 'm')
      .add("port", opt.port, "TCP port (0: any free port, printed at start)", {0, 65535}, 'p')
      .add("host", opt.host, "address to listen on (0.0.0.0: every interface)")
      .add("device", opt.device, "cpu (cuda is not available for the model yet)")
      .add("dtype", opt.dtype, "weights: bfloat16 (rounded once at load) or float32; activations are fp32", 'd')
      .add("marked-js", opt.marked_js, "markdown script for the page at / (Debian's libjs-marked); empty or missing: plain text")
      .add("api-key", opt.api_key, "require 'Authorization: Bearer <key>' (every route but /health); empty: none")
      .add("slots", opt.slots, "requests decoded at once; more than 1: continuous batching over a KV-cache pool", {1, 1024})
      .add("context", opt.context, "positions per request, prompt and reply, for every slot (0: the trained sequence length)", {0, std::int64_t{1} << 24})
      .add("queue", opt.queue, "requests that may wait for a slot; more get 429", {0, 4096})
      .add("queue-timeout", opt.queue_timeout, "seconds a request may wait for a slot (then 503)", {0.001, 86400.0})
      .add("io-timeout", opt.io_timeout, "seconds a socket read or write may stall before the connection is dropped", {0.1, 3600.0})
      .add("max-body", opt.max_body, "largest request body in bytes (then 413)", {1024, std::int64_t{1} << 30})
      .positional("checkpoint", positional, "weights file (same as --checkpoint)");
  try {
    if (!flags.parse(argc, argv)) return 0;
    NANOCHAT_CHECK(positional.size() <= 1, "chat_web takes at most one checkpoint path, got ", positional.size());
    if (!positional.empty()) opt.checkpoint = positional[0];
    // Before any thread starts, so every thread inherits the mask and only the stopper takes them.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);  // a client that left is a failed write, not the end of the server
    return run(opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chat_web: %s\n", e.what());
    return 1;
  }
}
