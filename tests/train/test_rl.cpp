// chat_rl's pieces: the rollout's rows (padding, targets -1 on the prompt, forced tool tokens and
// padding), the advantages, the pass losses and the accumulated gradient against PyTorch
// (tests/reference/rl_reference.py), the rollout seeds against CPython's hash, pass@k; the
// trainer's updates raising the reward of a learnable task, and its exact resume.

#include <doctest/doctest.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/core/safetensors.hpp"
#include "nanochat/model/gpt.hpp"
#include "nanochat/model/weights_file.hpp"
#include "nanochat/train/rl_batch.hpp"
#include "nanochat/train/rl_seed.hpp"
#include "nanochat/train/rl_trainer.hpp"
#include "even_byte_task.hpp"
#include "relative_error.hpp"
#include "train_test_util.hpp"

using namespace nanochat;
using nanochat::cpu::Cpu;
using nanochat::testing::relative_error;
namespace fs = std::filesystem;

namespace {

SafetensorsFile rl_fixture() { return SafetensorsFile::load(std::string(NANOCHAT_FIXTURES) + "/train/rl_step.safetensors"); }

std::int64_t meta(const SafetensorsFile& f, const char* key) { return metadata_integer(f, key); }

// Example e's rollout as the Engine would return it.
Rollout fixture_rollout(const SafetensorsFile& f, int e) {
  const std::string p = "ex" + std::to_string(e) + ".";
  const auto seqs = f.values<std::int64_t>(p + "sequences");
  const auto masks = f.values<std::int64_t>(p + "masks");
  const auto lengths = f.values<std::int64_t>(p + "lengths");
  const auto rewards = f.values<float>(p + "rewards");
  const std::size_t longest = static_cast<std::size_t>(f.at(p + "sequences").shape[1]);
  Rollout r;
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    r.sequences.emplace_back();
    r.masks.emplace_back();
    for (std::int64_t t = 0; t < lengths[i]; ++t) {
      r.sequences.back().push_back(static_cast<std::int32_t>(seqs[i * longest + static_cast<std::size_t>(t)]));
      r.masks.back().push_back(static_cast<std::uint8_t>(masks[i * longest + static_cast<std::size_t>(t)]));
    }
    r.rewards.push_back(rewards[i]);
  }
  return r;
}

}  // namespace

TEST_CASE("RL rows: inputs padded with the pad id, targets -1 on the prompt, forced tokens and padding") {
  // A 3-token prompt, a sampled token, a forced tool output of two tokens, one more sampled token.
  Rollout r;
  r.sequences = {{10, 11, 12, 20, 30, 31, 21}, {10, 11, 12, 22}};
  r.masks = {{0, 0, 0, 1, 0, 0, 1}, {0, 0, 0, 1}};
  r.rewards = {1.0f, 0.0f};
  RlBatch b;
  build_rl_batch(r, 99, 8, b);
  CHECK(b.rows == 2);
  CHECK(b.width == 8);
  const std::vector<std::int32_t> inputs = {10, 11, 12, 20, 30, 31, 21, 99, /**/ 10, 11, 12, 22, 99, 99, 99, 99};
  const std::vector<std::int32_t> targets = {-1, -1, 20, -1, -1, 21, -1, -1, /**/ -1, -1, 22, -1, -1, -1, -1, -1};
  CHECK(b.inputs == inputs);
  CHECK(b.targets == targets);
  CHECK(b.advantages == std::vector<float>{0.5f, -0.5f});

  // Pass weights: advantage / (valid targets of the pass * passes * examples per rank).
  std::vector<float> w(8);
  CHECK(pass_token_weights(b, 0, 1, 2, 3, w) == 2);
  CHECK(w == std::vector<float>{0, 0, 0.5f / 12, 0, 0, 0.5f / 12, 0, 0});
  std::vector<float> both(16);
  CHECK(pass_token_weights(b, 0, 2, 1, 1, both) == 3);
  CHECK(both[10] == doctest::Approx(-0.5f / 3));

  // The exact fit: a row of width + 1 tokens has no padding; one more does not fit.
  build_rl_batch(r, 99, 6, b);
  CHECK(b.inputs[6 - 1] == 31);
  CHECK(b.targets[6 - 1] == 21);
  CHECK_THROWS_WITH_AS(build_rl_batch(r, 99, 5, b), doctest::Contains("a sequence of 7 tokens does not fit rows of 5"),
                       Error);
  r.masks[1].pop_back();
  CHECK_THROWS_WITH_AS(build_rl_batch(r, 99, 8, b), doctest::Contains("sample 1 has 4 tokens and 3 mask values"), Error);
}

