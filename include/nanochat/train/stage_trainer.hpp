#pragma once
// The loop of nanochat's chat stages, mid_train and chat_sft (spec §5.4, §5.5), written once over
// a Stage policy (train/mid_stage.hpp, train/sft_stage.hpp) that says how batches are made, how
// long the run is, the learning-rate and momentum schedules, the validation metric and the log
// line. Starting from a source checkpoint's weights (fresh optimizer state, as nanochat), each
// step takes its micro-batches from the Stage's loader, accumulates their gradients (no
// clipping), sets the schedule and updates AdamW + Muon. Checkpoints, metrics.jsonl, resuming
// and the non-finite stop are base_train's (train/checkpoint.hpp, metrics_file.hpp,
// finite_guard.hpp): resuming continues the run exactly, same batches and same updates.
//
// Data-parallel over a communicator's W ranks (dist/, nanochat's torchrun run): rank r's loader
// reads conversations r, r+W, ...; gradient accumulation is the step's total over B x W; the
// sharded optimizers average the gradients; the validation metric is summed over the ranks
// (mid_train's nats and bytes, chat_sft's mean loss averaged); mid_train's end of the epoch on any
// rank ends the run on every rank (nanochat's all-reduced MAX of last_step), and its schedule
// follows rank 0's progress, so that every rank updates with the same learning rate. Only rank 0
// logs and writes metrics.jsonl, the model and meta; every rank its optimizer shard and loader
// position (train/checkpoint.hpp), and a resume on another world size is refused.
//
// A step's micro-batches are made before it runs, so that a step that would read into the second
// epoch (mid_train: one epoch ends the run) is not taken, and the checkpoint of step S holds
// the loader's position before step S's batches.
//
// A Stage provides:
//   using Options (derived from StageOptions); using Loader (next(inputs, targets) -> epoch
//   ended, state()); static constexpr name, total_flag, validation_metric (which meta field
//   holds its validation number); grad_accum(o, world), total(o) (the
//   step's batch in its unit), final_step(o, train size) (optional: the step at which the run
//   ends), progress(step, final, loader) (0..1 after step), lr_multiplier(step, final,
//   progress), muon_momentum(step), validate(..., comm) (every rank's value combined), the log
//   lines (called on rank 0 only); and optionally
//   metrics_due(step, last, o) with evaluate_metrics(...): evaluations on their own schedule
//   (chat_sft's multiple-choice accuracies; run on every rank, logging where the log is not
//   null), run after the validation and before the save.
//   A loader's batches may be narrower than T (SFT's): the model runs each at its width.

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/limits.hpp"
#include "nanochat/core/safetensors.hpp"
#include "nanochat/core/upload_rows.hpp"
#include "nanochat/dist/single_process_communicator.hpp"
#include "nanochat/model/gpt.hpp"
#include "nanochat/model/weights_file.hpp"
#include "nanochat/optim/nanochat_optimizers.hpp"
#include "nanochat/tasks/task.hpp"
#include "nanochat/train/checkpoint.hpp"
#include "nanochat/train/finite_guard.hpp"
#include "nanochat/train/metrics_file.hpp"
#include "nanochat/train/mid_loader.hpp"
#include "nanochat/train/progress_bar.hpp"

namespace nanochat {

// The chat stages have no gradient clipping (nanochat's) but --init-lr-frac.
inline constexpr std::string_view chat_stage_advice =
    "lower --init-lr-frac or the learning rates (--matrix-lr, --embedding-lr, --unembedding-lr)";

// What every chat stage's loop takes (nanochat's knobs of the same names).
struct StageOptions {
  std::int64_t max_seq_len = 2048, device_batch_size = 32;
  std::int64_t num_iterations = -1;  // -1: the stage's own horizon
  LearningRates lr;                  // nanochat's 0.004 / 0.2 / 0.02, weight decay 0
  double init_lr_frac = 1.0;         // every group's lr is this fraction of the base lr
  std::int64_t eval_every = 150;     // -1: only at the end
  std::int64_t save_every = -1, resume_from_step = -1;
  std::filesystem::path checkpoint_dir;
};

// One step's measurements, for the Stage's log line and metrics.
struct StageStep {
  std::int64_t step;
  std::optional<std::int64_t> final_step;
  double progress, loss, smooth_loss, lrm, dt, total_time;
  std::int64_t tokens, supervised;  // positions the model ran (padding included); targets not ignored
};

template <Config C, Backend B, class Stage>
class StageTrainer {
 public:
  using Options = typename Stage::Options;
  using Loader = typename Stage::Loader;

