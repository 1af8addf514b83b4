// Runs under mpirun for test_dist (and alone, as the one process it is compared with): chat_rl's
// RlTrainer on the launched ranks, on a task a tiny random model earns both rewards on (so the
// updates move the weights), from the source checkpoint it is given. Two steps of 4 problems
// (each rank its stride), 4 samples each, pass@k at every step; the model of step 2 goes to
// <checkpoint dir>. Usage: rl_ranks_check <tokenizer dir> <source.safetensors> <checkpoint dir>
#include <cstdio>
#include <memory>

#include "nanochat/dist/launch.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"
#include "nanochat/train/rl_trainer.hpp"
#include "train/even_byte_task.hpp"
#include "train/train_test_util.hpp"

int main(int argc, char** argv) {
  using namespace nanochat;
  std::unique_ptr<dist::Communicator> comm;
  try {
    NANOCHAT_CHECK(argc == 4, "usage: rl_ranks_check <tokenizer dir> <source.safetensors> <checkpoint dir>");
    comm = dist::communicator_for(dist::placement_from_environment(), "rl_ranks_check");
    const auto tok = tokenizer::load_tokenizer(argv[1]);
    const auto source = SafetensorsFile::load(argv[2]);
    const auto task = std::make_shared<nanochat_train_test::EvenByteTask>(8);
    RlOptions o;
    o.device_batch_size = 2;
    o.examples_per_step = 4;
    o.num_samples = 4;
    o.max_new_tokens = 5;
    o.init_lr_frac = 1.0;
    o.eval_every = 1;
    o.eval_examples = 5;
    o.save_every = -1;
    o.checkpoint_dir = argv[3];
    cpu::Cpu cpu;
    RlTrainer<nanochat_train_test::Tiny> trainer(cpu, tok, task, task, source, 48, o, {}, stdout, *comm);
    trainer.run();
    return 0;
  } catch (const std::exception& e) {
    return dist::fail_rank("rl_ranks_check", comm.get(), e, 2);
  }
}