TEST_CASE("RL advantages, pass losses and the accumulated gradient on a fixed rollout equal PyTorch's") {
  using Cfg = GptConfig<2, 2, 1, 16>;
  Cpu cpu;
  const auto f = rl_fixture();
  const std::int64_t rows = meta(f, "device_batch_size"), examples = meta(f, "examples");
  const auto pad = static_cast<std::int32_t>(meta(f, "pad"));
  // Wider than any example's longest: the extra padding changes nothing.
  constexpr std::int64_t width = 15;
  Gpt<Cfg, Cpu> model(cpu, meta(f, "vocab_size"), rows, width);
  load_weights(cpu, model.weights(), f);
  Tensor<std::int32_t, Cpu> ids(cpu, {rows, width}), targets(cpu, {rows, width});
  Tensor<float, Cpu> weights(cpu, {rows * width});
  RlBatch batch;
  for (int e = 0; e < examples; ++e) {
    CAPTURE(e);
    const std::string p = "ex" + std::to_string(e) + ".";
    build_rl_batch(fixture_rollout(f, e), pad, width, batch);
    const auto want_adv = f.values<float>(p + "advantages");
    for (std::size_t i = 0; i < want_adv.size(); ++i) CHECK(batch.advantages[i] == doctest::Approx(want_adv[i]).epsilon(1e-7));
    // nanochat's rows, narrower: ours agree on its columns and pad beyond, except that a longest
    // row's last token is an input too (with target -1).
    const auto want_in = f.values<std::int64_t>(p + "inputs"), want_tgt = f.values<std::int64_t>(p + "targets");
    const auto narrow = static_cast<std::size_t>(f.at(p + "inputs").shape[1]);
    const Rollout rollout = fixture_rollout(f, e);
    for (std::size_t r = 0; r < static_cast<std::size_t>(batch.rows); ++r) {
      const auto& seq = rollout.sequences[r];
      for (std::size_t t = 0; t < static_cast<std::size_t>(width); ++t) {
        const std::size_t at = r * static_cast<std::size_t>(width) + t;
        const std::int64_t beyond = t + 1 == seq.size() ? seq.back() : pad;
        CHECK(batch.inputs[at] == (t < narrow ? want_in[r * narrow + t] : beyond));
        CHECK(batch.targets[at] == (t < narrow ? want_tgt[r * narrow + t] : -1));
      }
    }
    const auto want_loss = f.values<float>(p + "losses");
    const std::int64_t passes = batch.rows / rows;
    REQUIRE(static_cast<std::int64_t>(want_loss.size()) == passes);
    const auto cells = static_cast<std::size_t>(rows * width);
    for (std::int64_t pass = 0; pass < passes; ++pass) {
      CAPTURE(pass);
      std::copy_n(batch.inputs.data() + static_cast<std::size_t>(pass) * cells, cells, ids.data());
      std::copy_n(batch.targets.data() + static_cast<std::size_t>(pass) * cells, cells, targets.data());
      model.forward_loss(ids.view(), targets.view(), LossReduction::sum);
      const std::span<float> w(weights.data(), cells);
      pass_token_weights(batch, pass * rows, rows, passes, examples, w);
      const double loss = policy_gradient_loss(std::span<const float>(model.activations().losses.data(), cells), w);
      CHECK(loss == doctest::Approx(want_loss[static_cast<std::size_t>(pass)]).epsilon(1e-5));
      model.backward(ids.view(), targets.view(), TensorView<const float, Cpu>(weights.view()));
    }
  }
  model.grads().for_each([&](const std::string& name, TensorView<float, Cpu> g) {
    CAPTURE(name);
    CHECK(relative_error(std::span<const float>(g.data(), static_cast<std::size_t>(g.numel())),
                         f.values<float>("grad." + name)) < 1e-5);
  });
}

TEST_CASE("per-token weights all equal to s give the gradient of the uniform scale s") {
  using Cfg = GptConfig<1, 2, 2, 8>;
  Cpu cpu;
  Gpt<Cfg, Cpu> a(cpu, 13, 2, 5), b(cpu, 13, 2, 5);
  a.init(3);
  b.init(3);
  Tensor<std::int32_t, Cpu> ids(cpu, {2, 5}), targets(cpu, {2, 5});
  Tensor<float, Cpu> weights(cpu, {10});
  for (int i = 0; i < 10; ++i) {
    ids.data()[i] = (i * 7) % 13;
    targets.data()[i] = i % 4 == 0 ? -1 : (i * 5) % 13;
    weights.data()[i] = 0.25f;
  }
  a.forward_loss(ids.view(), targets.view(), LossReduction::sum);
  a.backward(ids.view(), targets.view(), 0.25f);
  b.forward_loss(ids.view(), targets.view(), LossReduction::sum);
  b.backward(ids.view(), targets.view(), TensorView<const float, Cpu>(weights.view()));
  const auto ga = a.grads().flat(), gb = b.grads().flat();
  CHECK(relative_error(std::span<const float>(gb.data(), static_cast<std::size_t>(gb.numel())),
                       std::span<const float>(ga.data(), static_cast<std::size_t>(ga.numel()))) == 0.0);
  Tensor<float, Cpu> short_weights(cpu, {9});
  a.forward_loss(ids.view(), targets.view());
  CHECK_THROWS_WITH_AS(a.backward(ids.view(), targets.view(), TensorView<const float, Cpu>(short_weights.view())),
                       doctest::Contains("10 targets but token weights of shape [9]"), Error);
}

