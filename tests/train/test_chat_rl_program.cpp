// chat_rl end to end: base_train makes a tiny d2 checkpoint; chat_rl trains it for two steps on
// offline arithmetic (source given as a directory), with pass@k at every step and a checkpoint at
// each; resuming from step 1 gives the uninterrupted run's weights; bad flags exit with status 2
// and a message.

#include <doctest/doctest.h>

#include "run_program.hpp"

#if defined(NANOCHAT_BASE_TRAIN) && defined(NANOCHAT_CHAT_RL)  // the programs are built only with the examples

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "nanochat/core/safetensors.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"
#include "train_test_util.hpp"

using namespace nanochat;
using namespace nanochat_train_test;
namespace fs = std::filesystem;

using nanochat::testing::Run;
using nanochat::testing::run;

namespace {

std::vector<float> all_values(const fs::path& path) {
  const auto file = SafetensorsFile::load(path);
  std::vector<float> out;
  for (const auto& t : file.tensors()) {
    const auto v = file.values<float>(t.name);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

}  // namespace

TEST_CASE("chat_rl: two steps on a tiny model, an exact resume, and bad flags refused") {
  ScratchDir base("chat_rl_program");
  std::vector<std::string> docs;
  fs::create_directories(base.path / "corpus");
  write_corpus(base.path / "corpus", docs);
  const fs::path tok = base.path / "tokenizer";
  tokenizer::save_tokenizer(train_tokenizer(docs), tok);
  const std::string env = "NANOCHAT_BASE_DIR=" + base.path.string() + " ";
  const Run pre = run(env + NANOCHAT_BASE_TRAIN +
                      " --depth 2 --max-seq-len 64 --device-batch-size 2 --total-batch-size 128 --num-iterations 1"
                      " --eval-every -1 --eval-tokens 128 --sample-every -1 --loader-threads 1 --data " +
                      (base.path / "corpus").string() + " --tokenizer " + tok.string());
  CAPTURE(pre.output);
  REQUIRE(pre.status == 0);

  const std::string rl = env + NANOCHAT_CHAT_RL + " --source " + (base.path / "base_checkpoints" / "d2").string() +
                         " --tokenizer " + tok.string() +
                         " --task arithmetic --offline-rows 4 --examples-per-step 2 --num-samples 4"
                         " --device-batch-size 2 --max-new-tokens 6 --eval-every 1 --eval-examples 2 --save-every 1";
  const fs::path out = base.path / "chatrl_checkpoints" / "d2";
  const Run ok = run(rl);
  CAPTURE(ok.output);
  REQUIRE(ok.status == 0);
  CHECK(ok.output.find("Step 0/2 | Example step 1 | Pass 1 | loss: ") != std::string::npos);
  CHECK(ok.output.find("Step 1/2 | Average reward: ") != std::string::npos);
  CHECK(ok.output.find("Step 1 | Pass@1: ") != std::string::npos);
  for (const char* f : {"model_000001.safetensors", "optim_000001_rank0.safetensors", "meta_000002.json"})
    CHECK(fs::exists(out / f));
  std::ifstream metrics(out / "metrics.jsonl");
  const std::string lines{std::istreambuf_iterator<char>(metrics), std::istreambuf_iterator<char>()};
  CHECK(lines.find("{\"step\": 0, \"pass@1\": ") == 0);
  CHECK(lines.find("\"pass@2\": ") != std::string::npos);
  CHECK(lines.find("{\"step\": 1, \"reward\": ") != std::string::npos);

  // A resumed step 1 redoes the uninterrupted one (this untrained model earns no reward, so its
  // updates are zero; test_rl.cpp's RlTrainer case checks exactness with updates that move).
  const auto uninterrupted = all_values(out / "model_000002.safetensors");
  const Run resumed = run(rl + " --resume-from-step 1");
  CAPTURE(resumed.output);
  REQUIRE(resumed.status == 0);
  CHECK(resumed.output.find("Step 0/2") == std::string::npos);
  CHECK(all_values(out / "model_000002.safetensors") == uninterrupted);

  const auto refused = [&](const std::string& flags, const std::string& message) {
    const Run r = run(rl + " " + flags);
    CAPTURE(flags);
    CAPTURE(r.output);
    CHECK(r.status == 2);
    CHECK(r.output.find(message) != std::string::npos);
  };
  refused("--num-samples 3", "--num-samples 3 must be a multiple of --device-batch-size 2");
  refused("--task algebra", "--task algebra is unknown: gsm8k, or offline: arithmetic, letter-count, spelling");
  refused("--task identity", "--task identity is unknown");  // fixed questions, not a generated set
  refused("--dtype bfloat16", "chat_rl runs in float32 only");
  refused("--source " + (base.path / "nowhere").string(), "is neither base, mid, sft or rl nor a checkpoint directory");
  refused("--offline-rows 1", "fewer than one step's 2 (--examples-per-step)");
  refused("--resume-from-step 3", "--resume-from-step 3 is past the end of this run, step 2");
  refused("--resume-from-step 1 --num-samples 2", "samples per step");
}

#endif
