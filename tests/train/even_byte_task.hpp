#pragma once
// A task a tiny random model earns both rewards on, for the RL tests (test_rl, and test_dist's
// chat_rl under mpirun): a completion whose first byte is even is right, so the advantages, and
// the updates, are not zero.

#include <cstddef>
#include <string>
#include <string_view>

#include "nanochat/tasks/task.hpp"

namespace nanochat_train_test {

class EvenByteTask final : public nanochat::tasks::Task {
 public:
  explicit EvenByteTask(std::size_t n) : n_(n) {}
  std::string name() const override { return "EvenByte"; }
  std::size_t size() const override { return n_; }
  nanochat::tasks::Example example(std::size_t index) const override {
    check_index(index);
    nanochat::tasks::Example e;
    e.conversation.messages.push_back({"user", "the model " + std::to_string(index)});
    e.conversation.messages.push_back({"assistant", "reads"});
    return e;
  }
  bool has_scorer() const override { return true; }
  bool evaluate(const nanochat::tasks::Example&, std::string_view completion) const override {
    return !completion.empty() && completion[0] % 2 == 0;
  }

 private:
  std::size_t n_;
};

}  // namespace nanochat_train_test
