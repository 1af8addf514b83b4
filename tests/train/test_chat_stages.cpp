// The chat stages on a tiny model: mid_train's rows are the rendered conversations' tokens
// concatenated; chat_sft's rows follow nanochat's padding and masking rules (each batch as wide
// as its longest row, the loss and gradients those of a T-wide batch) and its loss is the mean
// over the assistant's tokens only; both stages resume exactly; chat_sft's multiple-choice
// accuracies run on their schedule into its meta, and a non-finite loss names its own flags.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/eval/categorical_eval.hpp"
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
  // Wider (every batch was padded to the model's T before): the same, then padding.
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
  // As wide as the longer conversation minus one, as nanochat's collate.
  std::size_t longest = 0;
  for (std::size_t r = 0; r < 2; ++r)
    longest = std::max(longest, tokenizer::render_conversation(setup.tok, task->example(r).conversation, 65).ids.size());
  const auto width = static_cast<std::int64_t>(longest - 1);
  REQUIRE(x.size() == static_cast<std::size_t>(2 * width));
  Gpt<Tiny, Cpu> model(cpu, setup.tok.vocab_size(), 2, 64);
  model.init(3);
  Tensor<std::int32_t, Cpu> ids(cpu, {2, width}), all(cpu, {2, width}), sft(cpu, {2, width});
  copy_from_host(cpu, ids.view(), std::span<const std::int32_t>(x));
  // Every next token as a target: the per-token losses of the whole rows.
  std::vector<std::int32_t> every(x.size(), ignore_index);
  for (std::size_t r = 0; r < 2; ++r) {
    const auto conv = tokenizer::render_conversation(setup.tok, task->example(r).conversation, 65);
    for (std::size_t t = 0; t + 1 < conv.ids.size(); ++t)
      every[r * static_cast<std::size_t>(width) + t] = static_cast<std::int32_t>(conv.ids[t + 1]);
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
        sum += losses[r * static_cast<std::size_t>(width) + t];
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

TEST_CASE("sft batches padded to their longest row give the loss and gradients of the same batches padded to T") {
  TinySetup setup("sft_width");
  Cpu cpu;
  const auto task = small_mixture(3);
  const std::int64_t rows = 2;
  const auto pad = static_cast<std::int32_t>(setup.tok.encode_special("<|assistant_end|>"));
  // T = 64: most batches narrower. T = the shortest conversation minus one: every row is cut to
  // T + 1 tokens, each batch exactly T wide, the fixed-T batch itself.
  std::size_t shortest = 2048;
  for (std::size_t i = 0; i < task->size(); ++i)
    shortest = std::min(shortest, tokenizer::render_conversation(setup.tok, task->example(i).conversation).ids.size());
  for (const std::int64_t planned : {std::int64_t{64}, static_cast<std::int64_t>(shortest) - 1}) {
    CAPTURE(planned);
    SftLoader loader(setup.tok, task, {static_cast<std::size_t>(rows), static_cast<std::size_t>(planned), 0, 1, 2048});
    Gpt<Tiny, Cpu> narrow(cpu, setup.tok.vocab_size(), rows, planned), fixed(cpu, setup.tok.vocab_size(), rows, planned);
    narrow.init(5);
    fixed.init(5);
    Tensor<std::int32_t, Cpu> ids(cpu, {rows, planned}), targets(cpu, {rows, planned});
    std::vector<std::int32_t> x, y, x_fixed, y_fixed;
    std::int64_t narrower = 0;
    for (std::size_t batch = 0; batch < task->size() / rows; ++batch) {
      std::vector<tokenizer::RenderedConversation> rendered;
      for (std::int64_t r = 0; r < rows; ++r)
        rendered.push_back(tokenizer::render_conversation(
            setup.tok, task->example(batch * rows + static_cast<std::size_t>(r)).conversation,
            static_cast<std::size_t>(planned) + 1));
      loader.next(x, y);
      // What the loader did before: every batch T wide.
      collate_sft_rows(rendered, pad, static_cast<std::size_t>(planned), x_fixed, y_fixed);
      const auto a = upload_rows(cpu, ids, std::span<const std::int32_t>(x), rows);
      const auto b = upload_rows(cpu, targets, std::span<const std::int32_t>(y), rows);
      narrower += a.size(1) < planned;
      const float loss = narrow.forward_loss(a, b);
      narrow.backward(a, b, 0.5f);
      Tensor<std::int32_t, Cpu> fixed_ids(cpu, {rows, planned}), fixed_targets(cpu, {rows, planned});
      copy_from_host(cpu, fixed_ids.view(), std::span<const std::int32_t>(x_fixed));
      copy_from_host(cpu, fixed_targets.view(), std::span<const std::int32_t>(y_fixed));
      const float fixed_loss = fixed.forward_loss(fixed_ids.view(), fixed_targets.view());
      fixed.backward(fixed_ids.view(), fixed_targets.view(), 0.5f);
      CHECK(loss == doctest::Approx(fixed_loss).epsilon(1e-6));
    }
    const std::vector<float> g = to_host(cpu, narrow.grads().flat()), g_fixed = to_host(cpu, fixed.grads().flat());
    double worst = 0.0, norm = 0.0;
    for (std::size_t i = 0; i < g.size(); ++i) {
      worst = std::max(worst, std::abs(static_cast<double>(g[i]) - g_fixed[i]));
      norm = std::max(norm, std::abs(static_cast<double>(g_fixed[i])));
    }
    CHECK(norm > 0);
    CHECK(worst <= 1e-5 * norm);
    if (planned == 64) CHECK(narrower > 0);
    else CHECK(narrower == 0);
  }
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

namespace {

// Multiple-choice questions in nanochat's format, letters A-C, the gold letter cycling.
class LetterQuiz final : public tasks::Task {
 public:
  std::string name() const override { return "LetterQuiz"; }
  std::size_t size() const override { return 5; }
  tasks::Example example(std::size_t i) const override {
    check_index(i);
    const std::vector<std::string> letters{"A", "B", "C"};
    return tasks::multiple_choice_example("which word is " + std::to_string(i), letters, {"the", "model", "reads"},
                                          letters[i % 3]);
  }
  tasks::EvalType eval_type() const override { return tasks::EvalType::categorical; }
  bool has_scorer() const override { return true; }
  bool evaluate(const tasks::Example& e, std::string_view chosen) const override {
    return tasks::multiple_choice_correct(e, chosen, "LetterQuiz");
  }
};

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("chat_sft measures its multiple-choice accuracies every eval_metrics_every steps and at the end, into the meta") {
  TinySetup setup("sft_metrics_corpus");
  ScratchDir out("sft_metrics_out"), source_dir("sft_metrics_source");
  Cpu cpu;
  const StageData data = offline_data(4, false);
  const auto source = tiny_source(cpu, setup.tok, source_dir.path);
  const auto quiz = std::make_shared<LetterQuiz>();
  SftOptions o;
  o.max_seq_len = 64;
  o.device_batch_size = 2;
  o.target_examples_per_step = 2;
  o.num_iterations = 6;  // steps 0..5, the last without an update
  o.eval_every = -1;
  o.eval_steps = 1;
  o.eval_metrics_every = 2;
  o.eval_metrics_max_problems = 4;
  o.metric_tasks = {{"mmlu_acc", quiz}};
  o.checkpoint_dir = out.path;
  StageTrainer<Tiny, Cpu, SftStage> trainer(cpu, setup.tok, data.train, data.val, source, o, {}, setup.quiet);
  const TrainState end = trainer.run();
  REQUIRE(end.step == 5);
  // The end's accuracy is the final model's, on the first 4 problems.
  const auto expected = eval::evaluate_categorical(cpu, trainer.model(), setup.tok, *quiz, 4);
  CHECK(expected.accuracy.total == 4);
  REQUIRE(end.accuracies.count("mmlu_acc") == 1);
  CHECK(end.accuracies.at("mmlu_acc") == expected.accuracy.accuracy());
  std::vector<std::int64_t> steps;
  std::istringstream lines(read_text(out.path / "metrics.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    const json::Value v = json::parse(line, "metrics.jsonl");
    if (v.find("mmlu_acc") != nullptr) steps.push_back(static_cast<std::int64_t>(v.find("step")->whole_number("step")));
  }
  CHECK(steps == std::vector<std::int64_t>{2, 4, 5});
  // nanochat's chat_sft meta: val_loss and the accuracies, no val_bpb.
  const json::Value meta = json::parse(read_text(out.path / "meta_000005.json"), "meta");
  CHECK(meta.find("val_bpb") == nullptr);
  CHECK(meta.find("val_loss")->number("val_loss") == doctest::Approx(end.val_loss));
  CHECK(meta.find("val_loss")->number("val_loss") > 0);
  CHECK(meta.find("mmlu_acc")->number("mmlu_acc") == expected.accuracy.accuracy());
  // And it loads back as such.
  NanochatOptimizers<Tiny, Cpu> optimizers(cpu, trainer.model().weights(), trainer.model().grads(), LearningRates{});
  const TrainState loaded = load_checkpoint(cpu, out.path, 5, trainer.model().weights(), optimizers);
  CHECK(loaded.validation == ValidationMetric::loss);
  CHECK(loaded.val_loss == end.val_loss);
  CHECK(loaded.accuracies == end.accuracies);
}

TEST_CASE("a chat stage that stops on a non-finite loss suggests its own flags, not base_train's --grad-clip") {
  TinySetup setup("sft_nan_corpus");
  ScratchDir out("sft_nan_out"), source_dir("sft_nan_source");
  Cpu cpu;
  const StageData data = offline_data(4, false);
  const auto source = tiny_source(cpu, setup.tok, source_dir.path);
  SftOptions o;
  o.max_seq_len = 64;
  o.device_batch_size = 2;
  o.target_examples_per_step = 2;
  o.num_iterations = 3;
  o.eval_every = -1;
  o.checkpoint_dir = out.path;
  StageTrainer<Tiny, Cpu, SftStage> trainer(cpu, setup.tok, data.train, data.val, source, o, {}, setup.quiet);
  float* lm_head = trainer.model().weights().lm_head.data();
  std::fill_n(lm_head, Tiny::model_dim, std::numeric_limits<float>::quiet_NaN());  // token 0's row: every loss
  std::string stopped;
  try {
    trainer.run();
  } catch (const Error& e) {
    stopped = e.what();
  }
  CAPTURE(stopped);
  CHECK(stopped.find("step 0: the training loss is ") != std::string::npos);
  CHECK(stopped.find("(lower --init-lr-frac or the learning rates (--matrix-lr, --embedding-lr, --unembedding-lr)?)") !=
        std::string::npos);
  CHECK(stopped.find("--grad-clip") == std::string::npos);
}
