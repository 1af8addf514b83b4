// chat_sft: supervised finetuning on conversations, as nanochat's scripts/chat_sft.py, on the
// CPU. Starts from a mid checkpoint (or --source base), trains on nanochat's mixture (its
// datasets under $NANOCHAT_BASE_DIR/task_data) or, with --offline, the offline tasks, with loss
// on the assistant's tokens only, and saves to $NANOCHAT_BASE_DIR/chatsft_checkpoints/<tag>.
// Every --eval-metrics-every steps and at the end it measures MMLU and ARC-Easy multiple-choice
// accuracy, as nanochat's does, when those datasets are there (a line says so when not).

#include <cstdio>

#include <memory>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/dist/launch.hpp"
#include "nanochat/train/sft_stage.hpp"
#include "nanochat/train/stage_program.hpp"

using namespace nanochat;

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each log line reaches a log file at once
  StageProgramOptions p;
  p.source = "mid";
  SftOptions o;
  Flags flags("chat_sft", "finetune a model on conversations, loss on the assistant's tokens (nanochat's "
                          "scripts/chat_sft.py)");
  add_stage_flags(flags, p, o);
  flags.add("--source", p.source, "checkpoint to start from: base or mid", 'i')
      .add("--num-epochs", o.num_epochs, "epochs of the mixture (when --num-iterations is -1)", {1, max_count})
      .add("--target-examples-per-step", o.target_examples_per_step,
           "conversations per optimizer step (gradient accumulation fills it)", {1, max_count})
      .add("--eval-steps", o.eval_steps, "validation batches per evaluation", {1, max_count})
      .add("--eval-metrics-every", o.eval_metrics_every,
           "steps between MMLU and ARC-Easy multiple-choice accuracies (-1: end only)", {-1, max_count})
      .add("--eval-metrics-max-problems", o.eval_metrics_max_problems, "problems of each for those (0: all)",
           {0, max_count});
  std::unique_ptr<dist::Communicator> comm;
  try {
    if (!flags.parse(argc, argv)) return 0;
    comm = dist::communicator_for(dist::placement_from_environment(), "chat_sft");
    report::StageReport section("Chat SFT", flags.values());
    NANOCHAT_CHECK(p.source == "base" || p.source == "mid", "--source ", p.source, " is unknown: base or mid");
    const StageData data = p.offline ? offline_data(static_cast<std::size_t>(p.offline_rows), false) : nanochats_mixture_or_hint(chat_sft_data);
    o.metric_tasks = sft_metric_tasks(comm->rank() == 0 ? stdout : nullptr);  // rank 0 says what is skipped
    cpu::Cpu cpu;
    run_stage<SftStage>(cpu, p, o, "chatsft_checkpoints", data, flags.values(), section, *comm);
    if (comm->rank() == 0) section.write();
    return 0;
  } catch (const std::exception& e) {
    return dist::fail_rank("chat_sft", comm.get(), e, 2);
  }
}
