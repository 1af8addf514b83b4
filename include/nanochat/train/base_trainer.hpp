#pragma once
// nanochat's base_train loop (spec §5.1), in one process or data-parallel over a communicator's
// ranks (dist/): horizon and gradient accumulation from the token budget, periodic validation bits per byte, greedy samples and checkpoints, the
// training step (accumulate, clip, schedule, AdamW + Muon), a log line per step and a JSONL file
// of metrics. Resuming from a checkpoint continues the run exactly: same batches, same updates;
// what would make it inexact (another batch geometry, a step past the horizon) is refused. A loss
// or gradient norm that stops being finite stops the run before it updates or saves anything.
//
// With W ranks (nanochat's torchrun run, here mpirun's): each rank reads its stride of the data
// (rank r of W, spec §4.4), runs total_batch_size / (W B T) micro-batches, and the optimizers
// average the gradients and shard their state (optim/). Validation bits per byte sum the nats
// and bytes of every rank's batches; only rank 0 logs, samples and writes metrics, the model
// and meta, every rank its optimizer shard and loader position.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nanochat/core/limits.hpp"
#include "nanochat/data/token_loader.hpp"
#include "nanochat/model/gpt.hpp"
#include "nanochat/model/naive_generate.hpp"
#include "nanochat/optim/nanochat_optimizers.hpp"
#include "nanochat/train/bits_per_byte.hpp"
#include "nanochat/train/checkpoint.hpp"
#include "nanochat/train/finite_guard.hpp"
#include "nanochat/train/metrics_file.hpp"
#include "nanochat/train/progress_bar.hpp"

namespace nanochat {

struct BaseTrainOptions {
  std::int64_t max_seq_len = 2048;
  std::int64_t device_batch_size = 32;
  std::int64_t total_batch_size = 524288;
  std::int64_t num_iterations = -1;         // explicit horizon; else target_flops; else the ratio
  double target_flops = -1.0;
  double target_param_data_ratio = 20.0;    // tokens per parameter (20 = Chinchilla)
  LearningRates lr;
  float grad_clip = 1.0f;                   // 0 disables
  double warmup_ratio = 0.0, warmdown_ratio = 0.2, final_lr_frac = 0.0;
  std::int64_t eval_every = 250, eval_tokens = 20 * 524288;
  std::int64_t sample_every = 2000, save_every = -1, resume_from_step = -1;
  double peak_flops = 0.0;                  // for MFU; 0 leaves MFU out
  std::uint64_t seed = 42;
  std::size_t loader_threads = 2;
  std::filesystem::path checkpoint_dir;     // checkpoints and metrics.jsonl
};

// nanochat's precedence: num_iterations, else target_flops, else target_param_data_ratio.
struct Horizon {
  std::int64_t iterations, grad_accum, tokens_per_fwdbwd;
};

// tokens_per_fwdbwd counts every rank's rows (nanochat's world_tokens_per_fwdbwd).
template <Config C>
Horizon plan_horizon(const BaseTrainOptions& o, std::int64_t vocab_size, int world = 1) {
  NANOCHAT_CHECK(o.device_batch_size > 0 && o.max_seq_len > 0 && o.total_batch_size > 0,
                 "--device-batch-size, --max-seq-len and --total-batch-size must be positive");
  const std::int64_t per_fwdbwd = checked_mul(checked_mul(o.device_batch_size, o.max_seq_len,
                                                          "--device-batch-size x --max-seq-len"),
                                              std::int64_t{world}, "--device-batch-size x --max-seq-len x ranks");
  NANOCHAT_CHECK(o.total_batch_size % per_fwdbwd == 0, "--total-batch-size ", o.total_batch_size,
                 " is not a multiple of --device-batch-size x --max-seq-len", world > 1 ? " x ranks" : "", " = ",
                 o.device_batch_size, " x ", o.max_seq_len, world > 1 ? cat(" x ", world) : std::string(), " = ",
                 per_fwdbwd, " tokens");
  // Computed in double and bounded before the cast: a huge budget must be an error, not UB.
  double steps;
  const char* from;
  if (o.num_iterations > 0) {
    steps = static_cast<double>(o.num_iterations);
    from = "--num-iterations";
  } else if (o.target_flops > 0) {
    steps = std::round(o.target_flops / (C::flops_per_token(vocab_size, o.max_seq_len) *
                                         static_cast<double>(o.total_batch_size)));
    from = "--target-flops";
  } else {
    NANOCHAT_CHECK(o.target_param_data_ratio > 0, "set --num-iterations, --target-flops or a positive "
                                                  "--target-param-data-ratio");
    const double tokens = o.target_param_data_ratio * static_cast<double>(C::total_params(vocab_size));
    steps = std::floor(tokens / static_cast<double>(o.total_batch_size));
    from = "--target-param-data-ratio";
  }
  NANOCHAT_CHECK(steps >= 1 && steps <= static_cast<double>(max_count), from, ": the horizon comes out at ", steps,
                 " iterations; it must be 1 to ", max_count);
  const auto iterations = static_cast<std::int64_t>(steps);
  return {iterations, o.total_batch_size / per_fwdbwd, per_fwdbwd};
}

// The prompts nanochat samples during base training (each BOS-prefixed).
inline const std::vector<std::string>& sample_prompts() {
  static const std::vector<std::string> prompts{
      "The capital of France is", "The chemical symbol of gold is",
      "If yesterday was Friday, then tomorrow will be", "The opposite of hot is",
      "The planets of the solar system are:", "My favorite color is", "If 5*x + 3 = 13, then x is"};
  return prompts;
}

template <Config C, Backend B>
class BaseTrainer {
 public:
  BaseTrainer(B& backend, const tokenizer::Tokenizer& tok, std::vector<std::filesystem::path> train_shards,
              std::vector<std::filesystem::path> val_shards, BaseTrainOptions options,
              std::map<std::string, std::string> user_config, std::FILE* log = stdout,
              dist::Communicator& comm = dist::single_process())
      : backend_(&backend), comm_(&comm), tok_(&tok), train_shards_(std::move(train_shards)),
        val_shards_(std::move(val_shards)), o_(std::move(options)), user_config_(std::move(user_config)),
        log_(comm.rank() == 0 ? log : nullptr), horizon_(plan_horizon<C>(o_, tok.vocab_size(), comm.size())),
        model_(backend, tok.vocab_size(), o_.device_batch_size, o_.max_seq_len),
        optimizers_(backend, model_.weights(), model_.grads(), o_.lr, comm),
        token_bytes_(tok.token_bytes()) {
    model_.init(o_.seed);
    if (o_.resume_from_step >= 0) {
      NANOCHAT_CHECK(o_.resume_from_step <= horizon_.iterations, "--resume-from-step ", o_.resume_from_step,
                     " is past the end of this run's ", horizon_.iterations, " iterations (from --num-iterations, "
                     "--target-flops or --target-param-data-ratio): there is nothing left to train");
      state_ = load_checkpoint(backend, o_.checkpoint_dir, o_.resume_from_step, model_.weights(), optimizers_);
    }
    set_batch_geometry(state_, o_.resume_from_step, o_.checkpoint_dir,
                       {o_.max_seq_len, o_.device_batch_size, o_.total_batch_size}, "--total-batch-size");
  }

