// The base training loop on a tiny model and corpus: resuming from a checkpoint halfway gives
// bit-identical weights and optimizer state to the uninterrupted run; bf16 matmuls train like
// fp32 ones; the horizon follows nanochat's precedence; bits per byte follows its formula; bad
// batch sizes are named errors.

#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <tuple>
#include <vector>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/core/presets.hpp"
#include "nanochat/train/base_trainer.hpp"
#include "train_test_util.hpp"

using namespace nanochat;
using namespace nanochat_train_test;
using nanochat::cpu::Cpu;
namespace fs = std::filesystem;

TEST_CASE("N steps straight and N/2 + resume + N/2 give bit-identical weights and optimizer state") {
  TinySetup setup("train_corpus");
  ScratchDir straight("train_straight"), resumed("train_resumed");
  const auto& [corpus, tok, train_shards, val_shards, quiet] = setup;

  Cpu cpu;
  BaseTrainer<Tiny, Cpu> a(cpu, tok, train_shards, val_shards, tiny_options(straight.path), {}, quiet);
  CHECK(a.horizon().grad_accum == 2);
  const TrainState end_a = a.run();
  CHECK(end_a.step == 6);
  CHECK(fs::exists(straight.path / "model_000003.safetensors"));
  CHECK(fs::exists(straight.path / "meta_000006.json"));
  CHECK(latest_complete_step(straight.path) == 6);
  std::ofstream(straight.path / "meta_abcdef.json") << "{}";  // not a step: ignored, not a crash
  CHECK(latest_complete_step(straight.path) == 6);
  fs::remove(straight.path / "meta_abcdef.json");
  const std::vector<float> weights_a = to_host(cpu, a.model().weights().flat());

  // Resume from the step-3 checkpoint of the same run, in another directory.
  for (const char* f : {"model_000003.safetensors", "optim_000003_rank0.safetensors", "meta_000003.json"}) {
    fs::copy_file(straight.path / f, resumed.path / f);
  }
  auto options = tiny_options(resumed.path);
  options.resume_from_step = 3;
  BaseTrainer<Tiny, Cpu> b(cpu, tok, train_shards, val_shards, options, {}, quiet);
  CHECK(b.state().step == 3);
  const TrainState end_b = b.run();
  CHECK(to_host(cpu, b.model().weights().flat()) == weights_a);
  CHECK(end_b.smooth_train_loss == end_a.smooth_train_loss);
  CHECK(end_b.val_bpb == end_a.val_bpb);
  CHECK(end_b.loader == end_a.loader);
  const auto optim_a = SafetensorsFile::load(straight.path / "optim_000006_rank0.safetensors");
  const auto optim_b = SafetensorsFile::load(resumed.path / "optim_000006_rank0.safetensors");
  for (const char* name : {"adamw.exp_avg", "adamw.exp_avg_sq", "muon.momentum_buffer"}) {
    CAPTURE(name);
    const auto x = optim_a.values<float>(name), y = optim_b.values<float>(name);
    CHECK(std::equal(x.begin(), x.end(), y.begin(), y.end()));
  }
  // One metrics line per training step (and per evaluation) went to metrics.jsonl.
  std::ifstream metrics(straight.path / "metrics.jsonl");
  int step_lines = 0, eval_lines = 0;
  for (std::string line; std::getline(metrics, line);) {
    step_lines += line.find("\"loss\"") != std::string::npos;
    eval_lines += line.find("\"val_bpb\"") != std::string::npos;
  }
  CHECK(step_lines == 6);
  CHECK(eval_lines == 3);  // steps 0, 3 and 6

  // A meta file whose counts are not whole numbers is refused, naming the file and the field.
  for (const auto& [from, to, message] :
       {std::tuple{std::string("\"step\": 3,"), std::string("\"step\": 3.5,"), std::string("step is 3.5, not a whole number from 0 to 2^53")},
        std::tuple{std::string("\"epoch\": "), std::string("\"epoch\": -1"), std::string("epoch is -1")}}) {
    CAPTURE(to);
    std::ifstream in(straight.path / "meta_000003.json");
    std::string meta((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    REQUIRE(meta.find(from) != std::string::npos);
    meta.replace(meta.find(from), from.size(), to);
    std::ofstream(resumed.path / "meta_000003.json") << meta;
    for (const char* f : {"model_000003.safetensors", "optim_000003_rank0.safetensors"}) {
      fs::copy_file(straight.path / f, resumed.path / f, fs::copy_options::overwrite_existing);
    }
    const std::string needle = "meta_000003.json: " + message;
    CHECK_THROWS_WITH((BaseTrainer<Tiny, Cpu>(cpu, tok, train_shards, val_shards, options, {}, quiet)),
                      doctest::Contains(needle.c_str()));
  }
}

TEST_CASE("a bf16 Config trains like the fp32 one on the same data (its matmuls differ but not its learning)") {
  TinySetup setup("train_corpus_bf16");
  ScratchDir fp32_dir("train_fp32"), bf16_dir("train_bf16");
  const auto& [corpus, tok, train_shards, val_shards, quiet] = setup;
  Cpu cpu;
  BaseTrainer<Tiny, Cpu> fp32(cpu, tok, train_shards, val_shards, tiny_options(fp32_dir.path), {}, quiet);
  BaseTrainer<GptConfig<2, 2, 1, 16, bf16>, Cpu> half(cpu, tok, train_shards, val_shards, tiny_options(bf16_dir.path),
                                                      {}, quiet);
  const TrainState a = fp32.run(), b = half.run();
  CHECK(b.val_bpb != a.val_bpb);
  CHECK(b.val_bpb == doctest::Approx(a.val_bpb).epsilon(2e-3));  // 4e-5 apart on the machine it was written on
  CHECK(b.smooth_train_loss == doctest::Approx(a.smooth_train_loss).epsilon(2e-3));
}

TEST_CASE("the horizon follows nanochat's precedence and the batch must divide") {
  BaseTrainOptions o;
  o.max_seq_len = 2048;
  o.device_batch_size = 32;
  o.total_batch_size = 524288;
  // d20 at ratio 20: 560,988,160 x 20 / 524,288 = 21,400 iterations (spec §2.1).
  CHECK(plan_horizon<NanochatConfig<20>>(o, 65536).iterations == 21400);
  CHECK(plan_horizon<NanochatConfig<20>>(o, 65536).grad_accum == 8);
  o.target_flops = 21400.0 * NanochatConfig<20>::flops_per_token(65536, 2048) * 524288.0;  // ~3.918e19
  CHECK(plan_horizon<NanochatConfig<20>>(o, 65536).iterations == 21400);
  o.num_iterations = 10;
  CHECK(plan_horizon<NanochatConfig<20>>(o, 65536).iterations == 10);
  o.total_batch_size = 1000;
  CHECK_THROWS_WITH(plan_horizon<NanochatConfig<20>>(o, 65536),
                    doctest::Contains("--total-batch-size 1000 is not a multiple of --device-batch-size x "
                                      "--max-seq-len = 32 x 2048 = 65536 tokens"));
}

TEST_CASE("a horizon too large for a step count is an error naming the flag it came from") {
  BaseTrainOptions o;
  o.max_seq_len = 2048;
  o.device_batch_size = 32;
  o.total_batch_size = 524288;
  o.target_param_data_ratio = 1e290;  // a cast of 1e293 steps to int64 was undefined behaviour
  CHECK_THROWS_WITH(plan_horizon<NanochatConfig<20>>(o, 65536),
                    doctest::Contains("--target-param-data-ratio: the horizon comes out at 1.07"));
  o.target_flops = 1e40;  // llround's result was unspecified: "-9223372036854775808 iterations"
  CHECK_THROWS_WITH(plan_horizon<NanochatConfig<20>>(o, 65536), doctest::Contains("--target-flops: the horizon"));
  o.target_flops = 1.0;  // rounds to 0 steps
  CHECK_THROWS_WITH(plan_horizon<NanochatConfig<20>>(o, 65536),
                    doctest::Contains("--target-flops: the horizon comes out at 0 iterations; it must be 1 to"));
}

TEST_CASE("bits per byte: nats over the bytes of targets that have bytes") {
  BitsPerByteTotal total;
  const std::vector<float> losses{1.0f, 2.0f, 3.0f, 4.0f};
  const std::vector<std::int32_t> targets{0, 1, 2, -1};
  const std::vector<std::int32_t> token_bytes{3, 0, 5};  // token 1 is special: no bytes
  add_batch(total, losses, targets, token_bytes);
  CHECK(total.nats == doctest::Approx(4.0));
  CHECK(total.bytes == 8);
  CHECK(total.bits_per_byte() == doctest::Approx(4.0 / (std::log(2.0) * 8)));
  CHECK(std::isinf(BitsPerByteTotal{}.bits_per_byte()));
}
