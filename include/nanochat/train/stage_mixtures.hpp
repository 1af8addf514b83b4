#pragma once
// The datasets of the chat stages. nanochat's mixtures (spec §5.4, §5.5) read the public datasets
// from BASE/task_data and BASE/identity_conversations.jsonl (tasks/dataset_files.hpp; a missing
// file is an error naming where it belongs); the offline mixtures are made of the generated
// tasks (arithmetic through the calculator, letter counting, spelling, identity), so a CPU run
// needs no download. Their validation sets are the tasks' held-out splits.

#include <cstddef>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nanochat/eval/chat_eval.hpp"
#include "nanochat/tasks/arc.hpp"
#include "nanochat/tasks/custom_json.hpp"
#include "nanochat/tasks/gsm8k.hpp"
#include "nanochat/tasks/mmlu.hpp"
#include "nanochat/tasks/offline_tasks.hpp"
#include "nanochat/tasks/smoltalk.hpp"
#include "nanochat/tasks/spelling_bee.hpp"
#include "nanochat/tasks/task_mixture.hpp"

namespace nanochat {

struct StageData {
  tasks::TaskPtr train, val;
};

// nanochat's mid_train: SmolTalk, MMLU auxiliary_train, GSM8K, identity x2, SimpleSpelling
// 200K, SpellingBee 80K; validation SmolTalk test, MMLU test[:5200], GSM8K test[:420].
inline StageData mid_train_data() {
  using namespace tasks;
  // The datasets before the word list: a fresh base directory's first error names task_data.
  const TaskPtr smoltalk = std::make_shared<SmolTalk>(SmolTalk::default_path("train"));
  const TaskPtr identity = std::make_shared<CustomJSON>(default_identity_conversations());
  const auto words = read_word_list(default_word_list());
  return {std::make_shared<TaskMixture>(std::vector<TaskPtr>{
              smoltalk, std::make_shared<MMLU>(MMLU::default_path("auxiliary_train")),
              std::make_shared<GSM8K>(GSM8K::default_path("train")), identity, identity,
              std::make_shared<SimpleSpelling>(words, 200000, Split::train),
              std::make_shared<SpellingBee>(words, 80000, Split::train)}),
          std::make_shared<TaskMixture>(std::vector<TaskPtr>{
              std::make_shared<SmolTalk>(SmolTalk::default_path("test")),
              slice(std::make_shared<MMLU>(MMLU::default_path("test")), {.start = 0, .stop = 5200}),
              slice(std::make_shared<GSM8K>(GSM8K::default_path("test")), {.start = 0, .stop = 420})})};
}

// nanochat's chat_sft: ARC-Easy and ARC-Challenge train, GSM8K train, SmolTalk train[:10000],
// identity, SimpleSpelling 300, SpellingBee 300; validation SmolTalk test.
inline StageData chat_sft_data() {
  using namespace tasks;
  const TaskPtr arc_easy = std::make_shared<ARC>(ARC::default_path("ARC-Easy", "Train"));
  const auto words = read_word_list(default_word_list());
  return {std::make_shared<TaskMixture>(std::vector<TaskPtr>{
              arc_easy,
              std::make_shared<ARC>(ARC::default_path("ARC-Challenge", "Train")),
              std::make_shared<GSM8K>(GSM8K::default_path("train")),
              slice(std::make_shared<SmolTalk>(SmolTalk::default_path("train")), {.start = 0, .stop = 10000}),
              std::make_shared<CustomJSON>(default_identity_conversations()),
              std::make_shared<SimpleSpelling>(words, 300, Split::train),
              std::make_shared<SpellingBee>(words, 300, Split::train)}),
          std::make_shared<SmolTalk>(SmolTalk::default_path("test"))};
}

// chat_sft's multiple-choice metrics, nanochat's MMLU and ARC-Easy test splits under their meta
// names; a task whose dataset is absent is left out, with one line on `log` naming what is
// missing (an offline run has none of them); a null log says nothing (the ranks other than 0).
inline std::vector<std::pair<std::string, tasks::TaskPtr>> sft_metric_tasks(std::FILE* log) {
  std::vector<std::pair<std::string, tasks::TaskPtr>> out;
  std::string missing;
  for (const auto& [metric, task] : {std::pair{"mmlu_acc", "MMLU"}, std::pair{"arc_easy_acc", "ARC-Easy"}}) {
    try {
      out.emplace_back(metric, eval::make_eval_task(task, 0));
    } catch (const Error& e) {
      missing += cat(missing.empty() ? "" : "; ", e.what());
    }
  }
  if (!missing.empty() && log != nullptr) {
    std::fprintf(log, "chat_sft: skipping the multiple-choice accuracies (--eval-metrics-every) without their "
                 "dataset: %s\n", missing.c_str());
    std::fflush(log);
  }
  return out;
}

// make() (mid_train_data, chat_sft_data), or its error saying also how to train without the
// datasets.
inline StageData nanochats_mixture_or_hint(StageData (*make)()) {
  try {
    return make();
  } catch (const Error& e) {
    NANOCHAT_FAIL(e.what(), "; or pass --offline to train on the offline tasks");
  }
}

// The offline tasks, `rows` examples of each generated one (identity has its fixed questions,
// listed twice as nanochat lists its identity conversations in mid_train); validation: rows / 10
// of each held-out split, which no training example can equal (tasks/held_out_split.hpp).
inline StageData offline_data(std::size_t rows, bool identity_twice) {
  using namespace tasks;
  const auto generated = [&](Split split, std::size_t n) {
    std::vector<TaskPtr> parts;
    for (const char* name : {"arithmetic", "letter-count", "spelling"}) parts.push_back(make_offline_task(name, split, n));
    const TaskPtr identity = make_offline_task("identity", split, 0);
    parts.push_back(identity);
    if (identity_twice && split == Split::train) parts.push_back(identity);
    return std::make_shared<TaskMixture>(parts);
  };
  return {generated(Split::train, rows), generated(Split::test, std::max<std::size_t>(1, rows / 10))};
}

}  // namespace nanochat
