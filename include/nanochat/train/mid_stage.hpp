#pragma once
// mid_train as a Stage of StageTrainer (spec §5.4): batches of B*T tokens from MidLoader, the
// step's total in tokens (gradient accumulation = total / (B*T*W) on W ranks), one epoch of the mixture (or
// --num-iterations steps, whichever ends first), lrm 1 until 80% of the epoch then linearly to
// 0 at its end, Muon momentum 0.85 -> 0.95 over 300 steps, validation bits per byte over
// eval_tokens of the validation mixture (each rank reads its stride of eval_tokens / W, the nats
// and bytes summed over the ranks), and nanochat's log line.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "nanochat/core/limits.hpp"
#include "nanochat/optim/schedule.hpp"
#include "nanochat/train/bits_per_byte.hpp"
#include "nanochat/train/checkpoint.hpp"
#include "nanochat/train/mid_loader.hpp"
#include "nanochat/train/stage_trainer.hpp"

namespace nanochat {

struct MidOptions : StageOptions {
  std::int64_t total_batch_size = 524288;  // tokens per optimizer step
  std::int64_t eval_tokens = 20 * 524288;  // validation tokens per evaluation
};

// nanochat's mid_train schedule: lrm(p) = 1 for p < 0.8, else 1 - (p - 0.8) / 0.2.
inline double mid_lr_multiplier(double progress) { return progress < 0.8 ? 1.0 : 1.0 - (progress - 0.8) / 0.2; }

struct MidStage {
  using Options = MidOptions;
  using Loader = MidLoader;
  static constexpr const char* name = "mid_train";
  static constexpr const char* total_flag = "--total-batch-size";
  static constexpr ValidationMetric validation_metric = ValidationMetric::bits_per_byte;

  // Every rank's rows count toward the total (nanochat's world_tokens_per_fwdbwd).
  static std::int64_t grad_accum(const Options& o, int world) {
    NANOCHAT_CHECK(o.device_batch_size > 0 && o.max_seq_len > 0 && o.total_batch_size > 0,
                   "--device-batch-size, --max-seq-len and --total-batch-size must be positive");
    const std::int64_t per_fwdbwd = world_tokens_per_fwdbwd(o, world);
    NANOCHAT_CHECK(o.total_batch_size % per_fwdbwd == 0, "--total-batch-size ", o.total_batch_size,
                   " is not a multiple of --device-batch-size x --max-seq-len", world > 1 ? " x ranks" : "", " = ",
                   o.device_batch_size, " x ", o.max_seq_len, world > 1 ? cat(" x ", world) : std::string(), " = ",
                   per_fwdbwd, " tokens");
    return o.total_batch_size / per_fwdbwd;
  }
  static std::int64_t world_tokens_per_fwdbwd(const Options& o, int world) {
    return checked_mul(checked_mul(o.device_batch_size, o.max_seq_len, "--device-batch-size x --max-seq-len"),
                       std::int64_t{world}, "--device-batch-size x --max-seq-len x ranks");
  }
  static std::int64_t total(const Options& o) { return o.total_batch_size; }
  // With --num-iterations the run ends there (or at the epoch's end, if that comes first).
  static std::optional<std::int64_t> final_step(const Options& o, std::size_t) {
    return o.num_iterations > 0 ? std::optional(o.num_iterations) : std::nullopt;
  }
  static double progress(std::int64_t step, const std::optional<std::int64_t>& final, const Loader& loader) {
    return final ? static_cast<double>(step + 1) / static_cast<double>(*final) : loader.epoch_progress();
  }
  static double lr_multiplier(std::int64_t, const std::optional<std::int64_t>&, double progress) {
    return mid_lr_multiplier(progress);
  }
  static double muon_momentum(std::int64_t step) { return muon_momentum_at(step); }

  template <class Model, class Be>
  static void validate(Be& backend, Model& model, Loader& val, const Options& o,
                       const std::vector<std::int32_t>& token_bytes, TrainState& state, dist::Communicator& comm) {
    const std::int64_t steps = std::max<std::int64_t>(1, o.eval_tokens / world_tokens_per_fwdbwd(o, comm.size()));
    state.val_bpb = sum_over_ranks(comm, evaluate_bits_per_byte(backend, model, [&](auto& x, auto& y) { val.next(x, y); },
                                                                steps, token_bytes))
                        .bits_per_byte();
    state.min_val_bpb = state.min_val_bpb == 0.0 ? state.val_bpb : std::min(state.min_val_bpb, state.val_bpb);
  }
  static double validation_value(const TrainState& s) { return s.val_bpb; }

  static void print_header(std::FILE* log, const std::string& model, const Options& o, std::int64_t accum,
                           const std::optional<std::int64_t>& final, std::size_t rows) {
    std::fprintf(log,
                 "model: %s | tokens / micro-batch: %lld x %lld = %lld | total batch size %lld => gradient "
                 "accumulation steps: %lld | %s over %zu conversations\n",
                 model.c_str(), static_cast<long long>(o.device_batch_size), static_cast<long long>(o.max_seq_len),
                 static_cast<long long>(o.device_batch_size * o.max_seq_len),
                 static_cast<long long>(o.total_batch_size), static_cast<long long>(accum),
                 final ? cat(*final, " iterations (or one epoch)").c_str() : "one epoch", rows);
    std::fflush(log);
  }
  // nanochat's line: the step is the number of updates done.
  static void print_step(std::FILE* log, const StageStep& s, const std::string& bar) {
    std::fprintf(log, "step %05lld (%.2f%%) | loss: %.6f | lrm: %.2f | dt: %.2fms | tok/sec: %.0f | total time: %.2fm%s\n",
                 static_cast<long long>(s.step + 1), 100.0 * s.progress, s.smooth_loss, s.lrm, s.dt * 1000.0,
                 static_cast<double>(s.tokens) / s.dt, s.total_time / 60.0, bar.c_str());
    std::fflush(log);
  }
  static void write_step(std::ostream& out, const StageStep& s) {
    out << "{\"step\": " << s.step << ", \"loss\": " << s.smooth_loss << ", \"lrm\": " << s.lrm
        << ", \"progress\": " << s.progress << ", \"dt\": " << s.dt
        << ", \"tok_per_sec\": " << static_cast<double>(s.tokens) / s.dt << "}\n";
  }
  static void print_validation(std::FILE* log, std::int64_t step, const TrainState& s) {
    std::fprintf(log, "Step %05lld | Validation bpb: %.4f\n", static_cast<long long>(step), s.val_bpb);
    std::fflush(log);
  }
  static void write_validation(std::ostream& out, std::int64_t step, const TrainState& s) {
    out << "{\"step\": " << step << ", \"val_bpb\": " << s.val_bpb << "}\n";
  }
  static void print_end(std::FILE* log, const TrainState& s) {
    std::fprintf(log, "Total training time: %.2fm\nMinimum validation bpb: %.4f\n", s.total_training_time / 60.0,
                 s.min_val_bpb);
    std::fflush(log);
  }
};

}  // namespace nanochat
