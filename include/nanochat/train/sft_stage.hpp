#pragma once
// chat_sft as a Stage of StageTrainer (spec §5.5): batches of B padded conversations from
// SftLoader with assistant-only targets and the loss their mean, gradient accumulation =
// target_examples_per_step / (B x W) on W ranks, num_iterations = floor(rows / target_examples_per_step) x
// num_epochs unless given, the run stopping at step num_iterations - 1 (nanochat's loop breaks
// there, so it makes num_iterations - 1 updates), lrm = 1 - step / num_iterations, Muon momentum
// 0.95, validation loss = the mean of eval_steps batch losses (per rank, averaged over the
// ranks), and nanochat's log line. Every
// eval_metrics_every steps (step > 0) and at the end, the multiple-choice accuracies (MMLU,
// ARC-Easy: eval/categorical_eval.hpp) on the first eval_metrics_max_problems problems, when
// their datasets are there (problems strided over the ranks, the counts summed).

#include <cstdint>
#include <cstdio>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "nanochat/core/limits.hpp"
#include "nanochat/core/upload_rows.hpp"
#include "nanochat/eval/categorical_eval.hpp"
#include "nanochat/train/checkpoint.hpp"
#include "nanochat/train/sft_loader.hpp"
#include "nanochat/train/stage_trainer.hpp"

namespace nanochat {

struct SftOptions : StageOptions {
  SftOptions() {
    device_batch_size = 4;
    init_lr_frac = 0.02;
    eval_every = 100;
  }
  std::int64_t target_examples_per_step = 32;
  std::int64_t num_epochs = 1;
  std::int64_t eval_steps = 100;  // validation batches per evaluation
  std::int64_t eval_metrics_every = 200;  // -1: only at the end
  std::int64_t eval_metrics_max_problems = 1024;  // per task; 0: all
  // The tasks of those accuracies under their meta names (nanochat's mmlu_acc, arc_easy_acc);
  // empty when their datasets are absent.
  std::vector<std::pair<std::string, tasks::TaskPtr>> metric_tasks;
};

struct SftStage {
  using Options = SftOptions;
  using Loader = SftLoader;
  static constexpr const char* name = "chat_sft";
  static constexpr const char* total_flag = "--target-examples-per-step";
  static constexpr ValidationMetric validation_metric = ValidationMetric::loss;

  // Every rank's rows count toward the step's examples (nanochat's examples_per_step / (B x W)).
  static std::int64_t grad_accum(const Options& o, int world) {
    NANOCHAT_CHECK(o.device_batch_size > 0 && o.max_seq_len > 0 && o.target_examples_per_step > 0,
                   "--device-batch-size, --max-seq-len and --target-examples-per-step must be positive");
    const std::int64_t per_pass = checked_mul(o.device_batch_size, std::int64_t{world}, "--device-batch-size x ranks");
    NANOCHAT_CHECK(o.target_examples_per_step % per_pass == 0, "--target-examples-per-step ",
                   o.target_examples_per_step, " is not a multiple of --device-batch-size ", o.device_batch_size,
                   world > 1 ? cat(" x ", world, " ranks") : std::string());
    return o.target_examples_per_step / per_pass;
  }
  static std::int64_t total(const Options& o) { return o.target_examples_per_step; }
  static std::optional<std::int64_t> final_step(const Options& o, std::size_t rows) {
    std::int64_t n = o.num_iterations;
    if (n <= 0) {
      NANOCHAT_CHECK(o.num_epochs > 0, "--num-epochs must be positive when --num-iterations is -1");
      n = checked_mul(static_cast<std::int64_t>(rows) / o.target_examples_per_step, o.num_epochs,
                      "rows / --target-examples-per-step x --num-epochs");
    }
    NANOCHAT_CHECK(n >= 2, "chat_sft: ", n, " iterations make no update (nanochat stops at step num_iterations - 1); "
                   "the mixture has ", rows, " conversations for --target-examples-per-step ",
                   o.target_examples_per_step, ": give --num-iterations 2 or more, or more --num-epochs");
    return n - 1;
  }
  static double progress(std::int64_t step, const std::optional<std::int64_t>& final, const Loader&) {
    return static_cast<double>(step + 1) / static_cast<double>(*final);
  }
  // final is num_iterations - 1.
  static double lr_multiplier(std::int64_t step, const std::optional<std::int64_t>& final, double) {
    return 1.0 - static_cast<double>(step) / static_cast<double>(*final + 1);
  }
  static double muon_momentum(std::int64_t) { return 0.95; }

