#pragma once
// nanochat's chat_rl (spec §5.6): simplified GRPO, on-policy REINFORCE with a mean baseline and a
// token-normalised loss. Each step takes examples_per_step examples (cycling through the train
// task in order), samples num_samples completions of each through the batched Engine (in
// num_samples / device_batch_size batches, seeds from (step, example, batch): train/rl_seed.hpp),
// scores them with the task's reward, and accumulates the policy gradient of every pass of
// device_batch_size rows (train/rl_batch.hpp) before one AdamW + Muon update with lr = initial *
// (1 - step / num_steps) and Muon momentum 0.95. No KL term, no ratio or clipping, no reference
// model. Every eval_every steps (step 0 included) pass@k, k = 1..device_batch_size, over the
// first eval_examples problems of the validation task.
//
// The sampler and the trained model share one set of weights: the Engine drives a GptDecoder
// that borrows the training Gpt's GptWeights (a view, never a copy), so the rollouts of step S
// see the update of step S - 1 with no per-step copy; the decoder's KV cache is reserved once for
// the longest rollout. The training Gpt is planned for rows of `width` tokens: the longest
// prompt of the train task plus max_new_tokens, less one, at most the model's sequence_len
// (a rollout that would not fit is generated with fewer new tokens).
//
// Checkpoints (train/checkpoint.hpp: weights, optimizer state, meta) go to checkpoint_dir at the
// start of step S (after S updates) for S > 0 divisible by save_every, and at the end (S =
// num_steps). nanochat saves after step S's update under the name S and keeps no optimizer
// state; keeping it, with the seeds following from the step, makes --resume-from-step continue
// the run exactly.
//
// Data-parallel over a communicator's W ranks (nanochat's torchrun run): examples_per_step is the
// world's and must divide by W; rank r cycles over train examples r, r+W, ... (examples_per_step
// / W of them per step), samples and scores its own, and normalises its passes' loss by its own
// examples, so that the sharded optimizers' average of the ranks' gradients is one process's
// gradient over all of the step's examples; the seeds follow from (step, example, batch) alone,
// so the rollouts are the ones one process would draw. pass@k's problems are strided over the
// ranks and their outcomes shared (eval/pass_at_k.hpp); the logged reward and sequence length
// are the world's. Only rank 0 logs and writes metrics.jsonl, the model and meta; every rank its
// optimizer shard.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "nanochat/backend/cpu.hpp"  // the trainer runs on the CPU backend
#include "nanochat/dist/single_process_communicator.hpp"
#include "nanochat/engine/engine.hpp"
#include "nanochat/eval/pass_at_k.hpp"
#include "nanochat/model/gpt.hpp"
#include "nanochat/model/gpt_decoder.hpp"
#include "nanochat/model/weights_file.hpp"
#include "nanochat/optim/nanochat_optimizers.hpp"
#include "nanochat/tasks/task.hpp"
#include "nanochat/train/checkpoint.hpp"
#include "nanochat/train/finite_guard.hpp"
#include "nanochat/train/metrics_file.hpp"
#include "nanochat/train/progress_bar.hpp"
#include "nanochat/train/rl_batch.hpp"
#include "nanochat/train/rl_seed.hpp"

namespace nanochat {

// nanochat's chat_rl knobs (examples_per_step is the world's: examples_per_step / W per rank).
struct RlOptions {
  std::int64_t device_batch_size = 8, examples_per_step = 16, num_samples = 16, max_new_tokens = 256;
  float temperature = 1.0f;
  int top_k = 50;
  LearningRates lr;
  double init_lr_frac = 0.05;
  std::int64_t num_epochs = 1, save_every = 60, eval_every = 60, eval_examples = 400;
  std::int64_t resume_from_step = -1;
  std::filesystem::path checkpoint_dir;  // checkpoints and metrics.jsonl
};

template <Config C>
class RlTrainer {
 public:
  using Backend = cpu::Cpu;
  using Decoder = GptDecoder<C, Backend>;