  const Horizon& horizon() const { return horizon_; }
  Gpt<C, B>& model() { return model_; }
  const TrainState& state() const { return state_; }

  // Runs to the end of the horizon; returns the final state (the last checkpoint's, too).
  const TrainState& run() {
    // Rank 0 alone owns the shared files; the other ranks write nothing but their optimizer shard.
    std::optional<MetricsFile> metrics_file;
    if (log_) {
      remove_stale_temp_files(o_.checkpoint_dir);
      metrics_file.emplace(o_.checkpoint_dir / "metrics.jsonl", state_.step);
    }
    comm_->barrier();  // no rank saves while rank 0 still clears stale temporary files
    auto metrics = [&](const auto&... parts) {
      if (metrics_file) ((metrics_file->line() << ... << parts) << std::flush);
    };
    data::LoaderOptions lo{static_cast<std::size_t>(o_.device_batch_size), static_cast<std::size_t>(o_.max_seq_len),
                           rank(), world(), o_.loader_threads, 4, {}};
    data::TokenLoader train(*tok_, train_shards_, lo,
                            o_.resume_from_step >= 0 ? std::optional(state_.loader) : std::nullopt);
    const std::int64_t n = horizon_.iterations;
    const auto& a = model_.activations();
    Tensor<std::int32_t, B> ids(*backend_, {a.batch(), a.seq()}), targets(*backend_, {a.batch(), a.seq()});
    std::vector<std::int32_t> inputs_host, targets_host;
    const double flops_per_step = C::flops_per_token(tok_->vocab_size(), o_.max_seq_len) *
                                  static_cast<double>(o_.total_batch_size);
    print_header(n);
    const std::string advice = cat(lower_the_learning_rates, o_.grad_clip > 0 ? " or --grad-clip" : " or enable --grad-clip");

    for (std::int64_t step = state_.step;; ++step) {
      const bool last = step >= n;  // >=, not ==: no start can skip past the end
      if (last || (o_.eval_every > 0 && step % o_.eval_every == 0)) {
        state_.val_bpb = validation_bpb();
        stop_unless_finite(o_.checkpoint_dir, step, "the validation bits per byte", state_.val_bpb, advice);
        state_.min_val_bpb = step == 0 || state_.min_val_bpb == 0.0 ? state_.val_bpb
                                                                    : std::min(state_.min_val_bpb, state_.val_bpb);
        print("step %05lld | validation bpb: %.4f\n", static_cast<long long>(step), state_.val_bpb);
        metrics("{\"step\": ", step, ", \"val_bpb\": ", state_.val_bpb, "}\n");
      }
      if (log_ && o_.sample_every > 0 && (last || (step > 0 && step % o_.sample_every == 0))) print_samples();
      state_.step = step;
      state_.loader = train.state();
      // Never the step resumed from: its checkpoint is there, and a save would first remove it.
      if (step != o_.resume_from_step && (last || (step > 0 && o_.save_every > 0 && step % o_.save_every == 0))) {
        stop_unless_saveable(*backend_, o_.checkpoint_dir, step, model_.weights(), optimizers_, advice);
        save_checkpoint(*backend_, o_.checkpoint_dir, model_.weights(), optimizers_, state_, user_config_);
      }
      if (last) break;

      const auto t0 = std::chrono::steady_clock::now();
      float loss = 0.0f;
      for (std::int64_t micro = 0; micro < horizon_.grad_accum; ++micro) {
        train.next(inputs_host, targets_host);
        copy_from_host(*backend_, ids.view(), std::span<const std::int32_t>(inputs_host));
        copy_from_host(*backend_, targets.view(), std::span<const std::int32_t>(targets_host));
        loss = model_.forward_loss(ids.view(), targets.view());
        stop_unless_finite(o_.checkpoint_dir, step, "the training loss", loss, advice);
        model_.backward(ids.view(), targets.view(), 1.0f / static_cast<float>(horizon_.grad_accum));
      }
      // The norm (of the averaged gradient) is computed and logged with clipping off too.
      optimizers_.reduce_gradients();
      const float norm = optimizers_.averaged_grad_norm();
      stop_unless_finite(o_.checkpoint_dir, step, "the gradient norm", norm, advice);
      if (o_.grad_clip > 0) optimizers_.clip(norm, o_.grad_clip);
      const LrSchedule schedule{n, o_.warmup_ratio, o_.warmdown_ratio, o_.final_lr_frac};
      const double lrm = schedule.multiplier(step);
      optimizers_.step(static_cast<float>(lrm), static_cast<float>(muon_momentum_at(step)));
      model_.zero_grad();
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

      // EMA of the last micro-batch loss, debiased as nanochat does.
      state_.smooth_train_loss = 0.9 * state_.smooth_train_loss + 0.1 * loss;
      const double debiased = state_.smooth_train_loss / (1.0 - std::pow(0.9, static_cast<double>(step + 1)));
      if (step > 10) state_.total_training_time += dt;
      const double tok_per_sec = static_cast<double>(o_.total_batch_size) / dt;
      const double mfu = o_.peak_flops > 0 ? 100.0 * flops_per_step / dt / o_.peak_flops : 0.0;
      print_step(step, n, debiased, norm, lrm, dt, tok_per_sec, mfu);
      metrics("{\"step\": ", step, ", \"loss\": ", debiased, ", \"grad_norm\": ", norm, ", \"lrm\": ", lrm,
              ", \"dt\": ", dt, ", \"tok_per_sec\": ", tok_per_sec, ", \"mfu\": ", mfu,
              ", \"total_training_flops\": ", flops_per_step * static_cast<double>(step + 1), "}\n");
    }
    print("total training time: %.2f s, minimum validation bpb: %.4f\n", state_.total_training_time,
          state_.min_val_bpb);
    return state_;
  }

