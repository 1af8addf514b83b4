#pragma once
// nanochat's chat_eval for generative tasks: each problem's conversation is rendered up to the
// assistant's turn (render_for_completion), the Engine writes the reply (the calculator tool runs
// inside it), the reply is decoded and the task's evaluate() scores it. Written once over any
// Engine model (CachedModel), so a scripted model checks the scoring and GptDecoder runs it.
// Problems are generated one at a time: the Engine batches samples of one prompt, not prompts.
// make_eval_task names the categorical tasks too; eval/categorical_eval.hpp scores those.
// With num_samples > 1 (nanochat's -n) a problem passes when any of its samples is correct, and
// pass@k for k = 1..num_samples is kept beside it, and the share of all samples that are right
// (the unbiased estimate of sampled pass@1; pass@1 itself counts only each problem's first sample).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "nanochat/core/atomic_file.hpp"
#include "nanochat/core/error.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/dist/single_process_communicator.hpp"
#include "nanochat/engine/engine.hpp"
#include "nanochat/eval/pass_at_k.hpp"
#include "nanochat/tasks/arc.hpp"
#include "nanochat/tasks/gsm8k.hpp"
#include "nanochat/tasks/humaneval.hpp"
#include "nanochat/tasks/mmlu.hpp"
#include "nanochat/tasks/offline_tasks.hpp"
#include "nanochat/tasks/spelling_bee.hpp"
#include "nanochat/tasks/task.hpp"
#include "nanochat/tokenizer/chat_template.hpp"

