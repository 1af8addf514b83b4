#pragma once
// The outcome items of a training stage's report-card section (train/report_section.hpp), named
// as nanochat's base_train, mid_train and chat_sft log them, from the run's final TrainState:
// its final step, validation (bits per byte, or chat_sft's loss and multiple-choice accuracies), the
// training time, and the metrics.jsonl the report card plots.

#include <cstdio>
#include <filesystem>

#include "nanochat/train/checkpoint.hpp"
#include "nanochat/train/report_section.hpp"

namespace nanochat::report {

inline StageReport& add_training_outcome(StageReport& section, const TrainState& s,
                                         const std::filesystem::path& checkpoint_dir) {
  section.add("Final step", s.step);  // the last checkpoint's (chat_sft's of N iterations: N - 1)
  if (s.validation == ValidationMetric::bits_per_byte) {
    section.add("Minimum validation bpb", s.min_val_bpb).add("Final validation bpb", s.val_bpb);
  } else {
    section.add("Validation loss", s.val_loss);
  }
  for (const auto& [name, accuracy] : s.accuracies) section.add(name, accuracy);
  char minutes[32];
  std::snprintf(minutes, sizeof minutes, "%.2fm", s.total_training_time / 60.0);
  return section.add("Total training time", minutes).add("Metrics file", (checkpoint_dir / "metrics.jsonl").string());
}

}  // namespace nanochat::report
