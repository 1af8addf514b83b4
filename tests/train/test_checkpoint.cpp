// Checkpoints and runs on bad input: a save interrupted at any point never leaves files that
// load as a checkpoint they are not; non-finite numbers in a checkpoint are refused, and a run
// whose numbers stop being finite stops before it saves them; resuming past the horizon or with
// another batch geometry is refused; metrics.jsonl reads as one run after a resume; stale temp
// files go; a full disk is named; every log line reaches the log at once.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/train/base_trainer.hpp"
#include "train_test_util.hpp"

using namespace nanochat;
using namespace nanochat_train_test;
using nanochat::cpu::Cpu;
namespace fs = std::filesystem;

namespace {

const char* const kStep3Files[] = {"model_000003.safetensors", "optim_000003_rank0.safetensors", "meta_000003.json"};

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void copy_step3(const fs::path& from, const fs::path& to) {
  for (const char* f : kStep3Files) fs::copy_file(from / f, to / f, fs::copy_options::overwrite_existing);
}

// Rewrites a safetensors file with one F32 element replaced, keeping its metadata.
void poison(const fs::path& path, const std::string& tensor, std::size_t element, float value) {
  const auto file = SafetensorsFile::load(path);
  std::vector<std::vector<float>> data;
  std::vector<TensorToSave> tensors;
  for (const auto& t : file.tensors()) {
    const auto v = file.values<float>(t.name);
    data.emplace_back(v.begin(), v.end());
    if (t.name == tensor) data.back().at(element) = value;
  }
  for (std::size_t i = 0; i < data.size(); ++i) {
    tensors.push_back({file.tensors()[i].name, DType::f32, file.tensors()[i].shape, data[i].data()});
  }
  save_safetensors(path, tensors, file.metadata());
}

// Sets one row of a weight matrix of the model to NaN.
template <class Trainer>
void poison_row(Cpu& cpu, Trainer& trainer, const std::string& matrix, std::size_t row) {
  trainer.model().weights().for_each([&](const std::string& name, TensorView<float, Cpu> view) {
    if (name != matrix) return;
    auto host = to_host(cpu, view);
    const auto dim = static_cast<std::size_t>(view.shape()[1]);
    std::fill_n(host.begin() + static_cast<std::ptrdiff_t>(row * dim), dim, std::numeric_limits<float>::quiet_NaN());
    copy_from_host(cpu, view, std::span<const float>(host));
  });
}

// The (step, kind) of each metrics.jsonl line, kind "val" for evaluations, else "loss" + the loss.
std::vector<std::string> metrics_lines(const fs::path& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    const auto v = json::parse(line, path.string());
    const std::string step = std::to_string(static_cast<long long>(v.find("step")->number("step")));
    out.push_back(v.find("val_bpb") ? step + " val " + std::to_string(v.find("val_bpb")->number("val_bpb"))
                                    : step + " loss " + std::to_string(v.find("loss")->number("loss")));
  }
  return out;
}

}  // namespace

