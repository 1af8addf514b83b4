// Writes a tiny chat model for chat_web's end-to-end tests under <dir>: a byte-level tokenizer
// (256 bytes and nanochat's specials) and a depth-2 GPT with random weights (sequence length
// [seq_len], default 64, chat_web's default context) as
// <dir>/chatsft_checkpoints/d2/model_000001.safetensors with its meta, where chat_web's default
// -i sft finds it with NANOCHAT_BASE_DIR=<dir>. With "endless" its lm_head is zero: every logit
// is 0, so greedy decoding (ties to the lowest id) emits token 0 forever and never ends its turn,
// a reply that runs to max_tokens on any CPU, for the cancellation and queue tests. With "d4" or
// "d12" it writes a GPT of that depth instead (dim 256, 768) under
// chatsft_checkpoints/d<depth>, for the serving benchmark (d12's decode reads 170 MB of bf16
// weights a step, which batching shares).

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "engine/engine_test_util.hpp"
#include "nanochat/backend/cpu.hpp"
#include "nanochat/core/presets.hpp"
#include "nanochat/model/gpt.hpp"
#include "nanochat/model/weights_file.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  using namespace nanochat;
  if (argc < 2 || argc > 4) {
    std::fprintf(stderr, "usage: write_tiny_chat_model <dir> [seq_len [endless | d4 | d12]]\n");
    return 2;
  }
  try {
    const fs::path dir = argv[1];
    const std::string option = argc == 4 ? argv[3] : "";
    NANOCHAT_CHECK(option.empty() || option == "endless" || option == "d4" || option == "d12",
                   "write_tiny_chat_model: unknown option ", option);
    const std::int64_t seq_len = argc >= 3 ? std::stoll(argv[2]) : 64;
    NANOCHAT_CHECK(seq_len > 0, "write_tiny_chat_model: seq_len ", seq_len, " must be positive");
    fs::create_directories(dir);
    tokenizer::save_tokenizer(engine_test::byte_tokenizer(), dir / "tokenizer");
    const auto write = [&]<int Depth>() {
      const fs::path ckpt = dir / "chatsft_checkpoints" / ("d" + std::to_string(Depth));
      fs::create_directories(ckpt);
      cpu::Cpu cpu;
      GptWeights<NanochatConfig<Depth>, cpu::Cpu> w(cpu, engine_test::byte_vocab);
      cpu::fill_normal(cpu, w.flat(), 7, 0, 0.0f, 0.05f);
      if (option == "endless") cpu.fill_zero(w.lm_head.data(), w.lm_head.bytes());
      save_weights(cpu, w, ckpt / "model_000001.safetensors", seq_len);
      std::ofstream(ckpt / "meta_000001.json") << "{\"step\": 1}\n";
    };
    if (option == "d4") write.template operator()<4>();
    else if (option == "d12") write.template operator()<12>();
    else write.template operator()<2>();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "write_tiny_chat_model: %s\n", e.what());
    return 1;
  }
}
