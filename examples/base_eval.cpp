// base_eval: evaluate a base checkpoint — bits per byte on the train and validation splits
// (nanochat's scripts/base_loss.py), greedy samples for nanochat's prompts, and, when stdin is a
// terminal, prompts typed by the user completed by the model. With --core, instead, the CORE
// metric on the DCLM eval bundle (nanochat's scripts/base_eval.py): a line per task, then the
// table written to $NANOCHAT_BASE_DIR/base_eval/base_model_<step>.csv. Either writes its section of
// the report card ("Base model loss" or "Base model evaluation"). Under mpirun or srun each rank
// reads its stride of the bpb batches (rank r of W, every rank eval_tokens / W) and CORE's
// examples (idx = r, r+W, ...), the counts are summed, and rank 0 alone prints, samples and
// writes (docs/distributed.md).

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/core/atomic_file.hpp"
#include "nanochat/core/flags.hpp"
#include "nanochat/core/limits.hpp"
#include "nanochat/data/paths.hpp"
#include "nanochat/dist/launch.hpp"
#include "nanochat/engine/checkpoint.hpp"
#include "nanochat/engine/engine.hpp"
#include "nanochat/eval/core_eval.hpp"
#include "nanochat/model/gpt_decoder.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"
#include "nanochat/train/base_trainer.hpp"
#include "nanochat/train/report_section.hpp"

using namespace nanochat;