TEST_CASE("a save interrupted at any point leaves the previous checkpoint or none and never a mix") {
  TinySetup setup("ckpt_interrupt_corpus");
  ScratchDir first_run("ckpt_interrupt_first"), dir("ckpt_interrupt_dir");
  const auto& [corpus, tok, train_shards, val_shards, quiet] = setup;
  Cpu cpu;
  BaseTrainer<Tiny, Cpu>(cpu, tok, train_shards, val_shards, tiny_options(first_run.path), {}, quiet).run();

  // A second run (another seed and learning rate) into a directory holding the first run's step
  // 3; its save of step 3 is cut off before each of the three renames in turn, by a directory
  // standing where that file's temporary goes.
  for (const char* cut_at : kStep3Files) {
    CAPTURE(cut_at);
    for (const auto& e : fs::directory_iterator(dir.path)) fs::remove_all(e.path());
    copy_step3(first_run.path, dir.path);
    fs::create_directory(dir.path / (std::string(cut_at) + ".tmp"));
    auto o = tiny_options(dir.path);
    o.seed = 7;
    o.lr.matrix = 0.03f;
    CHECK_THROWS_AS((BaseTrainer<Tiny, Cpu>(cpu, tok, train_shards, val_shards, o, {}, quiet).run()), Error);

    // The save had begun, so step 3 is no checkpoint any more.
    CHECK_FALSE(fs::exists(dir.path / "meta_000003.json"));
    auto resume = tiny_options(dir.path);
    resume.resume_from_step = 3;
    CHECK_THROWS_WITH_AS((BaseTrainer<Tiny, Cpu>(cpu, tok, train_shards, val_shards, resume, {}, quiet)),
                         doctest::Contains("meta_000003.json: no checkpoint for step 3"), Error);

    // Were the old meta file to survive anyway (its removal lost in a crash), the files that
    // are not from its save are named.
    fs::copy_file(first_run.path / "meta_000003.json", dir.path / "meta_000003.json");
    if (std::string(cut_at).starts_with("model")) {  // nothing was renamed yet: the first run's step 3, whole
      BaseTrainer<Tiny, Cpu> t(cpu, tok, train_shards, val_shards, resume, {}, quiet);
      CHECK(t.state().step == 3);
    } else {
      CHECK_THROWS_WITH_AS((BaseTrainer<Tiny, Cpu>(cpu, tok, train_shards, val_shards, resume, {}, quiet)),
                           doctest::Contains(("model_000003.safetensors and " + (dir.path / "meta_000003.json").string() +
                                             " are not from the same save").c_str()),
                           Error);
    }
  }
  // Two whole checkpoints of different runs, mixed by hand, are refused the same way.
  for (const auto& e : fs::directory_iterator(dir.path)) fs::remove_all(e.path());
  copy_step3(first_run.path, dir.path);
  auto o = tiny_options(dir.path);
  o.num_iterations = 3;
  BaseTrainer<Tiny, Cpu>(cpu, tok, train_shards, val_shards, o, {}, quiet).run();
  fs::copy_file(first_run.path / "optim_000003_rank0.safetensors", dir.path / "optim_000003_rank0.safetensors",
                fs::copy_options::overwrite_existing);
  o.resume_from_step = 3;
  CHECK_THROWS_WITH_AS((BaseTrainer<Tiny, Cpu>(cpu, tok, train_shards, val_shards, o, {}, quiet)),
                       doctest::Contains("optim_000003_rank0.safetensors and"), Error);
  // A meta file without a save id (an older version's) cannot vouch for the files beside it.
  std::string meta = read_text(dir.path / "meta_000003.json");
  const auto line = meta.find("  \"save_id\"");
  REQUIRE(line != std::string::npos);
  meta.erase(line, meta.find('\n', line) + 1 - line);
  std::ofstream(dir.path / "meta_000003.json") << meta;
  CHECK_THROWS_WITH_AS((BaseTrainer<Tiny, Cpu>(cpu, tok, train_shards, val_shards, o, {}, quiet)),
                       doctest::Contains("meta_000003.json: has no save_id"), Error);
}

TEST_CASE("stale temporary files of a killed save are removed and a full disk is named with the file") {
  TinySetup setup("ckpt_tmp_corpus");
  ScratchDir dir("ckpt_tmp_dir");
  const auto& [corpus, tok, train_shards, val_shards, quiet] = setup;
  Cpu cpu;
  for (const char* stale : {"model_000003.safetensors.tmp", "meta_000006.json.tmp", "metrics.jsonl.tmp"}) {
    std::ofstream(dir.path / stale) << "left by a kill";
  }
  std::ofstream(dir.path / "notes.tmp") << "not ours";
  auto o = tiny_options(dir.path);
  o.num_iterations = 1;
  o.save_every = -1;
  BaseTrainer<Tiny, Cpu>(cpu, tok, train_shards, val_shards, o, {}, quiet).run();
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"meta_000001.json", "metrics.jsonl", "model_000001.safetensors",
                                          "notes.tmp", "optim_000001_rank0.safetensors"});

  if (!fs::exists("/dev/full")) return;  // the device that is always full, where there is one
  fs::create_symlink("/dev/full", dir.path / "meta_000001.json.tmp");
  CHECK_THROWS_WITH_AS((BaseTrainer<Tiny, Cpu>(cpu, tok, train_shards, val_shards, o, {}, quiet).run()),
                       doctest::Contains(("meta_000001.json: writing " + (dir.path / "meta_000001.json.tmp").string() +
                                         " failed: No space left on device").c_str()),
                       Error);
}