  // source: the weights a fresh run starts from (ignored when resuming, except that its model
  // must be this Config's).
  StageTrainer(B& backend, const tokenizer::Tokenizer& tok, tasks::TaskPtr train, tasks::TaskPtr val,
               const SafetensorsFile& source, Options options, std::map<std::string, std::string> user_config,
               std::FILE* log = stdout, dist::Communicator& comm = dist::single_process())
      : backend_(&backend), comm_(&comm), tok_(&tok), train_(std::move(train)), val_(std::move(val)),
        o_(std::move(options)), user_config_(std::move(user_config)), log_(comm.rank() == 0 ? log : nullptr),
        grad_accum_(Stage::grad_accum(o_, comm.size())), final_step_(Stage::final_step(o_, train_->size())),
        model_(backend, tok.vocab_size(), o_.device_batch_size, o_.max_seq_len),
        optimizers_(backend, model_.weights(), model_.grads(), o_.lr, comm), token_bytes_(tok.token_bytes()) {
    check_model_config<C>(source, tok.vocab_size());
    if (o_.resume_from_step >= 0) {
      NANOCHAT_CHECK(!final_step_ || o_.resume_from_step <= *final_step_, "--resume-from-step ",
                     o_.resume_from_step, " is past the end of this run, step ", final_step_.value_or(0),
                     ": there is nothing left to train");
      state_ = load_checkpoint(backend, o_.checkpoint_dir, o_.resume_from_step, model_.weights(), optimizers_);
    } else {
      load_weights(backend, model_.weights(), source);
    }
    set_batch_geometry(state_, o_.resume_from_step, o_.checkpoint_dir,
                       {o_.max_seq_len, o_.device_batch_size, Stage::total(o_)}, Stage::total_flag);
    state_.validation = Stage::validation_metric;
  }

  Gpt<C, B>& model() { return model_; }
  const TrainState& state() const { return state_; }
  std::int64_t grad_accum() const { return grad_accum_; }
  const std::optional<std::int64_t>& final_step() const { return final_step_; }

