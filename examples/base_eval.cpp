// base_eval: evaluate a base checkpoint — bits per byte on the train and validation splits
// (nanochat's scripts/base_loss.py), greedy samples for nanochat's prompts, and, when stdin is a
// terminal, prompts typed by the user completed by the model.

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/core/flags.hpp"
#include "nanochat/core/limits.hpp"
#include "nanochat/data/paths.hpp"
#include "nanochat/engine/checkpoint.hpp"
#include "nanochat/engine/engine.hpp"
#include "nanochat/model/gpt_decoder.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"
#include "nanochat/train/base_trainer.hpp"

using namespace nanochat;

namespace {

struct EvalOptions {
  std::filesystem::path data;
  std::int64_t step = -1, device_batch_size = 8, eval_tokens = 20 * 524288, sample_tokens = 16;
  std::string interactive = "auto";
};

template <Config C>
void evaluate(const EvalOptions& o, const SafetensorsFile& weights, const tokenizer::Tokenizer& tok, std::int64_t vocab,
              std::int64_t seq) {
  cpu::Cpu cpu;
  Gpt<C, cpu::Cpu> model(cpu, vocab, o.device_batch_size, seq);
  load_weights(cpu, model.weights(), weights);
  std::printf("model: %s, step %lld, %s\n", C::name().c_str(), static_cast<long long>(o.step),
              weights.path().c_str());

  const auto shards = data::list_shards(o.data);
  const auto token_bytes = tok.token_bytes();
  for (auto split : {data::Split::train, data::Split::val}) {
    data::LoaderOptions lo{static_cast<std::size_t>(o.device_batch_size), static_cast<std::size_t>(seq), 0, 1, 2, 4, {}};
    data::TokenLoader loader(tok, data::split_shards(shards, split), lo);
    const std::int64_t per_step = checked_mul(o.device_batch_size, seq, "--device-batch-size x the model's sequence_len");
    const std::int64_t steps = std::max<std::int64_t>(1, o.eval_tokens / per_step);
    const auto total = evaluate_bits_per_byte(cpu, model, [&](auto& x, auto& y) { loader.next(x, y); }, steps,
                                              token_bytes);
    std::printf("%s bpb: %.4f (%lld tokens)\n", split == data::Split::train ? "train" : "val",
                total.bits_per_byte(), static_cast<long long>(steps * per_step));
  }

  // Samples as nanochat's base_loss draws them (its Engine, temperature 0), with a cached decoder
  // that borrows the weights and holds memory for the positions a completion uses.
  GptDecoder<C, cpu::Cpu> decoder(cpu, model.weights(), 1, seq);
  engine::Engine sampler(decoder, tok);
  auto complete = [&](const std::string& prompt, std::int64_t max_new) {
    std::vector<std::int32_t> ids{static_cast<std::int32_t>(tok.bos_id())};
    for (auto id : tok.encode(prompt)) ids.push_back(static_cast<std::int32_t>(id));
    const std::int64_t room = seq - static_cast<std::int64_t>(ids.size());
    NANOCHAT_CHECK(room > 0, "the prompt takes ", ids.size(), " of the model's ", seq, " positions");
    engine::GenerateOptions greedy;
    greedy.max_tokens = std::min(max_new, room);
    greedy.sampling.temperature = 0.0f;
    const auto out = sampler.generate_batch(ids, greedy).sequences[0];
    const std::vector<tokenizer::TokenId> text(out.begin() + 1, out.end());
    return tok.decode(text);
  };
  for (const std::string& prompt : sample_prompts()) std::printf("sample: %s\n", complete(prompt, o.sample_tokens).c_str());

  const bool interactive = o.interactive == "yes" || (o.interactive == "auto" && isatty(STDIN_FILENO));
  if (!interactive) return;
  std::printf("\nType a prompt for the base model to complete (Ctrl-D to quit).\n");
  for (std::string line; std::printf("> "), std::fflush(stdout), std::getline(std::cin, line);) {
    if (line.empty()) continue;
    try {
      std::printf("%s\n", complete(line, 64).c_str());
    } catch (const Error& e) {
      std::printf("(%s)\n", e.what());
    }
  }
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  EvalOptions o;
  std::string model_tag, data_dir, tokenizer_dir;
  Flags flags("base_eval", "bits per byte, samples and completions of a base checkpoint");
  flags.add("--model-tag", model_tag, "checkpoint directory under base_checkpoints (default: the deepest d<N> with a complete checkpoint)")
      .add("--step", o.step, "checkpoint step (-1: the latest complete one)", {-1, max_count})
      .add("--device-batch-size", o.device_batch_size, "rows per forward", {1, max_batch_rows})
      .add("--eval-tokens", o.eval_tokens, "tokens per split for bits per byte", {1, max_count})
      .add("--sample-tokens", o.sample_tokens, "greedy tokens per sample", {1, max_sequence_len})
      .add("--interactive", o.interactive, "complete typed prompts: yes, no, or auto (when stdin is a terminal)")
      .add("--data", data_dir, "directory of shards (default: base_data if present, else offline_data)")
      .add("--tokenizer", tokenizer_dir, "tokenizer directory (default $NANOCHAT_BASE_DIR/tokenizer)");
  try {
    if (!flags.parse(argc, argv)) return 0;
    const auto base = data::base_dir();
    // nanochat's defaults: the deepest d<N> tag and its latest step, among complete checkpoints.
    const std::filesystem::path model_file = engine::find_checkpoint(base, "base", model_tag, o.step);
    o.step = *parse_step_file_name(model_file.filename().string(), "model_", ".safetensors");
    o.data = data_dir.empty() ? data::training_corpus_dir() : std::filesystem::path(data_dir);
    const std::filesystem::path tok_dir = tokenizer_dir.empty() ? base / "tokenizer" : std::filesystem::path(tokenizer_dir);
    const auto tok = tokenizer::load_tokenizer(tok_dir);
    const auto weights = SafetensorsFile::load(model_file);
    engine::with_checkpoint_config(weights, CompiledDepths{},
                                   [&]<Config C>(const SafetensorsFile& file, std::int64_t vocab, std::int64_t seq) {
                                     engine::check_tokenizer_vocab(tok.vocab_size(), tok_dir, file, vocab);
                                     evaluate<C>(o, file, tok, vocab, seq);
                                   });
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "base_eval: %s\n", e.what());
    return 2;
  }
}