  // Bits per byte over eval_tokens of the validation shards, read from their start; each rank
  // reads its stride, and the nats and bytes are summed over the ranks.
  double validation_bpb() {
    data::LoaderOptions lo{static_cast<std::size_t>(o_.device_batch_size), static_cast<std::size_t>(o_.max_seq_len),
                           rank(), world(), 1, 2, {}};
    data::TokenLoader val(*tok_, val_shards_, lo);
    const std::int64_t steps = std::max<std::int64_t>(1, o_.eval_tokens / horizon_.tokens_per_fwdbwd);
    return sum_over_ranks(*comm_, evaluate_bits_per_byte(*backend_, model_, [&](auto& x, auto& y) { val.next(x, y); },
                                                         steps, token_bytes_))
        .bits_per_byte();
  }

 private:
  std::size_t rank() const { return static_cast<std::size_t>(comm_->rank()); }
  std::size_t world() const { return static_cast<std::size_t>(comm_->size()); }

  // A log line; on rank 0 only (the others have no log).
  template <class... Args>
  void print(const char* format, Args... args) {
    if (!log_) return;
    std::fprintf(log_, format, args...);
    std::fflush(log_);
  }

  void print_header(std::int64_t n) {
    if (!log_) return;
    const double params = static_cast<double>(C::total_params(tok_->vocab_size()));
    const double tokens = static_cast<double>(n) * static_cast<double>(o_.total_batch_size);
    std::fprintf(log_,
                 "model: %s, vocab %lld: %.2fM parameters, %.4e FLOPs per token\n"
                 "iterations: %lld x %lld tokens (%lld x %lld x %lld accumulation x %zu rank%s) = %.3gM tokens, "
                 "tokens:params %.2f, %.3e FLOPs\n",
                 C::name().c_str(), static_cast<long long>(tok_->vocab_size()), params / 1e6,
                 C::flops_per_token(tok_->vocab_size(), o_.max_seq_len), static_cast<long long>(n),
                 static_cast<long long>(o_.total_batch_size), static_cast<long long>(o_.device_batch_size),
                 static_cast<long long>(o_.max_seq_len), static_cast<long long>(horizon_.grad_accum), world(),
                 world() == 1 ? "" : "s", tokens / 1e6, tokens / params, tokens * C::flops_per_token(tok_->vocab_size(), o_.max_seq_len));
    std::fflush(log_);
  }

