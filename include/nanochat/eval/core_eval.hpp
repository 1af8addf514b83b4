#pragma once
// The CORE metric of a base model (spec §6.2), as nanochat's core_eval and scripts/base_eval:
// per task the JSONL is shuffled with random.Random(1337) and cut to max_per_task, every example
// is rendered and tokenized (eval/core_prompts.hpp), and its rows go through the model in one
// forward, right-padded with <|bos|>:
//   MC and schema  the row whose span has the lowest mean cross-entropy is the answer (the first
//                  of equal ones, as Python's min), right when it is the gold one
//   LM             right when the argmax at every span position is the next id (greedy match)
// accuracy = mean over examples; centered = (accuracy - b) / (1 - b) with b the task's random
// baseline / 100; CORE = the mean of the centered accuracies.
//
// Written once over the training model, any Config and Backend. The model is planned for
// [rows, context]: rows at least the most choices an example has; consecutive examples share a
// forward while their rows fit (an example's rows always share one), which changes no result since
// rows are independent. The losses come from the model's own cross-entropy (forward_loss, targets
// only inside the spans), the argmax from its logits. Over a communicator's W ranks rank r
// evaluates examples r, r+W, ... of each task and the counts are summed (nanochat's all-reduce
// SUM of the correctness vector): every rank returns one process's result.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/upload_rows.hpp"
#include "nanochat/dist/single_process_communicator.hpp"
#include "nanochat/eval/core_bundle.hpp"
#include "nanochat/eval/core_prompts.hpp"
#include "nanochat/model/gpt.hpp"
#include "nanochat/tasks/python_random.hpp"