  // source: the weights a fresh run starts from (a resumed run's come from its checkpoint).
  // sequence_len: the source model's context.
  RlTrainer(Backend& backend, const tokenizer::Tokenizer& tok, tasks::TaskPtr train, tasks::TaskPtr val,
            const SafetensorsFile& source, std::int64_t sequence_len, RlOptions options,
            std::map<std::string, std::string> user_config, std::FILE* log = stdout,
            dist::Communicator& comm = dist::single_process())
      : backend_(&backend), comm_(&comm), tok_(&tok), train_(std::move(train)), val_(std::move(val)),
        o_(std::move(options)), user_config_(std::move(user_config)), log_(comm.rank() == 0 ? log : nullptr),
        sequence_len_(sequence_len), num_steps_(check_options()), examples_per_rank_(o_.examples_per_step / comm.size()),
        width_(rollout_width()), model_(backend, tok.vocab_size(), o_.device_batch_size, width_),
        optimizers_(backend, model_.weights(), model_.grads(), o_.lr, comm),
        decoder_(backend, model_.weights(), o_.device_batch_size, 10 * sequence_len),
        engine_(decoder_, tok),
        ids_(backend, {o_.device_batch_size, width_}),
        targets_(backend, {o_.device_batch_size, width_}),
        token_weights_(backend, {o_.device_batch_size * width_}) {
    check_model_config<C>(source, tok.vocab_size());
    state_.max_seq_len = sequence_len_;
    state_.device_batch_size = o_.device_batch_size;
    state_.total_batch_size = o_.examples_per_step * o_.num_samples;
    if (o_.resume_from_step >= 0) {
      NANOCHAT_CHECK(o_.resume_from_step <= num_steps_, "--resume-from-step ", o_.resume_from_step,
                     " is past the end of this run, step ", num_steps_, ": there is nothing left to train");
      const TrainState saved =
          load_checkpoint(backend, o_.checkpoint_dir, o_.resume_from_step, model_.weights(), optimizers_);
      NANOCHAT_CHECK(saved.device_batch_size == state_.device_batch_size &&
                         saved.total_batch_size == state_.total_batch_size && saved.max_seq_len == sequence_len_,
                     "step ", o_.resume_from_step, " in ", o_.checkpoint_dir.string(), " was trained with ",
                     saved.device_batch_size, " rows per pass and ", saved.total_batch_size,
                     " samples per step (context ", saved.max_seq_len, ") but this run has ", state_.device_batch_size,
                     " and ", state_.total_batch_size, " (context ", sequence_len_, ")");
      state_ = saved;
    } else {
      load_weights(backend, model_.weights(), source);
    }
  }

  std::int64_t num_steps() const { return num_steps_; }
  std::int64_t width() const { return width_; }
  const TrainState& state() const { return state_; }
  Gpt<C, Backend>& model() { return model_; }