namespace {

struct EvalOptions {
  std::filesystem::path data;
  std::int64_t step = -1, device_batch_size = 8, eval_tokens = 20 * 524288, sample_tokens = 16;
  std::string interactive = "auto";
  bool core = false;
  std::int64_t core_max_per_task = -1;
  std::filesystem::path core_bundle;
  std::map<std::string, std::string> flags;  // for the report card
};

// CORE as nanochat's base_eval computes it. The model is planned for the most choices of one
// example and the longest row, so nothing is cropped, up to the 10 x sequence_len positions
// nanochat's rotary tables (and ours) cover; rows past that keep their last positions.
template <Config C>
void evaluate_core(const EvalOptions& o, const SafetensorsFile& weights, const tokenizer::Tokenizer& tok,
                   std::int64_t vocab, std::int64_t seq, dist::Communicator& comm) {
  const bool leader = comm.rank() == 0;
  report::StageReport section("Base model evaluation", o.flags);
  const eval::CoreBundle bundle = eval::load_core_bundle(o.core_bundle);
  const eval::CoreShape shape = eval::core_shape(tok, bundle, o.core_max_per_task);
  const std::int64_t context = std::min(static_cast<std::int64_t>(shape.longest), checked_mul(seq, std::int64_t{10}, "10 x sequence_len"));
  cpu::Cpu cpu;
  Gpt<C, cpu::Cpu> model(cpu, vocab, static_cast<std::int64_t>(shape.rows), context);
  load_weights(cpu, model.weights(), weights);
  if (leader)
    std::printf("model: %s, step %lld, %s\nCORE on %s: %zu tasks, forwards of %zu rows x up to %lld positions%s\n",
                C::name().c_str(), static_cast<long long>(o.step), weights.path().c_str(), bundle.dir.c_str(),
                bundle.tasks.size(), shape.rows, static_cast<long long>(context),
                comm.size() > 1 ? cat(", examples strided over ", comm.size(), " ranks").c_str() : "");
  auto started = std::chrono::steady_clock::now();
  const auto on_task = [&](const eval::CoreTask& task, const eval::CoreTaskResult& r) {
    if (!leader) return;
    const auto now = std::chrono::steady_clock::now();
    const std::string cropped = r.cropped > 0 ? cat(" | cropped rows: ", r.cropped) : "";
    const double seconds = std::chrono::duration<double>(now - started).count();
    std::printf("Evaluating: %s (%zu-shot, type: %s)... accuracy: %.4f | centered: %.4f | time: %.2fs | %zu tokens (%.0f/s)%s\n",
                task.label.c_str(), task.num_fewshot, eval::core_task_type_name(task.type), r.accuracy, r.centered,
                seconds, r.tokens, static_cast<double>(r.tokens) / std::max(seconds, 1e-9), cropped.c_str());
    std::fflush(stdout);
    started = now;
  };
  const eval::CoreResult result = eval::evaluate_core(cpu, model, tok, bundle, o.core_max_per_task, on_task, comm);
  if (!leader) return;
  const std::string table = eval::core_results_csv(result);
  char name[64];
  std::snprintf(name, sizeof name, "base_model_%06lld.csv", static_cast<long long>(o.step));
  const std::filesystem::path out = data::base_dir() / "base_eval" / name;
  std::filesystem::create_directories(out.parent_path());
  write_file_atomically(out, table);
  std::printf("%s\nModel: base_model (step %lld)\n%s\n%s\nwritten to %s\n", std::string(80, '=').c_str(),
              static_cast<long long>(o.step), std::string(80, '=').c_str(), table.c_str(), out.c_str());
  section.add("Model", cat("base_model (step ", o.step, ")")).add("CORE metric", result.core);
  for (const auto& r : result.tasks) section.add(r.label, r.centered);  // nanochat's centered results
  section.write();
}

template <Config C>
void evaluate(const EvalOptions& o, const SafetensorsFile& weights, const tokenizer::Tokenizer& tok, std::int64_t vocab,
              std::int64_t seq, dist::Communicator& comm) {
  const bool leader = comm.rank() == 0;
  report::StageReport section("Base model loss", o.flags);
  cpu::Cpu cpu;
  Gpt<C, cpu::Cpu> model(cpu, vocab, o.device_batch_size, seq);
  load_weights(cpu, model.weights(), weights);
  if (leader)
    std::printf("model: %s, step %lld, %s%s\n", C::name().c_str(), static_cast<long long>(o.step),
                weights.path().c_str(), comm.size() > 1 ? cat("; data-parallel: ", comm.describe()).c_str() : "");

  const auto shards = data::list_shards(o.data);
  const auto token_bytes = tok.token_bytes();
  for (auto split : {data::Split::train, data::Split::val}) {
    data::LoaderOptions lo{static_cast<std::size_t>(o.device_batch_size), static_cast<std::size_t>(seq),
                           static_cast<std::size_t>(comm.rank()), static_cast<std::size_t>(comm.size()), 2, 4, {}};
    data::TokenLoader loader(tok, data::split_shards(shards, split), lo);
    // Every rank's batches count toward --eval-tokens (nanochat's split_tokens / (B T W) steps each).
    const std::int64_t per_step = checked_mul(checked_mul(o.device_batch_size, seq, "--device-batch-size x the model's sequence_len"),
                                              std::int64_t{comm.size()}, "--device-batch-size x sequence_len x ranks");
    const std::int64_t steps = std::max<std::int64_t>(1, o.eval_tokens / per_step);
    const auto total = sum_over_ranks(
        comm, evaluate_bits_per_byte(cpu, model, [&](auto& x, auto& y) { loader.next(x, y); }, steps, token_bytes));
    if (leader)
      std::printf("%s bpb: %.4f (%lld tokens)\n", split == data::Split::train ? "train" : "val",
                total.bits_per_byte(), static_cast<long long>(steps * per_step));
    section.add(split == data::Split::train ? "train bpb" : "val bpb", total.bits_per_byte());
  }
  if (!leader) return;  // rank 0 samples, writes the section and talks to the user

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
  const auto prompts = sample_prompts();
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const std::string sample = complete(prompts[i], o.sample_tokens);
    std::printf("sample: %s\n", sample.c_str());
    section.add(cat("sample ", i), sample);
  }
  section.write();

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
  std::unique_ptr<dist::Communicator> comm;
  std::string model_tag, data_dir, tokenizer_dir, core_bundle;
  Flags flags("base_eval", "bits per byte, samples and completions of a base checkpoint");
  flags.add("--model-tag", model_tag, "checkpoint directory under base_checkpoints (default: the deepest d<N> with a complete checkpoint)")
      .add("--step", o.step, "checkpoint step (-1: the latest complete one)", {-1, max_count})
      .add("--device-batch-size", o.device_batch_size, "rows per forward", {1, max_batch_rows})
      .add("--eval-tokens", o.eval_tokens, "tokens per split for bits per byte", {1, max_count})
      .add("--sample-tokens", o.sample_tokens, "greedy tokens per sample", {1, max_sequence_len})
      .add("--interactive", o.interactive, "complete typed prompts: yes, no, or auto (when stdin is a terminal)")
      .add("--core", o.core, "evaluate CORE on the DCLM eval bundle instead (nanochat's base_eval)")
      .add("--core-max-per-task", o.core_max_per_task, "CORE examples per task after the shuffle (-1: all)",
           {-1, max_count})
      .add("--core-bundle", core_bundle, "the unzipped eval bundle (default $NANOCHAT_BASE_DIR/eval_bundle)")
      .add("--data", data_dir, "directory of shards (default: base_data if present, else offline_data)")
      .add("--tokenizer", tokenizer_dir, "tokenizer directory (default $NANOCHAT_BASE_DIR/tokenizer)");
  try {
    if (!flags.parse(argc, argv)) return 0;
    comm = dist::communicator_for(dist::placement_from_environment(), "base_eval");
    o.flags = flags.values();
    const auto base = data::base_dir();
    // nanochat's defaults: the deepest d<N> tag and its latest step, among complete checkpoints.
    const std::filesystem::path model_file = engine::find_checkpoint(base, "base", model_tag, o.step);
    o.step = *parse_step_file_name(model_file.filename().string(), "model_", ".safetensors");
    o.data = data_dir.empty() ? data::training_corpus_dir() : std::filesystem::path(data_dir);
    o.core_bundle = core_bundle.empty() ? eval::default_eval_bundle_dir() : std::filesystem::path(core_bundle);
    const std::filesystem::path tok_dir = tokenizer_dir.empty() ? base / "tokenizer" : std::filesystem::path(tokenizer_dir);
    const auto tok = tokenizer::load_tokenizer(tok_dir);
    const auto weights = SafetensorsFile::load(model_file);
    engine::with_checkpoint_config(weights, CompiledDepths{},
                                   [&]<Config C>(const SafetensorsFile& file, std::int64_t vocab, std::int64_t seq) {
                                     engine::check_tokenizer_vocab(tok.vocab_size(), tok_dir, file, vocab);
                                     if (o.core) {
                                       evaluate_core<C>(o, file, tok, vocab, seq, *comm);
                                     } else {
                                       evaluate<C>(o, file, tok, vocab, seq, *comm);
                                     }
                                   });
    return 0;
  } catch (const std::exception& e) {
    return dist::fail_rank("base_eval", comm.get(), e, 2);
  }
}