namespace nanochat::eval {

struct CoreTaskResult {
  std::string label;
  double accuracy = 0.0, centered = 0.0;
  std::size_t examples = 0, correct = 0;
  std::size_t cropped = 0;  // rows longer than the model's context, cut to their last positions
  std::size_t tokens = 0;   // ids in the rows run (after cropping): the forwards' useful work
};

struct CoreResult {
  std::vector<CoreTaskResult> tasks;
  double core = 0.0;  // mean of the centered accuracies
};

// nanochat's selection: the whole file shuffled with random.Random(1337), then its first
// max_per_task examples (max_per_task <= 0: all). Few-shot examples come from this selection.
inline std::vector<CoreExample> select_core_examples(std::vector<CoreExample> data, std::int64_t max_per_task) {
  tasks::PythonRandom(1337).shuffle(data);
  if (max_per_task > 0 && data.size() > static_cast<std::size_t>(max_per_task))
    data.resize(static_cast<std::size_t>(max_per_task));
  return data;
}

inline double centered_accuracy(double accuracy, double random_baseline_percent) {
  const double b = 0.01 * random_baseline_percent;
  return (accuracy - b) / (1.0 - b);
}

// What a model must be planned for to run the bundle's selected examples uncropped: the most rows
// of one example and the longest row.
struct CoreShape {
  std::size_t rows = 1, longest = 1;
};

inline CoreShape core_shape(const tokenizer::Tokenizer& tok, const CoreBundle& bundle, std::int64_t max_per_task) {
  CoreShape shape;
  for (const CoreTask& task : bundle.tasks) {
    const std::vector<CoreExample> data = select_core_examples(load_core_examples(task), max_per_task);
    for (std::size_t idx = 0; idx < data.size(); ++idx) {
      const CoreRows rows = core_example_rows(tok, task, data, idx);
      shape.rows = std::max(shape.rows, rows.ids.size());
      for (const auto& ids : rows.ids) shape.longest = std::max(shape.longest, ids.size());
    }
  }
  return shape;
}

// Evaluates one task's selected examples; correct[idx] (when given) says which were right.
template <Config C, Backend B>
CoreTaskResult evaluate_core_task(B& backend, Gpt<C, B>& model, const tokenizer::Tokenizer& tok, const CoreTask& task,
                                  const std::vector<CoreExample>& data, std::vector<bool>* correct = nullptr,
                                  dist::Communicator& comm = dist::single_process()) {
  const auto& acts = model.activations();
  const std::int64_t planned_rows = acts.batch(), context = acts.seq();
  const auto rows = static_cast<std::size_t>(planned_rows);
  const auto vocab = static_cast<std::size_t>(model.vocab_size());
  const auto bos = static_cast<std::int32_t>(tok.bos_id());
  Tensor<std::int32_t, B> ids_buffer(backend, {planned_rows, context}), targets_buffer(backend, {planned_rows, context});
  std::vector<std::int32_t> ids, targets;
  std::vector<float> losses, logits_row(vocab);
  CoreTaskResult result{task.label, 0.0, 0.0, data.size(), 0, 0};
  if (correct != nullptr) correct->assign(data.size(), false);

  struct Pending {
    std::size_t idx;
    CoreRows rows;
  };
  std::vector<Pending> pending;
  std::size_t pending_rows = 0;
  const auto run = [&] {
    std::size_t width = 1;
    for (const Pending& p : pending)
      for (const auto& row : p.rows.ids) width = std::max(width, row.size());
    ids.assign(rows * width, bos);
    targets.assign(rows * width, -1);
    std::size_t r = 0;
    for (const Pending& p : pending) {
      for (std::size_t i = 0; i < p.rows.ids.size(); ++i, ++r) {
        const auto& row = p.rows.ids[i];
        for (std::size_t j = 0; j < row.size(); ++j) ids[r * width + j] = static_cast<std::int32_t>(row[j]);
        // Position j predicts id j + 1: the span [start, end) is predicted from [start - 1, end - 1).
        for (std::size_t j = p.rows.start[i] - 1; j + 1 < p.rows.end[i]; ++j)
          targets[r * width + j] = static_cast<std::int32_t>(row[j + 1]);
      }
    }
    model.forward_loss(upload_rows(backend, ids_buffer, std::span<const std::int32_t>(ids), planned_rows),
                       upload_rows(backend, targets_buffer, std::span<const std::int32_t>(targets), planned_rows),
                       LossReduction::sum);
    losses.resize(rows * width);
    backend.copy_to_host(losses.data(), acts.losses.data(), losses.size() * sizeof(float));
    r = 0;
    for (const Pending& p : pending) {
      bool right = true;
      if (task.type == CoreTaskType::language_modeling) {
        for (std::size_t j = p.rows.start[0] - 1; right && j + 1 < p.rows.end[0]; ++j) {
          backend.copy_to_host(logits_row.data(), acts.logits.data() + (r * width + j) * vocab, vocab * sizeof(float));
          std::size_t best = 0;  // the first of equal logits, as torch's argmax
          for (std::size_t v = 1; v < vocab; ++v)
            if (logits_row[v] > logits_row[best]) best = v;
          right = best == static_cast<std::size_t>(p.rows.ids[0][j + 1]);
        }
        r += 1;
      } else {
        std::size_t best = 0;
        double best_loss = std::numeric_limits<double>::quiet_NaN();
        for (std::size_t i = 0; i < p.rows.ids.size(); ++i, ++r) {
          double sum = 0.0;
          for (std::size_t j = p.rows.start[i] - 1; j + 1 < p.rows.end[i]; ++j) sum += losses[r * width + j];
          const std::size_t count = p.rows.end[i] - p.rows.start[i];
          // An empty span (a choice that is a prefix of another) has no mean: NaN, as torch's.
          const double mean = count > 0 ? sum / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN();
          if (i == 0 || mean < best_loss) best = i, best_loss = mean;  // Python's min: the first least
        }
        right = best == data[p.idx].gold;
      }
      if (right) ++result.correct;
      if (correct != nullptr) (*correct)[p.idx] = right;
    }
    pending.clear();
    pending_rows = 0;
  };

  for (auto idx = static_cast<std::size_t>(comm.rank()); idx < data.size(); idx += static_cast<std::size_t>(comm.size())) {
    const std::string where = cat("CORE ", task.label, " example ", idx);
    CoreRows example = core_example_rows(tok, task, data, idx);
    NANOCHAT_CHECK(example.ids.size() <= rows, where, " has ", example.ids.size(), " choices but the model is planned for ",
                   rows, " rows");
    for (std::size_t i = 0; i < example.ids.size(); ++i)
      NANOCHAT_CHECK(example.start[i] >= 1, where, ": the answer starts at <|bos|>");
    result.cropped += crop_core_rows(example, static_cast<std::size_t>(context), where);
    for (const auto& row : example.ids) result.tokens += row.size();
    if (pending_rows + example.ids.size() > rows) run();
    pending_rows += example.ids.size();
    pending.push_back({idx, std::move(example)});
  }
  if (!pending.empty()) run();
  std::size_t counts[3] = {result.correct, result.cropped, result.tokens};
  dist::sum_counts_over_ranks(comm, counts);
  result.correct = counts[0];
  result.cropped = counts[1];
  result.tokens = counts[2];
  if (correct != nullptr && comm.size() > 1) {
    std::vector<std::size_t> right(correct->begin(), correct->end());  // each example's owner's verdict, others 0
    dist::sum_counts_over_ranks(comm, right);
    for (std::size_t i = 0; i < right.size(); ++i) (*correct)[i] = right[i] != 0;
  }
  result.accuracy = static_cast<double>(result.correct) / static_cast<double>(data.size());
  result.centered = centered_accuracy(result.accuracy, task.random_baseline);
  return result;
}

// Every task of the bundle in core.yaml's order; on_task sees each result as it is done.
template <Config C, Backend B>
CoreResult evaluate_core(B& backend, Gpt<C, B>& model, const tokenizer::Tokenizer& tok, const CoreBundle& bundle,
                         std::int64_t max_per_task,
                         const std::function<void(const CoreTask&, const CoreTaskResult&)>& on_task = {},
                         dist::Communicator& comm = dist::single_process()) {
  CoreResult out;
  double centered_sum = 0.0;
  for (const CoreTask& task : bundle.tasks) {
    const std::vector<CoreExample> data = select_core_examples(load_core_examples(task), max_per_task);
    out.tasks.push_back(evaluate_core_task(backend, model, tok, task, data, nullptr, comm));
    centered_sum += out.tasks.back().centered;
    if (on_task) on_task(task, out.tasks.back());
  }
  out.core = centered_sum / static_cast<double>(out.tasks.size());
  return out;
}

// The results as nanochat's base_eval writes base_eval/<model>.csv: "Task, Accuracy, Centered"
// padded to 35 and 10 columns, six decimals, and a last CORE row.
inline std::string core_results_csv(const CoreResult& result) {
  const auto padded = [](std::string text, std::size_t width) {
    if (text.size() < width) text.append(width - text.size(), ' ');
    return text;
  };
  const auto decimals = [](double value) {
    char text[64];
    std::snprintf(text, sizeof text, "%.6f", value);
    return std::string(text);
  };
  std::string out = padded("Task", 35) + ", " + padded("Accuracy", 10) + ", " + padded("Centered", 10) + "\n";
  for (const CoreTaskResult& task : result.tasks)
    out += padded(task.label, 35) + ", " + padded(decimals(task.accuracy), 10) + ", " + padded(decimals(task.centered), 10) + "\n";
  return out + padded("CORE", 35) + ", " + padded("", 10) + ", " + padded(decimals(result.core), 10) + "\n";
}

}  // namespace nanochat::eval