TEST_CASE("non-finite numbers are refused in a checkpoint and a run stops before it saves them") {
  TinySetup setup("ckpt_nan_corpus");
  ScratchDir good("ckpt_nan_good"), dir("ckpt_nan_dir");
  const auto& [corpus, tok, train_shards, val_shards, quiet] = setup;
  Cpu cpu;
  BaseTrainer<Tiny, Cpu>(cpu, tok, train_shards, val_shards, tiny_options(good.path), {}, quiet).run();
  auto resume = tiny_options(dir.path);
  resume.resume_from_step = 3;

  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (const auto& [file, tensor, value] : {std::tuple{"optim_000003_rank0.safetensors", "adamw.exp_avg", nan},
                                            std::tuple{"optim_000003_rank0.safetensors", "muon.momentum_buffer", inf},
                                            std::tuple{"model_000003.safetensors", "lm_head.weight", nan}}) {
    CAPTURE(tensor);
    copy_step3(good.path, dir.path);
    poison(dir.path / file, tensor, 5, value);
    CHECK_THROWS_WITH_AS((BaseTrainer<Tiny, Cpu>(cpu, tok, train_shards, val_shards, resume, {}, quiet)),
                         doctest::Contains((std::string(file) + ": tensor " + tensor +
                                           " holds a non-finite value at element 5").c_str()),
                         Error);
  }
  // Loop-state numbers must be finite and not negative.
  copy_step3(good.path, dir.path);
  std::string meta = read_text(dir.path / "meta_000003.json");
  const std::string key = "\"min_val_bpb\": ";
  meta.insert(meta.find(key) + key.size(), "-");
  std::ofstream(dir.path / "meta_000003.json") << meta;
  CHECK_THROWS_WITH_AS((BaseTrainer<Tiny, Cpu>(cpu, tok, train_shards, val_shards, resume, {}, quiet)),
                       doctest::Contains("meta_000003.json: min_val_bpb is -"), Error);

  // A NaN row of lm_head makes every loss NaN: the resumed run stops at its first step, and
  // step 3 stays the last checkpoint, untouched.
  copy_step3(good.path, dir.path);
  resume.eval_every = -1;
  std::string stopped;
  try {
    BaseTrainer<Tiny, Cpu> t(cpu, tok, train_shards, val_shards, resume, {}, quiet);
    poison_row(cpu, t, "lm_head.weight", 0);
    t.run();
  } catch (const Error& e) {
    stopped = e.what();
  }
  CAPTURE(stopped);
  CHECK(stopped.find("step 3: the training loss is ") != std::string::npos);
  CHECK(stopped.find("not finite; the run stops here (lower the learning rates (--matrix-lr, --embedding-lr, "
                     "--unembedding-lr) or --grad-clip?)") != std::string::npos);  // clipping is on (1.0)
  CHECK(stopped.find("The last good checkpoint is step 3 in " + dir.path.string()) != std::string::npos);
  for (const char* f : kStep3Files) CHECK(read_text(dir.path / f) == read_text(good.path / f));
  CHECK(latest_complete_step(dir.path) == 3);

  // A NaN row of a token the data never has leaves the loss finite, but the weights are not:
  // the save of step 3 is not made.
  ScratchDir fresh("ckpt_nan_fresh");
  auto o = tiny_options(fresh.path);
  o.eval_every = -1;
  BaseTrainer<Tiny, Cpu> t(cpu, tok, train_shards, val_shards, o, {}, quiet);
  poison_row(cpu, t, "transformer.wte.weight", tok.vocab_size() - 1);  // the last special token
  CHECK_THROWS_WITH_AS(t.run(), doctest::Contains("step 3: the weights' sum of squares is "), Error);
  CHECK(latest_complete_step(fresh.path) == -1);
}

