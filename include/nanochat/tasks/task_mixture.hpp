#pragma once
// Combinations of tasks (nanochat's TaskMixture and TaskSequence).
//
// TaskMixture lists every (task, local index) pair task by task, then shuffles that list with
// Python's random.Random(seed).shuffle (seed 42 in nanochat), reproduced exactly by
// PythonRandom: the order is nanochat's own, the same in every process, and an epoch (indices
// 0 .. size()-1) visits every example of every task exactly once. Listing a task twice
// oversamples it (nanochat's identity conversations appear twice in mid_train).
// TaskSequence concatenates the tasks in order (a curriculum).

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/tasks/python_random.hpp"
#include "nanochat/tasks/task.hpp"

namespace nanochat::tasks {

// Where one example of a combination comes from.
struct ExampleSource {
  const Task* task;
  std::size_t index;  // within that task
};

class TaskMixture final : public Task {
 public:
  explicit TaskMixture(std::vector<TaskPtr> tasks, std::int64_t seed = 42) : tasks_(std::move(tasks)) {
    std::size_t total = 0;
    for (std::size_t t = 0; t < tasks_.size(); ++t) {
      NANOCHAT_CHECK(tasks_[t] != nullptr, "TaskMixture: task ", t, " is null");
      total += tasks_[t]->size();
    }
    NANOCHAT_CHECK(tasks_.size() < (std::size_t{1} << 32) && total < (std::size_t{1} << 32),
                   "TaskMixture: ", total, " examples exceed the 2^32 the index map holds");
    order_.reserve(total);
    for (std::size_t t = 0; t < tasks_.size(); ++t) {
      for (std::size_t i = 0; i < tasks_[t]->size(); ++i) {
        order_.push_back({static_cast<std::uint32_t>(t), static_cast<std::uint32_t>(i)});
      }
    }
    PythonRandom(seed).shuffle(order_);
  }

  std::string name() const override { return cat("TaskMixture(", tasks_.size(), " tasks)"); }
  std::size_t size() const override { return order_.size(); }
  Example example(std::size_t index) const override {
    const ExampleSource from = source(index);
    return from.task->example(from.index);
  }
  ExampleSource source(std::size_t index) const {
    check_index(index);
    return {tasks_[order_[index].task].get(), order_[index].local};
  }
  const std::vector<TaskPtr>& tasks() const { return tasks_; }

 private:
  struct Entry {
    std::uint32_t task;
    std::uint32_t local;
  };
  std::vector<TaskPtr> tasks_;
  std::vector<Entry> order_;
};

class TaskSequence final : public Task {
 public:
  explicit TaskSequence(std::vector<TaskPtr> tasks) : tasks_(std::move(tasks)) {
    for (std::size_t t = 0; t < tasks_.size(); ++t) {
      NANOCHAT_CHECK(tasks_[t] != nullptr, "TaskSequence: task ", t, " is null");
      size_ += tasks_[t]->size();
    }
  }

  std::string name() const override { return cat("TaskSequence(", tasks_.size(), " tasks)"); }
  std::size_t size() const override { return size_; }
  Example example(std::size_t index) const override {
    const ExampleSource from = source(index);
    return from.task->example(from.index);
  }
  ExampleSource source(std::size_t index) const {
    check_index(index);
    for (const TaskPtr& task : tasks_) {
      if (index < task->size()) return {task.get(), index};
      index -= task->size();
    }
    NANOCHAT_FAIL("TaskSequence: index past the end");  // unreachable after check_index
  }
  const std::vector<TaskPtr>& tasks() const { return tasks_; }

 private:
  std::vector<TaskPtr> tasks_;
  std::size_t size_ = 0;
};

}  // namespace nanochat::tasks
