// base_eval: evaluate a base checkpoint — bits per byte on the train and validation splits
// (nanochat's scripts/base_loss.py), greedy samples for nanochat's prompts, and, when stdin is a
// terminal, prompts typed by the user completed by the model.

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/core/flags.hpp"
#include "nanochat/data/paths.hpp"
#include "nanochat/engine/checkpoint.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"
#include "nanochat/train/base_trainer.hpp"

using namespace nanochat;

using EvalDepths = DepthList<2, 4, 6, 8, 12, 16, 20, 26, 32>;

namespace {

struct EvalOptions {
  std::filesystem::path checkpoint_dir, data;
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
    const std::int64_t steps = std::max<std::int64_t>(1, o.eval_tokens / (o.device_batch_size * seq));
    const auto total = evaluate_bits_per_byte(cpu, model, [&](auto& x, auto& y) { loader.next(x, y); }, steps,
                                              token_bytes);
    std::printf("%s bpb: %.4f (%lld tokens)\n", split == data::Split::train ? "train" : "val",
                total.bits_per_byte(), static_cast<long long>(steps * o.device_batch_size * seq));
  }

  Gpt<C, cpu::Cpu> sampler(cpu, vocab, 1, seq);
  cpu.copy_on_device(sampler.weights().flat().data(), model.weights().flat().data(), model.weights().flat().bytes());
  auto complete = [&](const std::string& prompt, std::int64_t max_new) {
    std::vector<std::int32_t> ids{static_cast<std::int32_t>(tok.bos_id())};
    for (auto id : tok.encode(prompt)) ids.push_back(static_cast<std::int32_t>(id));
    const std::int64_t room = seq - static_cast<std::int64_t>(ids.size());
    NANOCHAT_CHECK(room > 0, "the prompt takes ", ids.size(), " of the model's ", seq, " positions");
    const auto out = greedy_continue(cpu, sampler, ids, static_cast<int>(std::min(max_new, room)));
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
  flags.add("--model-tag", model_tag, "checkpoint directory under base_checkpoints (default: the deepest d<N>)")
      .add("--step", o.step, "checkpoint step (-1: the latest)")
      .add("--device-batch-size", o.device_batch_size, "rows per forward")
      .add("--eval-tokens", o.eval_tokens, "tokens per split for bits per byte")
      .add("--sample-tokens", o.sample_tokens, "greedy tokens per sample")
      .add("--interactive", o.interactive, "complete typed prompts: yes, no, or auto (when stdin is a terminal)")
      .add("--data", data_dir, "directory of shards (default: base_data if present, else offline_data)")
      .add("--tokenizer", tokenizer_dir, "tokenizer directory (default $NANOCHAT_BASE_DIR/tokenizer)");
  try {
    if (!flags.parse(argc, argv)) return 0;
    const auto base = data::base_dir();
    const auto checkpoints = base / "base_checkpoints";
    if (model_tag.empty()) {  // nanochat's default: the largest d<N> directory
      int best = -1;
      std::error_code ec;
      for (const auto& entry : std::filesystem::directory_iterator(checkpoints, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.size() > 1 && name[0] == 'd' && name.find_first_not_of("0123456789", 1) == std::string::npos) {
          best = std::max(best, std::stoi(name.substr(1)));
        }
      }
      NANOCHAT_CHECK(best >= 0, "no base checkpoints in ", checkpoints.string(), " (run base_train first)");
      model_tag = "d" + std::to_string(best);
    }
    o.checkpoint_dir = checkpoints / model_tag;
    if (o.step < 0) o.step = latest_checkpoint_step(o.checkpoint_dir);
    NANOCHAT_CHECK(o.step >= 0, "no complete checkpoint in ", o.checkpoint_dir.string());
    o.data = data_dir.empty() ? data::training_corpus_dir() : std::filesystem::path(data_dir);
    const std::filesystem::path tok_dir = tokenizer_dir.empty() ? base / "tokenizer" : std::filesystem::path(tokenizer_dir);
    const auto tok = tokenizer::load_tokenizer(tok_dir);
    const auto weights = SafetensorsFile::load(o.checkpoint_dir / ("model_" + step_name(o.step) + ".safetensors"));
    engine::with_checkpoint_config(weights, EvalDepths{},
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
