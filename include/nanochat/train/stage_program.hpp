#pragma once
// What the mid_train and chat_sft programs share: their common flags (nanochat's knobs,
// hyphenated), finding and opening the source checkpoint as nanochat's load_model does
// (<base>/<source dir>/<tag>/model_<step>, tag and step defaulting to the deepest d<N> and the
// last step), and running a Stage on the depth the source's n_layer names, with fp32 or bf16
// matmuls. The output goes to <base>/<stage dir>/<the source's tag>, as nanochat's d<depth>.
// Under mpirun or srun every rank runs it with the launch's communicator (dist/launch.hpp);
// rank 0 alone prints.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

#include "nanochat/core/depth_dispatch.hpp"
#include "nanochat/core/flags.hpp"
#include "nanochat/core/limits.hpp"
#include "nanochat/core/safetensors.hpp"
#include "nanochat/dist/communicator.hpp"
#include "nanochat/engine/checkpoint.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"
#include "nanochat/train/report_training.hpp"
#include "nanochat/train/stage_mixtures.hpp"
#include "nanochat/train/stage_trainer.hpp"

namespace nanochat {

// The program's choices besides the Stage's options.
struct StageProgramOptions {
  std::string source, model_tag, dtype = "bfloat16", device = "cpu", tokenizer;
  std::int64_t step = -1;
  bool offline = false;
  std::int64_t offline_rows = 1000;
};

inline void add_stage_flags(Flags& flags, StageProgramOptions& p, StageOptions& o) {
  const FlagRange<std::int64_t> rows{1, max_batch_rows}, positions{2, max_sequence_len}, every{-1, max_count};
  flags.add("--model-tag", p.model_tag, "source checkpoint tag (default: the deepest d<N>); also the output tag", 'g')
      .add("--step", p.step, "source checkpoint step (default: the last)", every, 's')
      .add("--dtype", p.dtype, "matmul compute type: bfloat16 (nanochat's autocast) or float32", 'd')
      .add("--device", p.device, "cpu (the Cuda model is not available yet)")
      .add("--tokenizer", p.tokenizer, "tokenizer directory (default $NANOCHAT_BASE_DIR/tokenizer)")
      .add("--offline", p.offline, "train on the offline tasks (arithmetic, letter counts, spelling, identity) "
                                   "instead of nanochat's downloaded mixture")
      .add("--offline-rows", p.offline_rows, "examples of each generated offline task", {1, 1 << 24})
      .add("--max-seq-len", o.max_seq_len, "tokens per row", positions)
      .add("--device-batch-size", o.device_batch_size, "rows per forward/backward", rows)
      .add("--num-iterations", o.num_iterations, "explicit number of steps (-1: the stage's own horizon)", every)
      .add("--embedding-lr", o.lr.embedding, "AdamW lr for wte (scaled by (dim/768)^-0.5)", {0.0f, 1e6f})
      .add("--unembedding-lr", o.lr.unembedding, "AdamW lr for lm_head (scaled likewise)", {0.0f, 1e6f})
      .add("--matrix-lr", o.lr.matrix, "Muon lr for the block matrices", {0.0f, 1e6f})
      .add("--weight-decay", o.lr.weight_decay, "AdamW weight decay", {0.0f, 1e6f})
      .add("--init-lr-frac", o.init_lr_frac, "every lr is this fraction of the flags' lr", {0.0, 1e6})
      .add("--eval-every", o.eval_every, "steps between validations (-1: end only)", every)
      .add("--save-every", o.save_every, "steps between checkpoints (-1: end only)", every)
      .add("--resume-from-step", o.resume_from_step, "continue from this checkpoint step of the output (-1: fresh)",
           every);
}

// Loads the source checkpoint and the tokenizer, then trains Stage on the source's depth.
// stage_dir: the output's directory under the base (mid_checkpoints, chatsft_checkpoints).
// The run's outcome and world size go into the report card's section (the caller writes it on
// rank 0).
template <class Stage, Backend B>
void run_stage(B& backend, const StageProgramOptions& p, typename Stage::Options o, const std::string& stage_dir,
               const StageData& data, const std::map<std::string, std::string>& user_config,
               report::StageReport& section, dist::Communicator& comm) {
  NANOCHAT_CHECK(p.device == "cpu", "--device ", p.device, ": only cpu is available for training so far");
  NANOCHAT_CHECK(p.dtype == "float32" || p.dtype == "bfloat16", "--dtype ", p.dtype, " is unknown: float32 or bfloat16");
  const auto base = data::base_dir();
  const std::filesystem::path source_path = engine::find_source_checkpoint(base, p.source, p.model_tag, p.step);
  const auto source = SafetensorsFile::load(source_path);
  const std::filesystem::path tok_dir = p.tokenizer.empty() ? base / "tokenizer" : std::filesystem::path(p.tokenizer);
  const auto tok = tokenizer::load_tokenizer(tok_dir);
  const std::int64_t vocab = metadata_integer(source, "vocab_size"), n_layer = metadata_integer(source, "n_layer");
  engine::check_tokenizer_vocab(tok.vocab_size(), tok_dir, source, vocab);
  NANOCHAT_CHECK(n_layer > 0 && n_layer <= max_layers && CompiledDepths::contains(static_cast<int>(n_layer)),
                 source.path(), ": n_layer ", n_layer, " matches no model compiled into this program; compiled depths: ",
                 CompiledDepths::str());
  o.checkpoint_dir = base / stage_dir / source_path.parent_path().filename();
  if (comm.rank() == 0) {
    std::printf("source: %s; %zu training and %zu validation conversations; checkpoints: %s\n", source_path.c_str(),
                data.train->size(), data.val->size(), o.checkpoint_dir.c_str());
    if (comm.size() > 1) std::printf("data-parallel: %s\n", comm.describe().c_str());
  }
  const auto train = [&]<class C>() {
    StageTrainer<C, B, Stage> trainer(backend, tok, data.train, data.val, source, o, user_config, stdout, comm);
    section.add("World size", comm.size());
    report::add_training_outcome(section, trainer.run(), o.checkpoint_dir);
  };
  if (p.dtype == "bfloat16") dispatch_depth<bf16>(static_cast<int>(n_layer), CompiledDepths{}, train);
  else dispatch_depth(static_cast<int>(n_layer), CompiledDepths{}, train);
}

}  // namespace nanochat