TEST_CASE("resuming at or past the end of the horizon or with another batch geometry or depth") {
  TinySetup setup("ckpt_resume_corpus");
  ScratchDir dir("ckpt_resume_dir");
  const auto& [corpus, tok, train_shards, val_shards, quiet] = setup;
  Cpu cpu;
  BaseTrainer<Tiny, Cpu> straight(cpu, tok, train_shards, val_shards, tiny_options(dir.path), {}, quiet);
  const TrainState end = straight.run();

  // At the horizon: the final evaluation and save again, nothing trained.
  auto o = tiny_options(dir.path);
  o.resume_from_step = 6;
  const std::string final_meta = read_text(dir.path / "meta_000006.json");
  BaseTrainer<Tiny, Cpu> at_end(cpu, tok, train_shards, val_shards, o, {}, quiet);
  CHECK(at_end.run().step == 6);
  // Not saved again (a save first removes the meta: a kill then would lose the final step); a
  // new save would carry a new save id.
  CHECK(read_text(dir.path / "meta_000006.json") == final_meta);
  CHECK(to_host(cpu, at_end.model().weights().flat()) == to_host(cpu, straight.model().weights().flat()));
  CHECK(at_end.state().val_bpb == end.val_bpb);

  // Past it (a shorter --num-iterations than the checkpoint's run): refused, not trained forever.
  o.num_iterations = 2;
  o.resume_from_step = 3;
  CHECK_THROWS_WITH_AS((BaseTrainer<Tiny, Cpu>(cpu, tok, train_shards, val_shards, o, {}, quiet)),
                       doctest::Contains("--resume-from-step 3 is past the end of this run's 2 iterations"), Error);

  // Flags that change which batches come next are refused, naming the flag and both values.
  for (const auto& [flag, change] :
       {std::pair<std::string, void (*)(BaseTrainOptions&)>{"--max-seq-len 16 but this run has --max-seq-len 32",
                                                            [](BaseTrainOptions& x) { x.max_seq_len = 32; }},
        std::pair<std::string, void (*)(BaseTrainOptions&)>{
            "--device-batch-size 2 but this run has --device-batch-size 4",
            [](BaseTrainOptions& x) { x.device_batch_size = 4; }},
        std::pair<std::string, void (*)(BaseTrainOptions&)>{
            "--total-batch-size 64 but this run has --total-batch-size 32",
            [](BaseTrainOptions& x) { x.total_batch_size = 32; }}}) {
    CAPTURE(flag);
    auto changed = tiny_options(dir.path);
    changed.resume_from_step = 3;
    change(changed);
    CHECK_THROWS_WITH_AS((BaseTrainer<Tiny, Cpu>(cpu, tok, train_shards, val_shards, changed, {}, quiet)),
                         doctest::Contains(("meta_000003.json: the checkpoint was trained with " + flag).c_str()), Error);
  }
  auto deeper = tiny_options(dir.path);
  deeper.resume_from_step = 3;
  CHECK_THROWS_WITH_AS((BaseTrainer<GptConfig<3, 2, 1, 16>, Cpu>(cpu, tok, train_shards, val_shards, deeper, {}, quiet)),
                       doctest::Contains("meta_000003.json: the checkpoint's model has n_layer 2 but this run's"), Error);

  // A geometry no save writes (0) marks the meta as corrupt rather than as another run's.
  std::string meta = read_text(dir.path / "meta_000003.json");
  const std::string key = "\"max_seq_len\": ";
  const std::size_t at = meta.find(key) + key.size();
  meta.replace(at, meta.find_first_not_of("0123456789", at) - at, "0");
  std::ofstream(dir.path / "meta_000003.json") << meta;
  auto corrupt = tiny_options(dir.path);
  corrupt.resume_from_step = 3;
  CHECK_THROWS_WITH_AS((BaseTrainer<Tiny, Cpu>(cpu, tok, train_shards, val_shards, corrupt, {}, quiet)),
                       doctest::Contains("meta_000003.json: max_seq_len 0, device_batch_size 2"), Error);
}

