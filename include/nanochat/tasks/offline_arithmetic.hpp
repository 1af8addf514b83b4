#pragma once
// Offline task: multi-digit addition and subtraction solved through the calculator. The user
// asks "What is 123 + 45?"; the assistant writes the expression as a python part ("123+45"),
// the tool's output part holds the result ("168", as nanochat's calculator prints it), then the
// assistant states the answer ("#### 168", scored like GSM8K). Needs no download; a tiny model
// learns the tool-use pattern on a CPU.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "nanochat/tasks/answer.hpp"
#include "nanochat/tasks/gsm8k.hpp"
#include "nanochat/tasks/held_out_split.hpp"
#include "nanochat/tasks/task.hpp"

namespace nanochat::tasks {

class OfflineArithmetic final : public Task {
 public:
  struct Options {
    std::uint64_t seed = 0;
    std::size_t size = 1000;
    Split split = Split::train;
    int max_digits = 3;  // operands have 1..max_digits digits
    HeldOut held_out{};
  };

  explicit OfflineArithmetic(Options options) : options_(options) {
    NANOCHAT_CHECK(options_.max_digits >= 1 && options_.max_digits <= 9, "OfflineArithmetic: max_digits ",
                   options_.max_digits, " must be within 1..9");
  }

  // The default 3 digits keep the plain name; others are named, so results of harder sets differ.
  std::string name() const override {
    return options_.max_digits == 3 ? cat("OfflineArithmetic(", name_of(options_.split), ")")
                                    : cat("OfflineArithmetic(", name_of(options_.split), ", ", options_.max_digits, " digits)");
  }
  std::size_t size() const override { return options_.size; }
  Example example(std::size_t index) const override {
    check_index(index);
    PythonRandom rng = example_rng(options_.seed, "arithmetic", index);
    const Problem p = draw_in_split<Problem>(
        rng, options_.held_out, options_.split, name(), [&](PythonRandom& r) { return draw(r); },
        [](const Problem& q) { return q.expression(); });
    static constexpr std::string_view kTemplates[] = {"What is {}?", "Compute {}.", "{} = ?", "Calculate {}"};
    const std::string_view pattern = rng.choice(kTemplates);
    const std::size_t hole = pattern.find("{}");
    const std::string question = cat(pattern.substr(0, hole), p.a, " ", p.op, " ", p.b, pattern.substr(hole + 2));
    const std::string result = std::to_string(p.op == '+' ? p.a + p.b : p.a - p.b);
    Example out;
    out.conversation.messages.push_back({"user", question});
    out.conversation.messages.push_back(
        {"assistant", std::vector<MessagePart>{{"python", p.expression()},
                                               {"python_output", result},
                                               {"text", cat("\n\n#### ", result)}}});
    out.extra["problem"] = p.expression();
    return out;
  }
  bool has_scorer() const override { return true; }
  bool evaluate(const Example& example, std::string_view completion) const override {
    return same_final_answer(final_text_part(example, "OfflineArithmetic"), completion);
  }

 private:
  struct Problem {
    std::int64_t a, b;
    char op;
    std::string expression() const { return cat(a, op, b); }
  };

  Problem draw(PythonRandom& rng) const {
    const auto operand = [&] {
      const auto digits = rng.randint(1, options_.max_digits);
      std::int64_t high = 1;
      for (std::int64_t d = 0; d < digits; ++d) high *= 10;
      return rng.randint(digits == 1 ? 0 : high / 10, high - 1);
    };
    const std::int64_t a = operand();
    const std::int64_t b = operand();
    return {a, b, rng.random() < 0.5 ? '+' : '-'};
  }

  Options options_;
};

}  // namespace nanochat::tasks