namespace nanochat::eval {

struct ChatEvalOptions {
  std::size_t max_problems = 200;  // 0: every problem of the task
  std::int64_t max_new_tokens = 128;
  std::int64_t num_samples = 1;  // replies per problem, sampled as one batch of the Engine
  engine::SamplingOptions sampling{0.0f, 50, 42};  // greedy, as nanochat's chat_eval
  std::FILE* transcript = nullptr;  // where given: each problem's question, reply and verdict
};

struct TaskAccuracy {
  std::string task;
  std::size_t correct = 0, total = 0;  // correct: problems with a correct reply among all samples
  std::vector<double> pass_at_k;       // k = 1..num_samples
  double sample_accuracy = 0.0;        // right samples / all samples
  double accuracy() const { return total == 0 ? 0.0 : static_cast<double>(correct) / static_cast<double>(total); }
};

// The num_samples replies the Engine writes for one problem, decoded (tool calls and outputs
// included, as nanochat decodes them, so "#### N" after the output is what the scorer reads).
template <engine::CachedModel M>
std::vector<std::string> complete(engine::Engine<M>& engine, const tokenizer::Tokenizer& tok,
                                  const tasks::Example& example, const ChatEvalOptions& options) {
  const std::vector<tokenizer::TokenId> prompt = tokenizer::render_for_completion(tok, example.conversation);
  const std::vector<std::int32_t> ids(prompt.begin(), prompt.end());
  engine::GenerateOptions gen;
  gen.num_samples = options.num_samples;
  gen.max_tokens = options.max_new_tokens;
  gen.sampling = options.sampling;
  const engine::GeneratedBatch batch = engine.generate_batch(ids, gen);
  std::vector<std::string> replies;
  for (const auto& seq : batch.sequences)
    replies.push_back(tok.decode(std::vector<tokenizer::TokenId>(seq.begin() + static_cast<std::ptrdiff_t>(ids.size()), seq.end())));
  return replies;
}

// One line per reply, to see what a model gets wrong: "<task> <i> right|wrong: <last user
// message> => <reply>", newlines shown as \n so each reply stays on its line.
inline void write_transcript_line(std::FILE* out, const tasks::Task& task, std::size_t index, const tasks::Example& example,
                                  std::string_view reply, bool right) {
  const auto one_line = [](std::string_view text) {
    std::string line;
    for (char c : text) line += c == '\n' ? std::string("\\n") : std::string(1, c);
    return line;
  };
  std::string question;
  for (const tokenizer::Message& m : example.conversation.messages)
    if (m.role == "user" && std::holds_alternative<std::string>(m.content)) question = std::get<std::string>(m.content);
  std::fprintf(out, "%s %zu %s: %s => %s\n", task.name().c_str(), index, right ? "right" : "wrong",
               one_line(question).c_str(), one_line(reply).c_str());
}

// Accuracy over the first min(max_problems, size) problems of a generative task with a scorer.
// Over a communicator's W ranks rank r answers problems r, r+W, ... (a transcript shows those)
// and every rank returns the whole result, equal to one process's.
template <engine::CachedModel M>
TaskAccuracy evaluate_generative(engine::Engine<M>& engine, const tokenizer::Tokenizer& tok, const tasks::Task& task,
                                 const ChatEvalOptions& options, dist::Communicator& comm = dist::single_process()) {
  NANOCHAT_CHECK(task.eval_type() == tasks::EvalType::generative, "task ", task.name(),
                 " is categorical; only generative tasks are evaluated");
  NANOCHAT_CHECK(task.has_scorer(), "task ", task.name(), " has no scorer");
  const std::size_t n = options.max_problems == 0 ? task.size() : std::min(options.max_problems, task.size());
  NANOCHAT_CHECK(options.num_samples >= 1, "num_samples is ", options.num_samples, "; at least 1 sample per problem");
  std::vector<std::vector<bool>> outcomes(n);
  for (auto i = static_cast<std::size_t>(comm.rank()); i < n; i += static_cast<std::size_t>(comm.size())) {
    const tasks::Example example = task.example(i);
    for (const auto& reply : complete(engine, tok, example, options)) {
      const bool right = task.evaluate(example, reply);
      outcomes[i].push_back(right);
      if (options.transcript) write_transcript_line(options.transcript, task, i, example, reply, right);
    }
  }
  share_outcomes(comm, outcomes, static_cast<std::size_t>(options.num_samples));
  TaskAccuracy out{task.name(), 0, n, pass_at_k(outcomes, static_cast<std::size_t>(options.num_samples))};
  std::size_t right = 0, samples = 0;
  for (const auto& o : outcomes) {
    out.correct += std::find(o.begin(), o.end(), true) != o.end() ? 1 : 0;
    right += static_cast<std::size_t>(std::count(o.begin(), o.end(), true));
    samples += o.size();
  }
  out.sample_accuracy = samples == 0 ? 0.0 : static_cast<double>(right) / static_cast<double>(samples);
  return out;
}

// The tasks chat_eval knows by name: the offline ones on their held-out splits (none of their
// problems can be a training example), and nanochat's where the dataset files are present
// (ARC-Easy, ARC-Challenge and MMLU are categorical: eval/categorical_eval.hpp; HumanEval runs
// the model's code in eval/sandbox.hpp).
inline std::vector<std::string> known_task_names() {
  std::vector<std::string> names(tasks::kOfflineTaskNames.begin(), tasks::kOfflineTaskNames.end());
  for (const char* name : {"GSM8K", "SpellingBee", "ARC-Easy", "ARC-Challenge", "MMLU", "HumanEval"}) names.emplace_back(name);
  return names;
}

// Generated tasks have no "all": `problems` of them are drawn, and 0 (all) draws as many as a
// generated task has by default (1000). `difficulty` sets the generated sets' operand digits and
// word syllables (chat_rl's --arithmetic-digits and --spelling-syllables).
inline tasks::TaskPtr make_eval_task(std::string_view name, std::size_t problems,
                                     const tasks::OfflineDifficulty& difficulty = {}) {
  using namespace tasks;
  const std::size_t n = problems == 0 ? OfflineArithmetic::Options{}.size : problems;
  if (TaskPtr offline = make_offline_task(name, Split::test, n, difficulty)) return offline;
  if (name == "GSM8K") return std::make_shared<GSM8K>(GSM8K::default_path("test"));
  if (name == "SpellingBee") return std::make_shared<SpellingBee>(read_word_list(default_word_list()), n, Split::test);
  // nanochat's chat_eval: ARC's test splits, MMLU's "all" test.
  if (name == "ARC-Easy" || name == "ARC-Challenge") return std::make_shared<ARC>(ARC::default_path(name, "Test"));
  if (name == "MMLU") return std::make_shared<MMLU>(MMLU::default_path("test"));
  if (name == "HumanEval") {  // runs the model's code: refused up front where the sandbox cannot be built
    NANOCHAT_CHECK(eval::sandbox_refusal().empty(), "HumanEval cannot be scored here: ", eval::sandbox_refusal());
    return std::make_shared<HumanEval>(HumanEval::default_path());
  }
  std::string known;
  for (const auto& k : known_task_names()) known += (known.empty() ? "" : ", ") + k;
  NANOCHAT_FAIL("task '", name, "' is unknown; known tasks: ", known);
}

// nanochat's ChatCORE: its six tasks with the accuracy of guessing (1 of 4 letters for the
// multiple-choice ones; nothing for the generative ones), so a centered accuracy is 0 at chance
// and 1 when every problem is right.
inline constexpr std::pair<std::string_view, double> kChatCoreBaselines[] = {
    {"ARC-Easy", 0.25}, {"ARC-Challenge", 0.25}, {"MMLU", 0.25}, {"GSM8K", 0.0}, {"HumanEval", 0.0}, {"SpellingBee", 0.0}};

// The mean over the six of (accuracy - baseline) / (1 - baseline), keyed by the names -a takes;
// nullopt unless all six were evaluated (nanochat logs no ChatCORE then). Other tasks of the run
// (the offline ones) are not part of it.
inline std::optional<double> chatcore(const std::map<std::string, double, std::less<>>& accuracy_by_task) {
  double sum = 0.0;
  for (const auto& [task, baseline] : kChatCoreBaselines) {
    const auto it = accuracy_by_task.find(task);
    if (it == accuracy_by_task.end()) return std::nullopt;
    sum += (it->second - baseline) / (1.0 - baseline);
  }
  return sum / static_cast<double>(std::size(kChatCoreBaselines));
}

// A small JSON record of one evaluation: {"source": ..., "tasks": {name: {correct, total, accuracy,
// sample_accuracy, pass@k: [k = 1..]}}, "ChatCORE": x (only when it was computed)}.
inline void write_results(const std::filesystem::path& path, std::string_view source,
                          const std::vector<TaskAccuracy>& results, std::optional<double> chatcore_metric = std::nullopt) {
  std::string text = cat("{\"source\": ", json::quote(source), ", \"tasks\": {");
  for (std::size_t i = 0; i < results.size(); ++i) {
    const TaskAccuracy& r = results[i];
    text += cat(i ? ", " : "", json::quote(r.task), ": {\"correct\": ", r.correct, ", \"total\": ", r.total,
                ", \"accuracy\": ", r.accuracy(), ", \"sample_accuracy\": ", r.sample_accuracy,
                ", \"pass@k\": [");
    for (std::size_t k = 0; k < r.pass_at_k.size(); ++k) text += cat(k ? ", " : "", r.pass_at_k[k]);
    text += "]}";
  }
  text += "}";
  if (chatcore_metric) text += cat(", \"ChatCORE\": ", *chatcore_metric);
  text += "}\n";
  write_file_atomically(path, text);
}

}  // namespace nanochat::eval
