// base_train: pretrain a base model as nanochat's scripts/base_train.py does, on the CPU.
// Data: $NANOCHAT_BASE_DIR/base_data (FineWeb-EDU shards from `download`) when it has shards,
// else the offline corpus from `prepare_corpus`; the tokenizer from `tok_train`. Checkpoints go
// to $NANOCHAT_BASE_DIR/base_checkpoints/<model tag>. Under mpirun or srun it trains
// data-parallel, one rank per process (docs/distributed.md).

#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/core/depth_dispatch.hpp"
#include "nanochat/core/flags.hpp"
#include "nanochat/core/limits.hpp"
#include "nanochat/data/paths.hpp"
#include "nanochat/dist/launch.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"
#include "nanochat/train/base_trainer.hpp"
#include "nanochat/train/report_training.hpp"

using namespace nanochat;

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each log line reaches a log file at once, not at exit
  BaseTrainOptions o;
  int depth = 20;
  std::string device = "cpu", dtype = "float32", model_tag, data_dir, tokenizer_dir;
  Flags flags("base_train", "pretrain a base model (nanochat's scripts/base_train.py)");
  // Sizes are bounded as they are parsed (core/limits.hpp), so no product of them can wrap.
  const FlagRange<std::int64_t> rows{1, max_batch_rows}, positions{1, max_sequence_len}, tokens{1, max_count},
      every{-1, max_count};
  const FlagRange<double> fraction{0.0, 1.0};
  flags.add("--depth", depth, "transformer blocks; width, heads and LR scaling follow from it")
      .add("--max-seq-len", o.max_seq_len, "context length in tokens", positions)
      .add("--device-batch-size", o.device_batch_size, "rows per forward/backward", rows)
      .add("--total-batch-size", o.total_batch_size, "tokens per optimizer step (gradient accumulation fills it)", tokens)
      .add("--num-iterations", o.num_iterations, "explicit number of steps (-1: from --target-flops or the ratio)", every)
      .add("--target-flops", o.target_flops, "training FLOPs budget (-1: from the ratio)")
      .add("--target-param-data-ratio", o.target_param_data_ratio, "training tokens per parameter (20 = Chinchilla)")
      .add("--embedding-lr", o.lr.embedding, "AdamW lr for wte (scaled by (dim/768)^-0.5)", {0.0f, 1e6f})
      .add("--unembedding-lr", o.lr.unembedding, "AdamW lr for lm_head (scaled likewise)", {0.0f, 1e6f})
      .add("--matrix-lr", o.lr.matrix, "Muon lr for the block matrices", {0.0f, 1e6f})
      .add("--weight-decay", o.lr.weight_decay, "AdamW weight decay", {0.0f, 1e6f})
      .add("--grad-clip", o.grad_clip, "global gradient-norm clip (0: off)", {0.0f, 1e30f})
      .add("--warmup-ratio", o.warmup_ratio, "fraction of steps warming the LR up", fraction)
      .add("--warmdown-ratio", o.warmdown_ratio, "fraction of steps decaying the LR at the end", fraction)
      .add("--final-lr-frac", o.final_lr_frac, "LR multiplier at the last step", fraction)
      .add("--eval-every", o.eval_every, "steps between validation bpb evaluations (-1: end only)", every)
      .add("--eval-tokens", o.eval_tokens, "validation tokens per evaluation", tokens)
      .add("--sample-every", o.sample_every, "steps between greedy samples (-1: never)", every)
      .add("--save-every", o.save_every, "steps between checkpoints (-1: end only)", every)
      .add("--resume-from-step", o.resume_from_step, "continue from this checkpoint step (-1: fresh)", every)
      .add("--model-tag", model_tag, "checkpoint directory name (default d<depth>)")
      .add("--device", device, "cpu (the Cuda model is not available yet)")
      .add("--dtype", dtype, "the matmuls' compute type: float32 (nanochat on a CPU) or bfloat16 (its autocast)")
      .add("--seed", o.seed, "initialisation seed")
      .add("--peak-flops", o.peak_flops, "peak FLOP/s the MFU column is relative to (0: no MFU)")
      .add("--loader-threads", o.loader_threads, "tokenizing threads of the data loader",
           {1, static_cast<std::size_t>(max_threads)})
      .add("--data", data_dir, "directory of shards (default: base_data if present, else offline_data)")
      .add("--tokenizer", tokenizer_dir, "tokenizer directory (default $NANOCHAT_BASE_DIR/tokenizer)");
  std::unique_ptr<dist::Communicator> comm;
  try {
    if (!flags.parse(argc, argv)) return 0;
    comm = dist::communicator_for(dist::placement_from_environment(), "base_train");
    NANOCHAT_CHECK(device == "cpu", "--device ", device, ": only cpu is available for training so far");
    NANOCHAT_CHECK(dtype == "float32" || dtype == "bfloat16", "--dtype ", dtype,
                   " is unknown: float32 or bfloat16");
    if (!model_tag.empty()) data::check_path_component(model_tag, "--model-tag");  // stays under base_checkpoints/
    const auto base = data::base_dir();
    const std::filesystem::path data = data_dir.empty() ? data::training_corpus_dir() : std::filesystem::path(data_dir);
    const auto shards = data::list_shards(data);
    const auto tok = tokenizer::load_tokenizer(tokenizer_dir.empty() ? base / "tokenizer" : std::filesystem::path(tokenizer_dir));
    o.checkpoint_dir = base / "base_checkpoints" / (model_tag.empty() ? "d" + std::to_string(depth) : model_tag);
    const auto user_config = flags.values();
    report::StageReport section("Base model training", user_config);
    if (comm->rank() == 0) {
      std::printf("data: %s (%zu shards, the last is validation); checkpoints: %s\n", data.c_str(), shards.size(),
                  o.checkpoint_dir.c_str());
      if (comm->size() > 1) std::printf("data-parallel: %s\n", comm->describe().c_str());
    }
    const auto train = [&]<class C>() {
      cpu::Cpu cpu;
      BaseTrainer<C, cpu::Cpu> trainer(cpu, tok, data::split_shards(shards, data::Split::train),
                                       data::split_shards(shards, data::Split::val), o, user_config, stdout, *comm);
      const std::int64_t vocab = tok.vocab_size();
      section.add("Number of parameters", C::total_params(vocab))
          .add("Number of FLOPs per token", cat(C::flops_per_token(vocab, o.max_seq_len)))
          .add("Number of training tokens", trainer.horizon().iterations * o.total_batch_size)
          .add("World size", comm->size());
      const auto& outcome = trainer.run();
      if (comm->rank() == 0) report::add_training_outcome(section, outcome, o.checkpoint_dir).write();
    };
    if (dtype == "bfloat16") dispatch_depth<bf16>(depth, CompiledDepths{}, train);
    else dispatch_depth(depth, CompiledDepths{}, train);
    return 0;
  } catch (const std::exception& e) {
    return dist::fail_rank("base_train", comm.get(), e, 2);
  }
}
