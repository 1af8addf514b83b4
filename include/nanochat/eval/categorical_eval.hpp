#pragma once
// nanochat's categorical evaluation (scripts/chat_eval.py run_categorical_eval), for the
// multiple-choice tasks (MMLU, ARC): no sampling. Problems go through the model a batch at a
// time: each prompt is rendered up to the assistant's turn (render_for_completion, ending with
// <|assistant_start|>), the batch is right-padded with <|bos|> to its longest prompt, one
// forward gives every position's logits, and at each prompt's last position the logits of the
// problem's answer letters alone are compared: the highest is the answer (the first of equal
// ones, as torch's argmax), right when it is the gold letter. Each letter must be one token.
//
// Written once over the training model, any Config and Backend, so chat_sft evaluates its own
// model between steps and chat_eval a checkpoint. The batch is the model's rows; a prompt
// longer than the model's planned context keeps its last positions (the question's tail, the
// choices and the instruction), as CORE crops for a model with a maximum length; nanochat's
// model has no planned context, so those are counted in `cropped`. Over a communicator's W
// ranks, rank r takes problems r, r+W, ... and the counts are summed (nanochat's all-reduce).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/upload_rows.hpp"
#include "nanochat/dist/single_process_communicator.hpp"
#include "nanochat/eval/chat_eval.hpp"
#include "nanochat/model/gpt.hpp"
#include "nanochat/tasks/task.hpp"
#include "nanochat/tokenizer/chat_template.hpp"

namespace nanochat::eval {

struct CategoricalAccuracy {
  TaskAccuracy accuracy;
  std::size_t cropped = 0;  // prompts longer than the model's context, cut to their last positions
};

// The longest prompt among the first min(max_problems, size) problems (max_problems 0: all):
// the context a model must be planned for to evaluate them uncropped.
inline std::size_t longest_prompt(const tokenizer::Tokenizer& tok, const tasks::Task& task, std::size_t max_problems) {
  const std::size_t n = max_problems == 0 ? task.size() : std::min(max_problems, task.size());
  std::size_t longest = 1;
  for (std::size_t i = 0; i < n; ++i)
    longest = std::max(longest, tokenizer::render_for_completion(tok, task.example(i).conversation).size());
  return longest;
}

// Accuracy over the first min(max_problems, size) problems (max_problems 0: all) of a
// categorical task; every rank returns the whole count.
template <Config C, Backend B>
CategoricalAccuracy evaluate_categorical(B& backend, Gpt<C, B>& model, const tokenizer::Tokenizer& tok,
                                         const tasks::Task& task, std::size_t max_problems,
                                         dist::Communicator& comm = dist::single_process()) {
  NANOCHAT_CHECK(task.eval_type() == tasks::EvalType::categorical, "categorical evaluation: task ", task.name(),
                 " is generative");
  NANOCHAT_CHECK(task.has_scorer(), "categorical evaluation: task ", task.name(), " has no scorer");
  const std::int64_t rows = model.activations().batch(), context = model.activations().seq();
  const auto vocab = static_cast<std::size_t>(model.vocab_size());
  const std::size_t n = max_problems == 0 ? task.size() : std::min(max_problems, task.size());
  const auto bos = static_cast<std::int32_t>(tok.bos_id());
  Tensor<std::int32_t, B> ids(backend, {rows, context});
  std::vector<std::int32_t> batch;
  std::vector<tasks::Example> examples;
  std::vector<std::vector<tokenizer::TokenId>> prompts;
  std::vector<float> logits_row(vocab);
  std::map<std::string, std::int32_t> letter_ids;  // letters repeat across problems
  const auto letter_id = [&](const std::string& letter) {
    const auto known = letter_ids.find(letter);
    if (known != letter_ids.end()) return known->second;
    const std::vector<tokenizer::TokenId> encoded = tok.encode(letter);
    NANOCHAT_CHECK(encoded.size() == 1, "categorical evaluation: task ", task.name(), ": answer letter '", letter,
                   "' is ", encoded.size(), " tokens; each letter must be one token");
    return letter_ids[letter] = static_cast<std::int32_t>(encoded[0]);
  };

  CategoricalAccuracy out{{task.name(), 0, n, {}}, 0};  // one choice per problem: no pass@k
  std::vector<std::size_t> mine;  // this rank's problems
  for (auto i = static_cast<std::size_t>(comm.rank()); i < n; i += static_cast<std::size_t>(comm.size())) mine.push_back(i);
  for (std::size_t first = 0; first < mine.size(); first += static_cast<std::size_t>(rows)) {
    const std::size_t count = std::min(mine.size() - first, static_cast<std::size_t>(rows));
    examples.clear();
    prompts.clear();
    std::size_t width = 1;
    for (std::size_t i = 0; i < count; ++i) {
      examples.push_back(task.example(mine[first + i]));
      std::vector<tokenizer::TokenId> prompt = tokenizer::render_for_completion(tok, examples.back().conversation);
      if (prompt.size() > static_cast<std::size_t>(context)) {
        prompt.erase(prompt.begin(), prompt.end() - context);
        ++out.cropped;
      }
      width = std::max(width, prompt.size());
      prompts.push_back(std::move(prompt));
    }
    // Rows past the last problem (the final batch) are padding too.
    batch.assign(static_cast<std::size_t>(rows) * width, bos);
    for (std::size_t i = 0; i < count; ++i) std::copy(prompts[i].begin(), prompts[i].end(), batch.begin() + i * width);
    const auto logits = model.forward(upload_rows(backend, ids, std::span<const std::int32_t>(batch), rows));
    for (std::size_t i = 0; i < count; ++i) {
      const std::vector<std::string>& letters = examples[i].letters;
      NANOCHAT_CHECK(!letters.empty(), "categorical evaluation: task ", task.name(), ": problem ", mine[first + i],
                     " has no answer letters");
      const std::size_t answer_position = i * width + prompts[i].size() - 1;
      backend.copy_to_host(logits_row.data(), logits.data() + answer_position * vocab, vocab * sizeof(float));
      std::size_t best = 0;
      float best_logit = logits_row[static_cast<std::size_t>(letter_id(letters[0]))];
      for (std::size_t l = 1; l < letters.size(); ++l) {
        const float logit = logits_row[static_cast<std::size_t>(letter_id(letters[l]))];
        if (logit > best_logit) {
          best = l;
          best_logit = logit;
        }
      }
      if (task.evaluate(examples[i], letters[best])) ++out.accuracy.correct;
    }
  }
  std::size_t counts[2] = {out.accuracy.correct, out.cropped};
  dist::sum_counts_over_ranks(comm, counts);
  out.accuracy.correct = counts[0];
  out.cropped = counts[1];
  return out;
}

}  // namespace nanochat::eval
