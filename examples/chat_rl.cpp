// chat_rl: reinforcement learning on problems with a checkable answer, as nanochat's
// scripts/chat_rl.py (simplified GRPO), on the CPU. Starts from an sft checkpoint (or --source
// base|mid|rl, or a checkpoint directory), trains on GSM8K (task_data/hub/openai/gsm8k) or,
// offline, on generated arithmetic, letter-count or spelling problems, and saves to
// $NANOCHAT_BASE_DIR/chatrl_checkpoints/<tag>. Under mpirun or srun it trains data-parallel, one
// rank per process, --examples-per-step split over the ranks (docs/distributed.md).

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/core/flags.hpp"
#include "nanochat/core/limits.hpp"
#include "nanochat/core/step_names.hpp"
#include "nanochat/data/paths.hpp"
#include "nanochat/dist/launch.hpp"
#include "nanochat/engine/checkpoint.hpp"
#include "nanochat/tasks/gsm8k.hpp"
#include "nanochat/tasks/offline_tasks.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"
#include "nanochat/train/rl_trainer.hpp"
#include "nanochat/train/report_section.hpp"

using namespace nanochat;
namespace fs = std::filesystem;

namespace {

struct TaskPair {
  tasks::TaskPtr train, val;
};

// nanochat's GSM8K main train/test, or an offline task's two splits (the validation one sized for
// the evaluation).
TaskPair make_tasks(const std::string& task, std::int64_t rows, std::int64_t eval_examples,
                    const tasks::OfflineDifficulty& difficulty) {
  using tasks::Split;
  if (task == "gsm8k") {
    return {std::make_shared<tasks::GSM8K>(tasks::GSM8K::default_path("train")),
            std::make_shared<tasks::GSM8K>(tasks::GSM8K::default_path("test"))};
  }
  NANOCHAT_CHECK(task != "identity" && tasks::is_offline_task(task), "--task ", task,
                 " is unknown: gsm8k, or offline: arithmetic, letter-count, spelling");
  return {tasks::make_offline_task(task, Split::train, static_cast<std::size_t>(rows), difficulty),
          tasks::make_offline_task(task, Split::test, static_cast<std::size_t>(eval_examples), difficulty)};
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each log line reaches a log file at once
  RlOptions o;
  std::string source = "sft", model_tag, task = "gsm8k", dtype = "float32", device = "cpu", tokenizer_dir;
  std::int64_t step = -1, offline_rows = 7473;
  tasks::OfflineDifficulty difficulty;
  const FlagRange<std::int64_t> rows{1, max_batch_rows}, count{1, max_count}, every{-1, max_count};
  Flags flags("chat_rl", "reinforcement learning on problems with a checkable answer (nanochat's scripts/chat_rl.py)");
  flags.add("--source", source, "checkpoint to start from: sft, mid, base, rl, or a checkpoint directory", 'i')
      .add("--model-tag", model_tag, "source checkpoint tag (default: the deepest d<N>); also the output tag", 'g')
      .add("--step", step, "source checkpoint step (default: the last)", every, 's')
      .add("--task", task, "gsm8k (task_data/hub/openai/gsm8k), or offline: arithmetic, letter-count, spelling")
      .add("--offline-rows", offline_rows, "training problems of an offline task (7473, GSM8K's)", count)
      .add("--arithmetic-digits", difficulty.arithmetic_digits, "operand digits of --task arithmetic (1..N each)", {1, 9})
      .add("--spelling-syllables", difficulty.spelling_syllables,
           "syllables of --task spelling's invented words (2..N each)", {2, 9})
      .add("--dtype", dtype, "matmul compute type: float32 (the sampler computes in float)", 'd')
      .add("--device", device, "cpu (the Cuda model is not available yet)")
      .add("--tokenizer", tokenizer_dir, "tokenizer directory (default $NANOCHAT_BASE_DIR/tokenizer)")
      .add("--device-batch-size", o.device_batch_size, "rows per sampling batch and per forward/backward", rows)
      .add("--examples-per-step", o.examples_per_step, "problems per optimizer step", count)
      .add("--num-samples", o.num_samples, "completions sampled per problem", count)
      .add("--max-new-tokens", o.max_new_tokens, "tokens per completion at most", {1, max_sequence_len})
      .add("--temperature", o.temperature, "sampling temperature of the rollouts", {0.0f, 1e6f})
      .add("--top-k", o.top_k, "sample among the k most likely tokens (0: all)", {0, 1 << 30})
      .add("--embedding-lr", o.lr.embedding, "AdamW lr for wte (scaled by (dim/768)^-0.5)", {0.0f, 1e6f})
      .add("--unembedding-lr", o.lr.unembedding, "AdamW lr for lm_head (scaled likewise)", {0.0f, 1e6f})
      .add("--matrix-lr", o.lr.matrix, "Muon lr for the block matrices", {0.0f, 1e6f})
      .add("--weight-decay", o.lr.weight_decay, "AdamW weight decay", {0.0f, 1e6f})
      .add("--init-lr-frac", o.init_lr_frac, "every lr is this fraction of the flags' lr", {0.0, 1e6})
      .add("--num-epochs", o.num_epochs, "epochs of the train task", count)
      .add("--save-every", o.save_every, "steps between checkpoints (-1: end only)", every)
      .add("--eval-every", o.eval_every, "steps between pass@k evaluations (-1: never)", every)
      .add("--eval-examples", o.eval_examples, "validation problems per evaluation", count)
      .add("--resume-from-step", o.resume_from_step, "continue from this checkpoint step of the output (-1: fresh)",
           every);
  std::unique_ptr<dist::Communicator> comm;
  try {
    if (!flags.parse(argc, argv)) return 0;
    comm = dist::communicator_for(dist::placement_from_environment(), "chat_rl");
    NANOCHAT_CHECK(device == "cpu", "--device ", device, ": only cpu is available for training so far");
    NANOCHAT_CHECK(dtype == "float32", "--dtype ", dtype,
                   ": chat_rl runs in float32 only (the Engine's GptDecoder, which shares the trained weights, "
                   "computes in float)");
    if (!model_tag.empty()) data::check_path_component(model_tag, "--model-tag");
    const TaskPair t = make_tasks(task, offline_rows, o.eval_examples, difficulty);
    const fs::path base = data::base_dir();
    const fs::path source_path = engine::find_source_checkpoint(base, source, model_tag, step);
    const auto file = SafetensorsFile::load(source_path);
    const fs::path tok_dir = tokenizer_dir.empty() ? base / "tokenizer" : fs::path(tokenizer_dir);
    const auto tok = tokenizer::load_tokenizer(tok_dir);
    engine::check_tokenizer_vocab(tok.vocab_size(), tok_dir, file, metadata_integer(file, "vocab_size"));
    o.checkpoint_dir =
        base / "chatrl_checkpoints" / (model_tag.empty() ? source_path.parent_path().filename() : fs::path(model_tag));
    if (comm->rank() == 0) {
      std::printf("source: %s; checkpoints: %s\n", source_path.c_str(), o.checkpoint_dir.c_str());
      if (comm->size() > 1) std::printf("data-parallel: %s\n", comm->describe().c_str());
    }
    const auto user_config = flags.values();
    report::StageReport section("Chat RL", user_config);
    engine::with_checkpoint_config(file, CompiledDepths{}, [&]<Config C>(const SafetensorsFile& f, std::int64_t,
                                                                        std::int64_t sequence_len) {
      cpu::Cpu cpu;
      RlTrainer<C> trainer(cpu, tok, t.train, t.val, f, sequence_len, o, user_config, stdout, *comm);
      section.add("Final step", trainer.run().step)
          .add("Metrics file", (o.checkpoint_dir / "metrics.jsonl").string())
          .add("World size", comm->size());
    });
    if (comm->rank() == 0) section.write();
    return 0;
  } catch (const std::exception& e) {
    return dist::fail_rank("chat_rl", comm.get(), e, 2);
  }
}