  template <class Model, class Be>
  static void validate(Be& backend, Model& model, Loader& val, const Options& o, const std::vector<std::int32_t>&,
                       TrainState& state, dist::Communicator& comm) {
    const auto& a = model.activations();
    Tensor<std::int32_t, Be> ids(backend, {a.batch(), a.seq()}), targets(backend, {a.batch(), a.seq()});
    std::vector<std::int32_t> x, y;
    double sum = 0.0;
    const std::int64_t steps = std::max<std::int64_t>(1, o.eval_steps);
    for (std::int64_t s = 0; s < steps; ++s) {
      val.next(x, y);
      sum += model.forward_loss(upload_rows(backend, ids, std::span<const std::int32_t>(x), a.batch()),
                                upload_rows(backend, targets, std::span<const std::int32_t>(y), a.batch()));
    }
    state.val_loss = dist::sum_over_ranks(comm, sum / static_cast<double>(steps)) / static_cast<double>(comm.size());
  }
  static double validation_value(const TrainState& s) { return s.val_loss; }

  static bool metrics_due(std::int64_t step, bool last, const Options& o) {
    return !o.metric_tasks.empty() && (last || (step > 0 && o.eval_metrics_every > 0 && step % o.eval_metrics_every == 0));
  }
  // The accuracies into state.accuracies, and nanochat's line "Step S | mmlu_acc: .., arc_easy_acc: ..".
  template <Config C, Backend Be>
  static void evaluate_metrics(Be& backend, Gpt<C, Be>& model, const tokenizer::Tokenizer& tok, const Options& o,
                               std::int64_t step, TrainState& state, std::FILE* log, std::ostream& out,
                               dist::Communicator& comm) {
    std::string line, cropped;
    out << "{\"step\": " << step;
    for (const auto& [metric, task] : o.metric_tasks) {
      const eval::CategoricalAccuracy r =
          eval::evaluate_categorical(backend, model, tok, *task, static_cast<std::size_t>(o.eval_metrics_max_problems), comm);
      state.accuracies[metric] = r.accuracy.accuracy();
      char accuracy[32];
      std::snprintf(accuracy, sizeof accuracy, "%.6f", r.accuracy.accuracy());
      line += cat(line.empty() ? "" : ", ", metric, ": ", accuracy);
      if (r.cropped > 0) cropped += cat(" (", metric, ": ", r.cropped, " prompts cut to their last ",
                                        model.activations().seq(), " tokens)");
      out << ", \"" << metric << "\": " << r.accuracy.accuracy();
    }
    out << "}\n";
    if (!log) return;  // a rank other than 0
    std::fprintf(log, "Step %05lld | %s%s\n", static_cast<long long>(step), line.c_str(), cropped.c_str());
    std::fflush(log);
  }

  static void print_header(std::FILE* log, const std::string& model, const Options& o, std::int64_t accum,
                           const std::optional<std::int64_t>& final, std::size_t rows) {
    std::fprintf(log,
                 "model: %s | training rows: %zu | target examples per step: %lld | device batch size: %lld => "
                 "grad accum steps: %lld | num iterations: %lld\n",
                 model.c_str(), rows, static_cast<long long>(o.target_examples_per_step),
                 static_cast<long long>(o.device_batch_size), static_cast<long long>(accum),
                 static_cast<long long>(*final + 1));
    std::fflush(log);
  }
  static void print_step(std::FILE* log, const StageStep& s, const std::string& bar) {
    std::fprintf(log, "Step %05lld/%05lld | Training loss: %.6f| lrm: %.6f| num_tokens: %lld%s\n",
                 static_cast<long long>(s.step), static_cast<long long>(*s.final_step + 1), s.loss, s.lrm,
                 static_cast<long long>(s.supervised), bar.c_str());
    std::fflush(log);
  }
  static void write_step(std::ostream& out, const StageStep& s) {
    out << "{\"step\": " << s.step << ", \"train_loss\": " << s.loss << ", \"lrm\": " << s.lrm
        << ", \"num_tokens\": " << s.supervised << ", \"dt\": " << s.dt << "}\n";
  }
  static void print_validation(std::FILE* log, std::int64_t step, const TrainState& s) {
    std::fprintf(log, "Step %05lld | Validation loss: %.6f\n", static_cast<long long>(step), s.val_loss);
    std::fflush(log);
  }
  static void write_validation(std::ostream& out, std::int64_t step, const TrainState& s) {
    out << "{\"step\": " << step << ", \"val_loss\": " << s.val_loss << "}\n";
  }
  static void print_end(std::FILE* log, const TrainState& s) {
    std::fprintf(log, "Validation loss: %.6f\n", s.val_loss);
    std::fflush(log);
  }
};

}  // namespace nanochat