  // Runs to the end (final_step, or mid_train's epoch); returns the final state (the last
  // checkpoint's, too).
  const TrainState& run() {
    // Rank 0 alone owns the shared files; the other ranks write nothing but their optimizer shard.
    std::optional<MetricsFile> metrics_file;
    if (log_) {
      remove_stale_temp_files(o_.checkpoint_dir);
      metrics_file.emplace(o_.checkpoint_dir / "metrics.jsonl", state_.step);
    }
    comm_->barrier();  // no rank saves while rank 0 still clears stale temporary files
    Loader train(*tok_, train_, loader_options(),
                 o_.resume_from_step >= 0 ? std::optional(state_.loader) : std::nullopt);
    const auto& a = model_.activations();
    Tensor<std::int32_t, B> ids(*backend_, {a.batch(), a.seq()}), targets(*backend_, {a.batch(), a.seq()});
    // A batch is at most B x T (SFT's may be narrower); reserved once, so no step allocates.
    std::vector<std::vector<std::int32_t>> inputs_host(static_cast<std::size_t>(grad_accum_)),
        targets_host(static_cast<std::size_t>(grad_accum_));
    for (std::size_t m = 0; m < inputs_host.size(); ++m) {
      inputs_host[m].reserve(static_cast<std::size_t>(a.batch() * a.seq()));
      targets_host[m].reserve(static_cast<std::size_t>(a.batch() * a.seq()));
    }
    if (log_) Stage::print_header(log_, C::name(), o_, grad_accum_, final_step_, train_->size());
    const auto run_start = std::chrono::steady_clock::now();
    const std::int64_t first_step = state_.step;

    for (std::int64_t step = state_.step;; ++step) {
      const data::LoaderState before = train.state();
      bool last = final_step_ && step >= *final_step_;  // >=: no start can skip past the end
      for (std::size_t m = 0; !last && m < inputs_host.size(); ++m) {
        last = train.next(inputs_host[m], targets_host[m]);
      }
      // One rank's epoch ending ends the run on all (nanochat all-reduces last_step with MAX).
      if (world() > 1) last = dist::sum_over_ranks(*comm_, last ? 1.0 : 0.0) > 0.0;
      if (last || (o_.eval_every > 0 && step % o_.eval_every == 0)) validate(step, metrics_file);
      if constexpr (requires { Stage::metrics_due(step, last, o_); }) {
        if (Stage::metrics_due(step, last, o_)) {
          Stage::evaluate_metrics(*backend_, model_, *tok_, o_, step, state_, log_, metrics_line(metrics_file), *comm_);
          metrics_line(metrics_file) << std::flush;
        }
      }
      state_.step = step;
      state_.loader = before;
      // Never the step resumed from: its checkpoint is there, and a save would first remove it.
      if (step != o_.resume_from_step && (last || (step > 0 && o_.save_every > 0 && step % o_.save_every == 0))) {
        stop_unless_saveable(*backend_, o_.checkpoint_dir, step, model_.weights(), optimizers_, chat_stage_advice);
        save_checkpoint(*backend_, o_.checkpoint_dir, model_.weights(), optimizers_, state_, user_config_);
      }
      if (last) break;

      const auto t0 = std::chrono::steady_clock::now();
      float loss = 0.0f;
      std::int64_t supervised = 0, tokens = 0;
      for (std::size_t m = 0; m < inputs_host.size(); ++m) {
        const auto x = upload_rows(*backend_, ids, std::span<const std::int32_t>(inputs_host[m]), a.batch());
        const auto y = upload_rows(*backend_, targets, std::span<const std::int32_t>(targets_host[m]), a.batch());
        loss = model_.forward_loss(x, y);
        stop_unless_finite(o_.checkpoint_dir, step, "the training loss", loss, chat_stage_advice);
        model_.backward(x, y, 1.0f / static_cast<float>(grad_accum_));
        for (const std::int32_t t : targets_host[m]) supervised += t != ignore_index;
        tokens += x.numel();
      }
      if (world() > 1) {  // the logged counts are the world's
        double counts[2] = {static_cast<double>(supervised), static_cast<double>(tokens)};
        comm_->all_reduce(std::span<double>(counts), dist::ReduceOp::sum);
        supervised = static_cast<std::int64_t>(counts[0]);
        tokens = static_cast<std::int64_t>(counts[1]);
      }
      // Rank 0's progress for every rank (mid_train's comes from each rank's own cursor): the
      // ranks must update their shards with one learning rate. Adding zeros to it is exact.
      double progress = Stage::progress(step, final_step_, train);
      if (world() > 1) progress = dist::sum_over_ranks(*comm_, comm_->rank() == 0 ? progress : 0.0);
      const double lrm = Stage::lr_multiplier(step, final_step_, progress);
      optimizers_.reduce_gradients();
      optimizers_.step(static_cast<float>(lrm * o_.init_lr_frac), static_cast<float>(Stage::muon_momentum(step)));
      model_.zero_grad();
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

      // EMA of the last micro-batch loss, debiased by the number of updates it has seen.
      state_.smooth_train_loss = 0.9 * state_.smooth_train_loss + 0.1 * loss;
      const double debiased = state_.smooth_train_loss / (1.0 - std::pow(0.9, static_cast<double>(step + 1)));
      if (step > 10) state_.total_training_time += dt;
      const StageStep s{step, final_step_, progress, loss, debiased, lrm, dt, state_.total_training_time, tokens,
                        supervised};
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
      const double done = static_cast<double>(step + 1 - first_step);
      const double steps = static_cast<double>(step + 1);
      const double left = progress > 0 ? elapsed / done * (steps / progress - steps) : 0.0;
      if (log_) {
        Stage::print_step(log_, s, progress_bar(log_, progress, left));
        Stage::write_step(metrics_line(metrics_file), s);
        metrics_line(metrics_file) << std::flush;
      }
    }
    if (log_) Stage::print_end(log_, state_);
    return state_;
  }

 private:
  std::size_t world() const { return static_cast<std::size_t>(comm_->size()); }

  ConversationLoaderOptions loader_options() const {
    return {static_cast<std::size_t>(o_.device_batch_size), static_cast<std::size_t>(o_.max_seq_len),
            static_cast<std::size_t>(comm_->rank()), world(), 2048};
  }

  // Rank 0's metrics.jsonl; elsewhere a stream that drops what it is given (a Stage writes its
  // evaluations' line on every rank).
  static std::ostream& metrics_line(std::optional<MetricsFile>& file) {
    static std::ostream discard(nullptr);
    return file ? file->line() : discard;
  }

  void validate(std::int64_t step, std::optional<MetricsFile>& metrics_file) {
    Loader val(*tok_, val_, loader_options());
    Stage::validate(*backend_, model_, val, o_, token_bytes_, state_, *comm_);
    stop_unless_finite(o_.checkpoint_dir, step, "the validation metric", Stage::validation_value(state_),
                       chat_stage_advice);
    if (!log_) return;
    Stage::print_validation(log_, step, state_);
    Stage::write_validation(metrics_line(metrics_file), step, state_);
    metrics_line(metrics_file) << std::flush;
  }

  B* backend_;
  dist::Communicator* comm_;
  const tokenizer::Tokenizer* tok_;
  tasks::TaskPtr train_, val_;
  Options o_;
  std::map<std::string, std::string> user_config_;
  std::FILE* log_;
  std::int64_t grad_accum_;
  std::optional<std::int64_t> final_step_;
  Gpt<C, B> model_;
  NanochatOptimizers<C, B> optimizers_;
  std::vector<std::int32_t> token_bytes_;
  TrainState state_;
};

}  // namespace nanochat
