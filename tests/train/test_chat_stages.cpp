// The chat stages on a tiny model: mid_train's rows are the rendered conversations' tokens
// concatenated; chat_sft's rows follow nanochat's padding and masking rules and its loss is the
// mean over the assistant's tokens only; both stages resume exactly.

#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <vector>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/train/mid_stage.hpp"
#include "nanochat/train/sft_stage.hpp"
#include "nanochat/train/stage_mixtures.hpp"
#include "train_test_util.hpp"

using namespace nanochat;
using namespace nanochat_train_test;
using nanochat::cpu::Cpu;
namespace fs = std::filesystem;

namespace {

tasks::TaskPtr small_mixture(std::size_t rows) { return offline_data(rows, true).train; }

// A source checkpoint of the tiny model, as base_train would leave it.
SafetensorsFile tiny_source(Cpu& cpu, const tokenizer::Tokenizer& tok, const fs::path& dir) {
  Gpt<Tiny, Cpu> model(cpu, tok.vocab_size(), 1, 16);
  model.init(7);
  fs::create_directories(dir);
  save_weights(cpu, model.weights(), dir / "model_000000.safetensors", 16);
  return SafetensorsFile::load(dir / "model_000000.safetensors");
}

}  // namespace

TEST_CASE("mid loader: rows are the rendered conversations' tokens concatenated, and resume exactly") {
  TinySetup setup("mid_loader");
  const auto task = small_mixture(3);
  std::vector<std::int32_t> stream;
  for (int epoch = 0; epoch < 3; ++epoch) {
    for (std::size_t i = 0; i < task->size(); ++i) {
      const auto r = tokenizer::render_conversation(setup.tok, task->example(i).conversation);
      stream.insert(stream.end(), r.ids.begin(), r.ids.end());
    }
  }
  const ConversationLoaderOptions o{2, 8, 0, 1, 2048};
  MidLoader loader(setup.tok, task, o);
  std::vector<std::int32_t> x, y;
  std::size_t at = 0;
  bool ended = false;
  std::vector<data::LoaderState> states;
  std::vector<std::vector<std::int32_t>> batches;
  while (!ended) {
    states.push_back(loader.state());
    ended = loader.next(x, y);
    REQUIRE(at + 17 <= stream.size());
    CHECK(x == std::vector<std::int32_t>(stream.begin() + at, stream.begin() + at + 16));
    CHECK(y == std::vector<std::int32_t>(stream.begin() + at + 1, stream.begin() + at + 17));
    batches.push_back(x);
    at += 17;  // B*T+1 tokens per batch, the extra one consumed
  }
  // The batch that ended the epoch is the first to read from the last conversation.
  std::size_t before_last = 0;
  for (std::size_t i = 0; i + 1 < task->size(); ++i)
    before_last += tokenizer::render_conversation(setup.tok, task->example(i).conversation).ids.size();
  CHECK(at - 17 <= before_last);
  CHECK(at > before_last);
  // From any saved position the same batches follow.
  for (std::size_t k = 0; k < states.size(); ++k) {
    MidLoader resumed(setup.tok, task, o, states[k]);
    resumed.next(x, y);
    CHECK(x == batches[k]);
  }
  CHECK_THROWS_WITH(MidLoader(setup.tok, task, o, data::LoaderState{0, 0, task->size(), 0}),
                    doctest::Contains("is outside task"));
}

TEST_CASE("sft rows: inputs ids[:-1] padded with <|assistant_end|>, targets ids[1:] with -1 where mask[1:] is 0") {
  const std::vector<tokenizer::RenderedConversation> rows{{{10, 11, 12, 13, 14}, {0, 0, 1, 1, 0}},
                                                          {{20, 21, 22}, {0, 1, 1}}};
  std::vector<std::int32_t> inputs, targets;
  // width 4 = the longest minus one: nanochat's own batch.
  CHECK(collate_sft_rows(rows, 99, 4, inputs, targets) == 4);
  CHECK(inputs == std::vector<std::int32_t>{10, 11, 12, 13, 20, 21, 99, 99});
  CHECK(targets == std::vector<std::int32_t>{-1, 12, 13, -1, 21, 22, -1, -1});
  // Wider (our fixed model width): the same, then padding.
  CHECK(collate_sft_rows(rows, 99, 6, inputs, targets) == 4);
  CHECK(inputs == std::vector<std::int32_t>{10, 11, 12, 13, 99, 99, 20, 21, 99, 99, 99, 99});
  CHECK(targets == std::vector<std::int32_t>{-1, 12, 13, -1, -1, -1, 21, 22, -1, -1, -1, -1});
  CHECK_THROWS_WITH(collate_sft_rows(rows, 99, 3, inputs, targets), doctest::Contains("for a width of 3"));
}