TEST_CASE("rollout seeds are CPython's hash((step, example, sampling step)) & 0x7FFFFFFF") {
  const auto f = rl_fixture();
  const auto seeds = f.values<std::int64_t>("seeds");
  REQUIRE(seeds.size() % 4 == 0);
  for (std::size_t i = 0; i < seeds.size(); i += 4) {
    CAPTURE(i / 4);
    CHECK(rollout_seed(seeds[i], seeds[i + 1], seeds[i + 2]) == static_cast<std::uint64_t>(seeds[i + 3]));
  }
}

TEST_CASE("pass@k counts a problem from the first k samples that has a correct one") {
  const std::vector<std::vector<bool>> outcomes = {{false, true, false}, {false, false, false}, {true, false, false},
                                                   {false, false, true}};
  const auto p = eval::pass_at_k(outcomes, 3);
  CHECK(p == std::vector<double>{0.25, 0.5, 0.75});
}

namespace {

// A freshly initialised Tiny checkpoint (seed `seed`) saved at path: the policy RL starts from.
SafetensorsFile random_source(Cpu& cpu, const nanochat_train_test::TinySetup& setup, const fs::path& path,
                              std::uint64_t seed) {
  GptWeights<nanochat_train_test::Tiny, Cpu> w(cpu, static_cast<std::int64_t>(setup.tok.vocab_size()));
  init_weights(cpu, w, seed);
  save_weights(cpu, w, path, 48, {});
  return SafetensorsFile::load(path);
}

}  // namespace

TEST_CASE("RlTrainer: the updates move the weights, and a run resumed at step 1 ends with the uninterrupted one's") {
  using nanochat_train_test::Tiny;
  nanochat_train_test::TinySetup setup("rl_resume");
  nanochat_train_test::ScratchDir dir("rl_resume_ckpt");
  Cpu cpu;
  const auto source = random_source(cpu, setup, dir.path / "source.safetensors", 7);
  const auto task = std::make_shared<nanochat_train_test::EvenByteTask>(6);
  RlOptions o;
  o.device_batch_size = 2;
  o.examples_per_step = 3;
  o.num_samples = 4;
  o.max_new_tokens = 5;
  o.init_lr_frac = 1.0;
  o.eval_every = -1;
  o.save_every = 1;
  o.checkpoint_dir = dir.path / "rl";
  std::vector<float> uninterrupted;
  {
    RlTrainer<Tiny> trainer(cpu, setup.tok, task, task, source, 48, o, {}, setup.quiet);
    CHECK(trainer.num_steps() == 2);
    trainer.run();
    const auto w = trainer.model().weights().flat();
    uninterrupted.assign(w.data(), w.data() + w.numel());
  }
  {
    RlTrainer<Tiny> fresh(cpu, setup.tok, task, task, source, 48, o, {}, setup.quiet);
    const auto w = fresh.model().weights().flat();
    CHECK(std::vector<float>(w.data(), w.data() + w.numel()) != uninterrupted);
  }
  o.resume_from_step = 1;
  RlTrainer<Tiny> resumed(cpu, setup.tok, task, task, source, 48, o, {}, setup.quiet);
  CHECK(resumed.state().step == 1);
  resumed.run();
  const auto w = resumed.model().weights().flat();
  CHECK(std::vector<float>(w.data(), w.data() + w.numel()) == uninterrupted);
}

TEST_CASE("RlTrainer: on a task a tiny model can learn, the rollouts' reward rises step by step") {
  // The direction of the update (the sign of the loss, the advantage's baseline, which tokens
  // are weighted) is what this checks: a wrong one leaves the reward flat or drives it down.
  using nanochat_train_test::Tiny;
  nanochat_train_test::TinySetup setup("rl_learns");
  nanochat_train_test::ScratchDir dir("rl_learns_ckpt");
  Cpu cpu;
  const auto source = random_source(cpu, setup, dir.path / "source.safetensors", 11);
  const auto task = std::make_shared<nanochat_train_test::EvenByteTask>(32);
  RlOptions o;
  o.device_batch_size = 4;
  o.examples_per_step = 2;
  o.num_samples = 8;
  o.max_new_tokens = 2;
  o.init_lr_frac = 0.5;
  o.eval_every = -1;
  o.save_every = -1;
  o.checkpoint_dir = dir.path / "rl";
  RlTrainer<Tiny> trainer(cpu, setup.tok, task, task, source, 48, o, {}, setup.quiet);
  REQUIRE(trainer.num_steps() == 16);
  trainer.run();
  std::vector<double> rewards;
  std::ifstream in(o.checkpoint_dir / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const auto v = json::parse(line, "metrics.jsonl");
    if (const auto* r = v.find("reward")) rewards.push_back(r->number("reward"));
  }
  REQUIRE(rewards.size() == 16);
  const auto mean = [&](std::size_t from, std::size_t to) {
    double sum = 0.0;
    for (std::size_t i = from; i < to; ++i) sum += rewards[i];
    return sum / static_cast<double>(to - from);
  };
  std::string curve;
  for (const double r : rewards) curve += std::to_string(r) + " ";
  CAPTURE(curve);
  CHECK(mean(0, 4) < 0.8);  // room to learn
  CHECK(mean(12, 16) > mean(0, 4) + 0.15);
}