  const TrainState& run() {
    // Rank 0 alone owns the shared files; the other ranks write nothing but their optimizer shard.
    std::optional<MetricsFile> metrics;
    if (log_) {
      remove_stale_temp_files(o_.checkpoint_dir);
      metrics.emplace(o_.checkpoint_dir / "metrics.jsonl", state_.step);
    }
    comm_->barrier();  // no rank saves while rank 0 still clears stale temporary files
    if (log_)
      std::fprintf(log_,
                   "model: %s | train: %s (%zu examples) | val: %s | steps: %lld | sequences per step: %lld | "
                   "examples per rank: %lld | rows of %lld tokens\n",
                   C::name().c_str(), train_->name().c_str(), train_->size(), val_->name().c_str(),
                   static_cast<long long>(num_steps_), static_cast<long long>(o_.examples_per_step * o_.num_samples),
                   static_cast<long long>(examples_per_rank_), static_cast<long long>(width_));
    const auto run_start = std::chrono::steady_clock::now();
    const std::int64_t first_step = state_.step;
    for (std::int64_t step = state_.step;; ++step) {
      state_.step = step;
      const bool last = step >= num_steps_;
      if (!last && o_.eval_every > 0 && step % o_.eval_every == 0) evaluate(step, metrics);
      if (step != o_.resume_from_step && (last || (step > 0 && o_.save_every > 0 && step % o_.save_every == 0))) {
        stop_unless_saveable(*backend_, o_.checkpoint_dir, step, model_.weights(), optimizers_);
        save_checkpoint(*backend_, o_.checkpoint_dir, model_.weights(), optimizers_, state_, user_config_);
        if (log_)
          std::fprintf(log_, "saved checkpoint step %lld to %s\n", static_cast<long long>(step),
                       o_.checkpoint_dir.c_str());
      }
      if (last) break;

      const auto t0 = std::chrono::steady_clock::now();
      double reward_sum = 0.0, length_sum = 0.0, loss_sum = 0.0;
      for (std::int64_t e = 0; e < examples_per_rank_; ++e) {
        const std::size_t index = example_index(step * examples_per_rank_ + e);
        rollout(step, index);
        reward_sum += mean(rollout_.rewards);
        for (const auto& s : rollout_.sequences) length_sum += static_cast<double>(s.size());
        loss_sum += train_on_rollout(step, e);
      }
      if (comm_->size() > 1) {  // the logged reward and length are the world's
        double sums[2] = {reward_sum, length_sum};
        comm_->all_reduce(std::span<double>(sums), dist::ReduceOp::sum);
        reward_sum = sums[0];
        length_sum = sums[1];
      }
      const double lrm = 1.0 - static_cast<double>(step) / static_cast<double>(num_steps_);
      optimizers_.reduce_gradients();
      optimizers_.step(static_cast<float>(lrm * o_.init_lr_frac), 0.95f);
      model_.zero_grad();
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      state_.total_training_time += dt;

      const double reward = reward_sum / static_cast<double>(o_.examples_per_step);
      const double length = length_sum / static_cast<double>(o_.examples_per_step * o_.num_samples);
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
      const double done = static_cast<double>(step + 1 - first_step);
      const double fraction = static_cast<double>(step + 1) / static_cast<double>(num_steps_);
      if (!log_) continue;
      std::fprintf(log_, "Step %lld/%lld | Average reward: %g | Average sequence length: %.2f | lrm: %.4f | dt: %.2fs%s\n",
                   static_cast<long long>(step), static_cast<long long>(num_steps_), reward, length, lrm, dt,
                   progress_bar(log_, fraction, elapsed / done * static_cast<double>(num_steps_ - step - 1)).c_str());
      metrics->line() << "{\"step\": " << step << ", \"reward\": " << reward << ", \"sequence_length\": " << length
                     << ", \"loss\": " << loss_sum << ", \"lrm\": " << lrm << ", \"dt\": " << dt << "}\n"
                     << std::flush;
    }
    if (log_) std::fprintf(log_, "total training time: %.2f s\n", state_.total_training_time);
    return state_;
  }

  // pass@k (k = 1..device_batch_size) over the first eval_examples validation problems, with
  // nanochat's eval sampling (temperature 1, top-k 50, the Engine's default seed 42); each rank
  // samples its stride of them and every rank returns the whole result.
  std::vector<double> pass_at_k_eval() {
    const std::size_t n = std::min(static_cast<std::size_t>(o_.eval_examples), val_->size());
    std::vector<std::vector<bool>> outcomes(n);
    const engine::GenerateOptions g{.num_samples = o_.device_batch_size,
                                    .max_tokens = o_.max_new_tokens,
                                    .sampling = {.temperature = 1.0f, .top_k = 50, .seed = 42}};
    for (auto i = static_cast<std::size_t>(comm_->rank()); i < n; i += static_cast<std::size_t>(comm_->size())) {
      const tasks::Example example = val_->example(i);
      const auto prompt = prompt_of(example);
      const auto batch = engine_.generate_batch(prompt, g);
      for (const auto& seq : batch.sequences) outcomes[i].push_back(val_->evaluate(example, completion(seq, prompt.size())));
    }
    eval::share_outcomes(*comm_, outcomes, static_cast<std::size_t>(o_.device_batch_size));
    return eval::pass_at_k(outcomes, static_cast<std::size_t>(o_.device_batch_size));
  }