TEST_CASE("sft loss is the mean over the assistant's tokens of the batch, by hand from per-token losses") {
  TinySetup setup("sft_loss");
  Cpu cpu;
  const auto task = small_mixture(2);
  const ConversationLoaderOptions o{2, 64, 0, 1, 2048};
  SftLoader loader(setup.tok, task, o);
  std::vector<std::int32_t> x, y;
  loader.next(x, y);
  Gpt<Tiny, Cpu> model(cpu, setup.tok.vocab_size(), 2, 64);
  model.init(3);
  Tensor<std::int32_t, Cpu> ids(cpu, {2, 64}), all(cpu, {2, 64}), sft(cpu, {2, 64});
  copy_from_host(cpu, ids.view(), std::span<const std::int32_t>(x));
  // Every next token as a target: the per-token losses of the whole rows.
  std::vector<std::int32_t> every(x.size(), ignore_index);
  for (std::size_t r = 0; r < 2; ++r) {
    const auto conv = tokenizer::render_conversation(setup.tok, task->example(r).conversation, 65);
    for (std::size_t t = 0; t + 1 < conv.ids.size(); ++t) every[r * 64 + t] = static_cast<std::int32_t>(conv.ids[t + 1]);
  }
  copy_from_host(cpu, all.view(), std::span<const std::int32_t>(every));
  model.forward_loss(ids.view(), all.view());
  const std::vector<float> losses = to_host(cpu, model.activations().losses);
  double sum = 0.0;
  std::int64_t n = 0, user_tokens = 0;
  for (std::size_t r = 0; r < 2; ++r) {
    const auto conv = tokenizer::render_conversation(setup.tok, task->example(r).conversation, 65);
    for (std::size_t t = 0; t + 1 < conv.ids.size(); ++t) {
      if (conv.mask[t + 1]) {
        sum += losses[r * 64 + t];
        ++n;
      } else {
        ++user_tokens;
      }
    }
  }
  REQUIRE(n > 0);
  REQUIRE(user_tokens > 0);  // the prompt's tokens are there and left out
  CHECK(loader.last_supervised() == n);
  copy_from_host(cpu, sft.view(), std::span<const std::int32_t>(y));
  CHECK(model.forward_loss(ids.view(), sft.view()) == doctest::Approx(sum / static_cast<double>(n)).epsilon(1e-6));
}

template <class Stage>
void check_exact_resume(typename Stage::Options options, const char* name) {
  TinySetup setup(std::string(name) + "_corpus");
  ScratchDir straight(std::string(name) + "_straight"), resumed(std::string(name) + "_resumed"),
      source_dir(std::string(name) + "_source");
  Cpu cpu;
  const StageData data = offline_data(4, true);
  const auto source = tiny_source(cpu, setup.tok, source_dir.path);
  options.checkpoint_dir = straight.path;
  StageTrainer<Tiny, Cpu, Stage> a(cpu, setup.tok, data.train, data.val, source, options, {}, setup.quiet);
  const TrainState end_a = a.run();
  REQUIRE(end_a.step >= 4);
  const std::vector<float> weights_a = to_host(cpu, a.model().weights().flat());
  for (const char* f : {"model_000002.safetensors", "optim_000002_rank0.safetensors", "meta_000002.json"}) {
    fs::copy_file(straight.path / f, resumed.path / f);
  }
  options.checkpoint_dir = resumed.path;
  options.resume_from_step = 2;
  StageTrainer<Tiny, Cpu, Stage> b(cpu, setup.tok, data.train, data.val, source, options, {}, setup.quiet);
  CHECK(b.state().step == 2);
  const TrainState end_b = b.run();
  CHECK(end_b.step == end_a.step);
  CHECK(to_host(cpu, b.model().weights().flat()) == weights_a);
  CHECK(end_b.smooth_train_loss == end_a.smooth_train_loss);
  CHECK(end_b.val_bpb == end_a.val_bpb);
  CHECK(end_b.val_loss == end_a.val_loss);
  CHECK(end_b.loader == end_a.loader);
  // The saved geometry is checked: another batch is refused, naming the flag.
  options.device_batch_size *= 2;
  if constexpr (std::is_same_v<Stage, MidStage>) options.total_batch_size *= 2;
  else options.target_examples_per_step *= 2;
  CHECK_THROWS_WITH((StageTrainer<Tiny, Cpu, Stage>(cpu, setup.tok, data.train, data.val, source, options, {}, setup.quiet)),
                    doctest::Contains("but this run has --device-batch-size"));
}

TEST_CASE("mid_train resumes exactly and one epoch ends the run") {
  MidOptions o;
  o.max_seq_len = 16;
  o.device_batch_size = 2;
  o.total_batch_size = 64;  // two micro-batches per step
  o.eval_every = 2;
  o.eval_tokens = 32;
  o.save_every = 2;
  check_exact_resume<MidStage>(o, "mid_resume");
}

TEST_CASE("chat_sft resumes exactly and stops at step num_iterations - 1") {
  SftOptions o;
  o.max_seq_len = 64;
  o.device_batch_size = 2;
  o.target_examples_per_step = 4;
  o.num_iterations = 6;
  o.eval_every = 2;
  o.eval_steps = 2;
  o.save_every = 2;
  check_exact_resume<SftStage>(o, "sft_resume");
  CHECK(SftStage::final_step(o, 100) == 5);
  o.num_iterations = -1;
  CHECK(SftStage::final_step(o, 22443).value() + 1 == 22443 / 4);
  CHECK(SftStage::lr_multiplier(0, 5, 0) == 1.0);
  CHECK(SftStage::lr_multiplier(3, 5, 0) == doctest::Approx(0.5));
  CHECK(mid_lr_multiplier(0.5) == 1.0);
  CHECK(mid_lr_multiplier(0.9) == doctest::Approx(0.5));
  o.num_iterations = 1;
  CHECK_THROWS_WITH(SftStage::final_step(o, 100), doctest::Contains("make no update"));
}
