// base_train -> mid_train -> chat_sft -> chat_cli end to end on a d2 model with the offline
// mixture, in a temporary base directory; then flags and inputs the stages refuse, each with
// status 2 and a message naming the problem.

#include <doctest/doctest.h>

#include "run_program.hpp"

#if defined(NANOCHAT_BASE_TRAIN) && defined(NANOCHAT_MID_TRAIN) && defined(NANOCHAT_CHAT_SFT) && \
    defined(NANOCHAT_CHAT_CLI) && defined(NANOCHAT_REPORT)  // the programs are built only with the examples

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "nanochat/core/read_file.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"
#include "nanochat/train/report_section.hpp"
#include "train_test_util.hpp"

using namespace nanochat;
using namespace nanochat_train_test;
namespace fs = std::filesystem;

using nanochat::testing::Run;
using nanochat::testing::run;

TEST_CASE("mid_train and chat_sft: a tiny pipeline that chat_cli loads with -i, and the flags they refuse") {
  ScratchDir base("chat_stage_programs");
  std::vector<std::string> docs;
  fs::create_directories(base.path / "corpus");
  write_corpus(base.path / "corpus", docs);
  tokenizer::save_tokenizer(train_tokenizer(docs), base.path / "tokenizer");
  const std::string env = "NANOCHAT_BASE_DIR=" + base.path.string() + " ";
  const Run pre = run(env + NANOCHAT_BASE_TRAIN + " --depth 2 --max-seq-len 16 --device-batch-size 2 "
                      "--total-batch-size 64 --num-iterations 2 --eval-every -1 --eval-tokens 64 --sample-every -1 "
                      "--loader-threads 1 --data " + (base.path / "corpus").string());
  CAPTURE(pre.output);
  REQUIRE(pre.status == 0);

  const std::string mid = env + NANOCHAT_MID_TRAIN + " --offline --offline-rows 2 --max-seq-len 16 "
                          "--device-batch-size 2 --eval-tokens 32 --dtype float32";
  const Run m = run(mid + " --total-batch-size 64 --num-iterations 2");
  CAPTURE(m.output);
  REQUIRE(m.status == 0);
  CHECK(m.output.find("step 00002 (100.00%) | loss: ") != std::string::npos);
  CHECK(m.output.find("Step 00002 | Validation bpb: ") != std::string::npos);
  CHECK(is_complete_checkpoint(base.path / "mid_checkpoints" / "d2", 2));

  const std::string sft = env + NANOCHAT_CHAT_SFT + " --offline --offline-rows 4 --max-seq-len 48 "
                          "--device-batch-size 2 --eval-steps 1 --dtype float32";
  const Run s = run(sft + " --target-examples-per-step 4 --num-iterations 3");
  CAPTURE(s.output);
  REQUIRE(s.status == 0);
  CHECK(s.output.find("Step 00001/00003 | Training loss: ") != std::string::npos);
  CHECK(s.output.find("Step 00002 | Validation loss: ") != std::string::npos);
  CHECK(is_complete_checkpoint(base.path / "chatsft_checkpoints" / "d2", 2));
  // No MMLU or ARC here: one line says their accuracies are skipped, and why.
  const std::string skip = "chat_sft: skipping the multiple-choice accuracies (--eval-metrics-every) without their "
                           "dataset: ";
  const std::size_t notice = s.output.find(skip);
  REQUIRE(notice != std::string::npos);
  const std::string notice_line = s.output.substr(notice, s.output.find('\n', notice) - notice);
  CHECK(notice_line.find("MMLU") != std::string::npos);
  CHECK(notice_line.find("ARC") != std::string::npos);
  CHECK(s.output.find("Step 00002 | mmlu_acc") == std::string::npos);
  std::ifstream meta_file(base.path / "chatsft_checkpoints" / "d2" / "meta_000002.json");
  const std::string meta((std::istreambuf_iterator<char>(meta_file)), std::istreambuf_iterator<char>());
  CHECK(meta.find("\"val_loss\": ") != std::string::npos);
  CHECK(meta.find("\"val_bpb\"") == std::string::npos);

  // Each stage wrote its report-card section, and they read back with the run's numbers; report
  // generate draws the curves of all three from the metrics files the sections name.
  const fs::path report_dir = base.path / "report";
  const report::Section trained = report::read_section(report_dir / "base-model-training.md");
  CHECK(trained.title == "Base model training");
  CHECK(trained.metric("depth") == "2");
  CHECK(trained.metric("Final step") == "2");
  CHECK_FALSE(trained.metric("Final validation bpb").empty());
  CHECK(trained.metric("Metrics file") == (base.path / "base_checkpoints" / "d2" / "metrics.jsonl").string());
  const report::Section midtrained = report::read_section(report_dir / "midtraining.md");
  CHECK(midtrained.metric("offline-rows") == "2");
  CHECK_FALSE(midtrained.metric("Minimum validation bpb").empty());
  const report::Section finetuned = report::read_section(report_dir / "chat-sft.md");
  CHECK(finetuned.metric("Final step") == "2");  // the last of its 3 iterations
  CHECK(finetuned.metric("num-iterations") == "3");
  CHECK_FALSE(finetuned.metric("Validation loss").empty());
  CHECK_FALSE(finetuned.metric("Wall time").empty());
  const Run generated = run(env + NANOCHAT_REPORT + " generate");
  CAPTURE(generated.output);
  REQUIRE(generated.status == 0);
  const std::string report_md = read_file(report_dir / "report.md");
  for (const char* svg : {"base-model-training.svg", "midtraining.svg", "chat-sft.svg"}) {
    CHECK(report_md.find(std::string("](") + svg + ")") != std::string::npos);
    CHECK(read_file(report_dir / svg).find("<polyline") != std::string::npos);
  }

  for (const char* source : {"mid", "sft"}) {
    const Run chat = run(env + NANOCHAT_CHAT_CLI + " -i " + source + " -p hello --max-tokens 4 -t 0");
    CAPTURE(chat.output);
    CHECK(chat.status == 0);
  }
  const Run rl = run(env + NANOCHAT_CHAT_CLI + " -i rl -p hello");
  CHECK(rl.status != 0);
  CHECK(rl.output.find("chatrl_checkpoints") != std::string::npos);

  // Refused: a batch that does not divide, a source chat_sft does not take, a row count of 0,
  // nanochat's mixture without its datasets, a resume past the end.
  const Run divide = run(mid + " --total-batch-size 60");
  CHECK(divide.status == 2);
  CHECK(divide.output.find("mid_train: --total-batch-size 60 is not a multiple of") != std::string::npos);
  const Run source = run(sft + " --source rl");
  CHECK(source.status == 2);
  CHECK(source.output.find("chat_sft: --source rl is unknown: base or mid") != std::string::npos);
  const Run zero = run(sft + " --device-batch-size 0");
  CHECK(zero.status == 2);
  CHECK(zero.output.find("--device-batch-size") != std::string::npos);
  const Run no_data = run(env + NANOCHAT_MID_TRAIN + " --max-seq-len 16");
  CHECK(no_data.status == 2);
  CHECK(no_data.output.find("task_data/hub/HuggingFaceTB/smol-smoltalk/default/train") != std::string::npos);
  CHECK(no_data.output.find("or pass --offline") != std::string::npos);
  const Run past = run(sft + " --target-examples-per-step 4 --num-iterations 3 --resume-from-step 7");
  CHECK(past.status == 2);
  CHECK(past.output.find("--resume-from-step 7 is past the end of this run, step 2") != std::string::npos);
}

#endif