  void print_step(std::int64_t step, std::int64_t n, double loss, float norm, double lrm, double dt,
                  double tok_per_sec, double mfu) {
    if (!log_) return;
    const std::string tail = progress_bar(log_, static_cast<double>(step + 1) / static_cast<double>(n),
                                          dt * static_cast<double>(n - step - 1));
    // Without a stated peak there is no MFU to show (0.00 would read as a measurement).
    char mfu_column[32] = "";
    if (o_.peak_flops > 0) std::snprintf(mfu_column, sizeof mfu_column, " | mfu: %.2f", mfu);
    std::fprintf(log_,
                 "step %05lld/%05lld (%.2f%%) | loss: %.6f | grad norm: %.4f | lrm: %.2f | dt: %.2fms | "
                 "tok/sec: %.0f%s | total time: %.2fm%s\n",
                 static_cast<long long>(step), static_cast<long long>(n),
                 100.0 * static_cast<double>(step) / static_cast<double>(n), loss, static_cast<double>(norm), lrm,
                 dt * 1000.0, tok_per_sec, mfu_column, state_.total_training_time / 60.0, tail.c_str());
    std::fflush(log_);
  }

  void print_samples() {
    constexpr int new_tokens = 16;
    std::vector<std::vector<std::int32_t>> prompts;
    std::size_t longest = 0;
    for (const std::string& prompt : sample_prompts()) {
      std::vector<std::int32_t>& tokens = prompts.emplace_back(1, static_cast<std::int32_t>(tok_->bos_id()));
      for (auto id : tok_->encode(prompt)) tokens.push_back(static_cast<std::int32_t>(id));
      longest = std::max(longest, tokens.size());
    }
    // A batch-1 copy of the model for nanochat's naive generation, as long as the longest prompt
    // and its continuation need (a short --max-seq-len must not end the run here).
    Gpt<C, B> sampler(*backend_, tok_->vocab_size(), 1, static_cast<std::int64_t>(longest) + new_tokens);
    backend_->copy_on_device(sampler.weights().flat().data(), model_.weights().flat().data(),
                             model_.weights().flat().bytes());
    for (const auto& tokens : prompts) {
      const auto out = greedy_continue(*backend_, sampler, tokens, new_tokens);
      std::vector<tokenizer::TokenId> ids(out.begin() + 1, out.end());
      std::fprintf(log_, "sample: %s\n", tok_->decode(ids).c_str());
      std::fflush(log_);
    }
  }

  B* backend_;
  dist::Communicator* comm_;
  const tokenizer::Tokenizer* tok_;
  std::vector<std::filesystem::path> train_shards_, val_shards_;
  BaseTrainOptions o_;
  std::map<std::string, std::string> user_config_;
  std::FILE* log_;
  Horizon horizon_;
  Gpt<C, B> model_;
  NanochatOptimizers<C, B> optimizers_;
  std::vector<std::int32_t> token_bytes_;
  TrainState state_;
};

}  // namespace nanochat