 private:
  // The run's length; the options' consistency.
  std::int64_t check_options() const {
    NANOCHAT_CHECK(o_.num_samples % o_.device_batch_size == 0, "--num-samples ", o_.num_samples,
                   " must be a multiple of --device-batch-size ", o_.device_batch_size,
                   " (samples are drawn and trained in batches of that many rows)");
    NANOCHAT_CHECK(train_->has_scorer() && val_->has_scorer(), "the tasks ", train_->name(), " and ", val_->name(),
                   " must have a reward (a scorer) for RL");
    NANOCHAT_CHECK(val_->size() > 0, "the validation task ", val_->name(), " is empty");
    NANOCHAT_CHECK(o_.examples_per_step % comm_->size() == 0, "--examples-per-step ", o_.examples_per_step,
                   " does not divide over ", comm_->size(), " ranks (each rank takes as many problems a step)");
    NANOCHAT_CHECK(static_cast<std::size_t>(comm_->size()) <= train_->size(), "the train task ", train_->name(),
                   " has ", train_->size(), " examples, fewer than the ", comm_->size(), " ranks");
    const auto examples = static_cast<std::int64_t>(train_->size());
    const std::int64_t steps = examples / o_.examples_per_step * o_.num_epochs;
    NANOCHAT_CHECK(steps > 0, "the train task ", train_->name(), " has ", examples, " examples, fewer than one step's ",
                   o_.examples_per_step, " (--examples-per-step): no step to train");
    return steps;
  }

  // The k-th train example of this rank: its stride r, r+W, ... of the task, cycled (nanochat's
  // generator over range(rank, len, world)); in one process (k mod size).
  std::size_t example_index(std::int64_t k) const {
    const auto world = static_cast<std::size_t>(comm_->size()), rank = static_cast<std::size_t>(comm_->rank());
    const std::size_t mine = (train_->size() - rank + world - 1) / world;  // examples in this rank's stride
    return rank + world * (static_cast<std::size_t>(k) % mine);
  }

  // The longest prompt of the train task plus max_new_tokens, less one, within the context.
  std::int64_t rollout_width() const {
    std::int64_t longest = 0;
    for (std::size_t i = 0; i < train_->size(); ++i)
      longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(prompt_of(train_->example(i)).size()));
    NANOCHAT_CHECK(longest < sequence_len_, "the longest prompt of ", train_->name(), " has ", longest,
                   " tokens, more than the model's context of ", sequence_len_, " leaves room to answer in");
    return std::min(longest + o_.max_new_tokens, sequence_len_) - 1;
  }

  std::vector<std::int32_t> prompt_of(const tasks::Example& example) const {
    const auto ids = tokenizer::render_for_completion(*tok_, example.conversation);
    return {ids.begin(), ids.end()};
  }

  std::string completion(const std::vector<std::int32_t>& seq, std::size_t prompt_len) const {
    return tok_->decode(std::vector<tokenizer::TokenId>(seq.begin() + static_cast<std::ptrdiff_t>(prompt_len), seq.end()));
  }

  static double mean(const std::vector<float>& v) {
    double sum = 0.0;
    for (const float x : v) sum += x;
    return sum / static_cast<double>(v.size());
  }

  // num_samples completions of train example `index` into rollout_, with their rewards.
  void rollout(std::int64_t step, std::size_t index) {
    const tasks::Example example = train_->example(index);
    const auto prompt = prompt_of(example);
    rollout_.sequences.clear();
    rollout_.masks.clear();
    rollout_.rewards.clear();
    const auto prompt_len = static_cast<std::int64_t>(prompt.size());
    for (std::int64_t s = 0; s < o_.num_samples / o_.device_batch_size; ++s) {
      const engine::GenerateOptions g{
          .num_samples = o_.device_batch_size,
          .max_tokens = std::min(o_.max_new_tokens, width_ + 1 - prompt_len),
          .sampling = {.temperature = o_.temperature,
                       .top_k = o_.top_k,
                       .seed = rollout_seed(step, static_cast<std::int64_t>(index), s)}};
      auto batch = engine_.generate_batch(prompt, g);
      for (std::size_t r = 0; r < batch.sequences.size(); ++r) {
        rollout_.rewards.push_back(static_cast<float>(train_->reward(example, completion(batch.sequences[r], prompt.size()))));
        rollout_.sequences.push_back(std::move(batch.sequences[r]));
        rollout_.masks.push_back(std::move(batch.masks[r]));
      }
    }
  }

