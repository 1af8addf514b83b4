// mid_train: teach a base model the chat format and tool use, as nanochat's scripts/mid_train.py,
// on the CPU. Starts from a base checkpoint ($NANOCHAT_BASE_DIR/base_checkpoints/<tag>), trains
// one epoch of nanochat's mixture (its datasets under $NANOCHAT_BASE_DIR/task_data) or, with
// --offline, of the offline tasks, and saves to $NANOCHAT_BASE_DIR/mid_checkpoints/<tag>.

#include <cstdio>

#include <memory>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/dist/launch.hpp"
#include "nanochat/train/mid_stage.hpp"
#include "nanochat/train/stage_program.hpp"

using namespace nanochat;

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each log line reaches a log file at once
  StageProgramOptions p;
  p.source = "base";
  MidOptions o;
  Flags flags("mid_train", "midtrain a base model on conversations (nanochat's scripts/mid_train.py)");
  add_stage_flags(flags, p, o);
  flags.add("--total-batch-size", o.total_batch_size, "tokens per optimizer step (gradient accumulation fills it)",
            {1, max_count})
      .add("--eval-tokens", o.eval_tokens, "validation tokens per evaluation", {1, max_count});
  std::unique_ptr<dist::Communicator> comm;
  try {
    if (!flags.parse(argc, argv)) return 0;
    comm = dist::communicator_for(dist::placement_from_environment(), "mid_train");
    report::StageReport section("Midtraining", flags.values());
    const StageData data = p.offline ? offline_data(static_cast<std::size_t>(p.offline_rows), true) : nanochats_mixture_or_hint(mid_train_data);
    cpu::Cpu cpu;
    run_stage<MidStage>(cpu, p, o, "mid_checkpoints", data, flags.values(), section, *comm);
    if (comm->rank() == 0) section.write();
    return 0;
  } catch (const std::exception& e) {
    return dist::fail_rank("mid_train", comm.get(), e, 2);
  }
}