TEST_CASE("a run that fails before it writes anything leaves no checkpoint directory") {
  TinySetup setup("ckpt_nodir_corpus");
  ScratchDir scratch("ckpt_nodir");
  const auto& [corpus, tok, train_shards, val_shards, quiet] = setup;
  Cpu cpu;
  auto o = tiny_options(scratch.path / "d2");
  o.eval_every = -1;  // the first thing written would be step 0's training line
  const std::vector<fs::path> missing{scratch.path / "no_such_shard.parquet"};
  BaseTrainer<Tiny, Cpu> t(cpu, tok, missing, val_shards, o, {}, quiet);
  CHECK_THROWS_AS(t.run(), Error);
  CHECK_FALSE(fs::exists(scratch.path / "d2"));  // an empty d2/ would look like a run to the scanners

  // Nor does it trim an earlier run's metrics: that happens with its own first line.
  fs::create_directories(scratch.path / "d2");
  const std::string earlier = "{\"step\": 0, \"val_bpb\": 3.5}\n{\"step\": 1, \"loss\": 7}\n";
  std::ofstream(scratch.path / "d2" / "metrics.jsonl") << earlier;
  BaseTrainer<Tiny, Cpu> again(cpu, tok, missing, val_shards, o, {}, quiet);
  CHECK_THROWS_AS(again.run(), Error);
  CHECK(read_text(scratch.path / "d2" / "metrics.jsonl") == earlier);
}

TEST_CASE("metrics.jsonl reads as one run after a resume and the gradient norm is logged without clipping") {
  TinySetup setup("ckpt_metrics_corpus");
  ScratchDir straight("ckpt_metrics_straight"), resumed("ckpt_metrics_resumed");
  const auto& [corpus, tok, train_shards, val_shards, quiet] = setup;
  Cpu cpu;
  BaseTrainer<Tiny, Cpu>(cpu, tok, train_shards, val_shards, tiny_options(straight.path), {}, quiet).run();
  const auto expected = metrics_lines(straight.path / "metrics.jsonl");
  REQUIRE(expected.size() == 9);  // evaluations at 0, 3, 6 and six steps

  // The run was killed after step 4's line, halfway through writing step 5's; it resumes at 3.
  copy_step3(straight.path, resumed.path);
  std::string text = read_text(straight.path / "metrics.jsonl");
  text.resize(text.find("{\"step\": 5,") + 20);
  std::ofstream(resumed.path / "metrics.jsonl") << text;
  auto o = tiny_options(resumed.path);
  o.resume_from_step = 3;
  BaseTrainer<Tiny, Cpu>(cpu, tok, train_shards, val_shards, o, {}, quiet).run();
  CHECK(metrics_lines(resumed.path / "metrics.jsonl") == expected);

  // --grad-clip 0 turns clipping off, not the norm: each step logs the norm it had.
  ScratchDir unclipped("ckpt_metrics_unclipped");
  auto no_clip = tiny_options(unclipped.path);
  no_clip.grad_clip = 0.0f;
  BaseTrainer<Tiny, Cpu>(cpu, tok, train_shards, val_shards, no_clip, {}, quiet).run();
  std::ifstream in(unclipped.path / "metrics.jsonl");
  int steps = 0;
  for (std::string line; std::getline(in, line);) {
    const auto v = json::parse(line, "metrics.jsonl");
    if (const auto* norm = v.find("grad_norm")) {
      CHECK(norm->number("grad_norm") > 0.0);
      ++steps;
    }
  }
  CHECK(steps == 6);
}

TEST_CASE("every log line is in the log file as soon as it is printed") {
  TinySetup setup("ckpt_log_corpus");
  ScratchDir dir("ckpt_log_dir");
  const auto& [corpus, tok, train_shards, val_shards, quiet] = setup;
  Cpu cpu;
  const fs::path log_path = dir.path / "log.txt";
  std::FILE* log = std::fopen(log_path.c_str(), "w");  // fully buffered, as stdout redirected to a file
  REQUIRE(log != nullptr);
  auto o = tiny_options(dir.path / "ckpt");
  o.sample_every = 6;
  BaseTrainer<Tiny, Cpu>(cpu, tok, train_shards, val_shards, o, {}, log).run();
  const std::string text = read_text(log_path);  // before fclose: only what was flushed
  std::fclose(log);
  CHECK(text.find("step 00006 | validation bpb") != std::string::npos);
  CHECK(text.find("sample: ") != std::string::npos);
  CHECK(text.find("minimum validation bpb: ") != std::string::npos);
}
