#pragma once
// A task: a dataset of conversations (nanochat's tasks/common.py), with how it is evaluated and,
// where it has one, a scorer for a model's completion. Training stages read a task (usually a
// TaskMixture) by index and render each example with tokenizer::render_conversation; evaluation
// prompts with render_for_completion and scores the decoded completion with evaluate().
//
// Tasks are immutable after construction and shared by shared_ptr<const Task>, so one dataset
// can appear in several mixtures (nanochat oversamples by listing a task twice) without copies.

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/tokenizer/chat_template.hpp"

namespace nanochat::tasks {

using tokenizer::Conversation;
using tokenizer::Message;
using tokenizer::MessagePart;

enum class EvalType { generative, categorical };

inline const char* name_of(EvalType type) { return type == EvalType::generative ? "generative" : "categorical"; }

// The two halves of a generated task: training examples, and held-out ones for evaluation.
enum class Split { train, test };

inline const char* name_of(Split split) { return split == Split::train ? "train" : "test"; }

struct Example {
  Conversation conversation;
  // Categorical tasks: the answer letters in choice order; the last assistant message is the
  // gold letter. Evaluation restricts the model's next-token logits to these letters' tokens.
  std::vector<std::string> letters;
  // What a scorer needs beyond the conversation, as nanochat's extra conversation keys:
  // HumanEval "test" and "entry_point", MMLU "subject", identity "keyword".
  std::map<std::string, std::string> extra;
};

class Task {
 public:
  virtual ~Task() = default;

  virtual std::string name() const = 0;
  virtual std::size_t size() const = 0;
  // Example i of this task, 0 <= i < size(); deterministic (the same index gives the same
  // conversation in every process, so ranks can stride over one task without talking).
  virtual Example example(std::size_t index) const = 0;
  virtual EvalType eval_type() const { return EvalType::generative; }
  virtual bool has_scorer() const { return false; }
  // Whether completion (the decoded assistant reply, or the chosen letter for a categorical
  // task) answers example correctly.
  virtual bool evaluate(const Example& example, std::string_view completion) const {
    (void)example;
    (void)completion;
    NANOCHAT_FAIL("task ", name(), " has no scorer (it is a training-only dataset)");
  }
  // The RL reward: nanochat's 0/1 correctness.
  double reward(const Example& example, std::string_view completion) const {
    return evaluate(example, completion) ? 1.0 : 0.0;
  }

 protected:
  void check_index(std::size_t index) const {
    NANOCHAT_CHECK(index < size(), "task ", name(), ": example ", index, " out of range (", size(),
                   " examples)");
  }
};

using TaskPtr = std::shared_ptr<const Task>;

// nanochat's Task(start, stop, step): a logical view; stop unset means the task's end. Its
// length is ceil((stop - start) / step).
struct Slice {
  std::size_t start = 0;
  std::optional<std::size_t> stop{};
  std::size_t step = 1;
};

class SlicedTask final : public Task {
 public:
  SlicedTask(TaskPtr task, Slice slice) : task_(std::move(task)), slice_(slice) {
    NANOCHAT_CHECK(task_ != nullptr, "SlicedTask: no task");
    NANOCHAT_CHECK(slice_.step >= 1, "task ", task_->name(), ": slice step must be at least 1, got ", slice_.step);
    const std::size_t stop = slice_.stop.value_or(task_->size());
    NANOCHAT_CHECK(stop >= slice_.start, "task ", task_->name(), ": slice stop ", stop, " is before start ",
                   slice_.start);
    NANOCHAT_CHECK(stop <= task_->size(), "task ", task_->name(), ": slice stop ", stop, " is past its ",
                   task_->size(), " examples");
    size_ = (stop - slice_.start + slice_.step - 1) / slice_.step;
  }

  std::string name() const override {
    return cat(task_->name(), "[", slice_.start, ":", slice_.stop ? std::to_string(*slice_.stop) : std::string(),
               ":", slice_.step, "]");
  }
  std::size_t size() const override { return size_; }
  Example example(std::size_t index) const override {
    check_index(index);
    return task_->example(slice_.start + index * slice_.step);
  }
  EvalType eval_type() const override { return task_->eval_type(); }
  bool has_scorer() const override { return task_->has_scorer(); }
  bool evaluate(const Example& example, std::string_view completion) const override {
    return task_->evaluate(example, completion);
  }

 private:
  TaskPtr task_;
  Slice slice_;
  std::size_t size_ = 0;
};

inline TaskPtr slice(TaskPtr task, Slice view) { return std::make_shared<SlicedTask>(std::move(task), view); }

}  // namespace nanochat::tasks