  // Accumulates the policy gradient of rollout_ (every pass of device_batch_size rows); returns
  // the sum of the passes' losses.
  double train_on_rollout(std::int64_t step, std::int64_t example_step) {
    build_rl_batch(rollout_, engine_.tool_tokens().assistant_end, width_, batch_);
    const std::int64_t rows = o_.device_batch_size, passes = batch_.rows / rows;
    const auto cells = static_cast<std::size_t>(rows * width_);
    const std::span<float> weights(token_weights_.data(), cells);
    double total = 0.0;
    for (std::int64_t p = 0; p < passes; ++p) {
      const std::size_t offset = static_cast<std::size_t>(p) * cells;
      std::copy_n(batch_.inputs.data() + offset, cells, ids_.data());
      std::copy_n(batch_.targets.data() + offset, cells, targets_.data());
      model_.forward_loss(ids_.view(), targets_.view(), LossReduction::sum);
      pass_token_weights(batch_, p * rows, rows, passes, examples_per_rank_, weights);
      const double loss = policy_gradient_loss(
          std::span<const float>(model_.activations().losses.data(), cells), weights);
      stop_unless_finite(o_.checkpoint_dir, step, "the policy-gradient loss", loss);
      model_.backward(ids_.view(), targets_.view(), TensorView<const float, Backend>(token_weights_.view()));
      double reward = 0.0;
      for (std::int64_t r = 0; r < rows; ++r) reward += rollout_.rewards[static_cast<std::size_t>(p * rows + r)];
      if (log_)
        std::fprintf(log_, "Step %lld/%lld | Example step %lld | Pass %lld | loss: %.6f | Average reward: %g\n",
                     static_cast<long long>(step), static_cast<long long>(num_steps_),
                     static_cast<long long>(example_step), static_cast<long long>(p), loss,
                     reward / static_cast<double>(rows));
      total += loss;
    }
    return total;
  }

  void evaluate(std::int64_t step, std::optional<MetricsFile>& metrics) {
    const auto pass = pass_at_k_eval();
    if (!log_) return;
    std::string line = "Step " + std::to_string(step) + " |";
    auto& out = metrics->line();
    out << "{\"step\": " << step;
    char buf[64];
    for (std::size_t k = 0; k < pass.size(); ++k) {
      std::snprintf(buf, sizeof buf, "%s Pass@%zu: %.4f", k ? "," : "", k + 1, pass[k]);
      line += buf;
      out << ", \"pass@" << k + 1 << "\": " << pass[k];
    }
    out << "}\n" << std::flush;
    std::fprintf(log_, "%s\n", line.c_str());
  }

  Backend* backend_;
  dist::Communicator* comm_;
  const tokenizer::Tokenizer* tok_;
  tasks::TaskPtr train_, val_;
  RlOptions o_;
  std::map<std::string, std::string> user_config_;
  std::FILE* log_;
  std::int64_t sequence_len_, num_steps_, examples_per_rank_, width_;
  Gpt<C, Backend> model_;
  NanochatOptimizers<C, Backend> optimizers_;
  Decoder decoder_;
  engine::Engine<Decoder> engine_;
  Tensor<std::int32_t, Backend> ids_, targets_;
  Tensor<float, Backend> token_weights_;  // a pass's per-token loss weights
  Rollout rollout_;
  RlBatch batch_;
  TrainState state_;
};

}  // namespace nanochat
