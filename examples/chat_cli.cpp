// chat_cli: talk to a model (spec §8.1). Loads a weights file (named, or found as nanochat finds
// checkpoints: --source/--model-tag/--step under the base directory) and the tokenizer; the
// file's n_layer picks the compiled model. The conversation is kept as tokens in nanochat's chat
// format and each reply streams as it is sampled. Type `clear` to start over, `quit` or `exit`
// (or Ctrl-D) to leave; Ctrl-C stops the reply being written. -p answers one prompt and exits.
// -d bfloat16 (the default, as nanochat's) keeps the weights in bf16, rounded once at load: half
// the bytes to read per token, activations still in fp32; -d float32 keeps them as the file has them.

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/core/flags.hpp"
#include "nanochat/core/limits.hpp"
#include "nanochat/data/paths.hpp"
#include "nanochat/engine/chat_model.hpp"

using namespace nanochat;
using nanochat::cpu::Cpu;

namespace {

std::atomic<bool> interrupted{false};
extern "C" void on_sigint(int) { interrupted.store(true); }

struct Options {
  std::string checkpoint, source = "sft", model_tag, tokenizer, prompt, device = "cpu", dtype = "bfloat16";
  std::int64_t step = -1, max_tokens = 256, seed = 42;
  float temperature = 0.6f;
  int top_k = 50;
};

template <class M>
int chat(engine::Engine<M>& engine, const tokenizer::Tokenizer& tok, const Options& opt) {
  const auto special = [&](const char* name) { return static_cast<std::int32_t>(tok.encode_special(name)); };
  const std::int32_t bos = special("<|bos|>"), user_start = special("<|user_start|>"),
                     user_end = special("<|user_end|>"), assistant_start = special("<|assistant_start|>"),
                     assistant_end = special("<|assistant_end|>");
  engine::GenerateOptions gen;
  gen.max_tokens = opt.max_tokens;
  gen.sampling = {opt.temperature, opt.top_k, static_cast<std::uint64_t>(opt.seed)};
  std::vector<std::int32_t> conversation{bos};
  const bool one_shot = !opt.prompt.empty();
  if (!one_shot) {
    std::cout << "nanochat interactive mode. Type 'clear' to start a new conversation, 'quit' or "
                 "Ctrl-D to exit; Ctrl-C stops a reply.\n";
  }
  for (;;) {
    std::string line;
    if (one_shot) {
      line = opt.prompt;
    } else {
      std::cout << "\nUser: " << std::flush;
      interrupted.store(false);
      if (!std::getline(std::cin, line)) {
        if (interrupted.load()) {  // Ctrl-C at the prompt drops the line; only Ctrl-D exits
          std::cin.clear();
          std::clearerr(stdin);
          std::cout << "\n";
          continue;
        }
        std::cout << "\n";
        return 0;
      }
      if (line == "quit" || line == "exit") return 0;
      if (line == "clear") {
        conversation.assign(1, bos);
        std::cout << "Conversation cleared.\n";
        continue;
      }
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    }
    const std::size_t turn_start = conversation.size();
    conversation.push_back(user_start);
    for (auto id : tok.encode(line)) conversation.push_back(static_cast<std::int32_t>(id));
    conversation.push_back(user_end);
    conversation.push_back(assistant_start);
    std::vector<std::int32_t> reply;
    std::cout << (one_shot ? "" : "\nAssistant: ") << std::flush;
    interrupted.store(false);
    try {
      engine.generate(conversation, gen, [&](std::span<const std::int32_t> tokens, std::span<const std::uint8_t>) {
        const std::int32_t t = tokens[0];
        reply.push_back(t);
        if (t != assistant_end && t != bos) {
          // Raw bytes: a character split over tokens is completed by the terminal.
          const auto id = static_cast<tokenizer::TokenId>(t);
          std::cout << tok.decode_bytes(std::span<const tokenizer::TokenId>(&id, 1)) << std::flush;
        }
        return !interrupted.load();
      });
    } catch (const Error& e) {
      conversation.resize(turn_start);
      if (one_shot) throw;
      std::cout << "\n" << e.what() << "\nType 'clear' to start a new conversation.\n";
      continue;
    }
    if (interrupted.load() && !one_shot) std::cout << " [stopped]";
    std::cout << "\n";
    conversation.insert(conversation.end(), reply.begin(), reply.end());
    if (reply.empty() || reply.back() != assistant_end) conversation.push_back(assistant_end);
    if (one_shot) return 0;
  }
}

int run(const Options& opt) {
  if (opt.device == "cuda") {
    NANOCHAT_FAIL("--device cuda: the model does not run on the Cuda backend yet; use --device cpu");
  }
  NANOCHAT_CHECK(opt.device == "cpu", "--device ", opt.device, " is unknown; use cpu");
  const auto chat_model =
      engine::ChatModel::open(opt.checkpoint, opt.source, opt.model_tag, opt.step, opt.tokenizer, opt.dtype);
  Cpu cpu;
  return engine::with_chat_engine(cpu, chat_model, 1, [&]<Config, class>(auto& engine, std::int64_t) {
    return chat(engine, chat_model.tok, opt);
  });
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  std::vector<std::string> positional;
  Flags flags("chat_cli", "Chat with a nanochat model on the CPU.");
  flags.add("checkpoint", opt.checkpoint, "weights file (.safetensors); else found from --source/--model-tag/--step")
      .add("source", opt.source, "checkpoint source: base, mid, sft or rl", 'i')
      .add("model-tag", opt.model_tag, "checkpoint tag (default: the largest d<N> with a complete checkpoint)", 'g')
      .add("step", opt.step, "checkpoint step (default: the last)", {-1, max_count}, 's')
      .add("tokenizer", opt.tokenizer, "tokenizer directory (default: <base>/tokenizer)")
      .add("prompt", opt.prompt, "answer this prompt once and exit", 'p')
      .add("temperature", opt.temperature, "sampling temperature (0: greedy)", {0.0f, 1e6f}, 't')
      .add("top-k", opt.top_k, "sample from the k most likely tokens (0: all)", {0, static_cast<int>(max_vocab_size)}, 'k')
      .add("max-tokens", opt.max_tokens, "most tokens per reply", {1, 10 * max_sequence_len})
      .add("seed", opt.seed, "sampling seed")
      .add("device", opt.device, "cpu (cuda is not available for the model yet)")
      .add("dtype", opt.dtype, "weights: bfloat16 (rounded once at load) or float32; activations are fp32", 'd')
      .positional("checkpoint", positional, "weights file (same as --checkpoint)");
  try {
    if (!flags.parse(argc, argv)) return 0;
    NANOCHAT_CHECK(positional.size() <= 1, "chat_cli takes at most one checkpoint path, got ", positional.size());
    if (!positional.empty()) opt.checkpoint = positional[0];
    struct sigaction sa {};
    sa.sa_handler = on_sigint;  // no SA_RESTART: Ctrl-C interrupts a blocked read of the prompt
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    return run(opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chat_cli: %s\n", e.what());
    return 1;
  }
}
