// chat_eval: a scripted model whose replies are known gives exactly the accuracy its replies
// earn under each task's scorer (and pass@k over several samples), the calculator's output is
// part of the scored reply, unknown task names are refused, and the chat_eval program end to end
// (a tiny random checkpoint; its accuracy printed and written) with its refusals of bad flags and
// a missing checkpoint; the categorical evaluation equals a hand computation from the model's
// logits.

#include <doctest/doctest.h>

#include "run_program.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "engine_test_util.hpp"
#include "nanochat/backend/cpu.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/core/presets.hpp"
#include "nanochat/eval/categorical_eval.hpp"
#include "nanochat/eval/chat_eval.hpp"
#include "nanochat/model/gpt.hpp"
#include "nanochat/model/weights_file.hpp"
#include "nanochat/tasks/answer.hpp"
#include "nanochat/tasks/humaneval.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"
#include "nanochat/train/report_section.hpp"
#include "scoped_env.hpp"
#include "scripted_model.hpp"
#include "skip_test.hpp"

using namespace nanochat;
namespace fs = std::filesystem;

namespace {

// A task whose i-th problem's gold answer is answers[i], scored the "####" way.
class FixedAnswers final : public tasks::Task {
 public:
  explicit FixedAnswers(std::vector<std::string> answers) : answers_(std::move(answers)) {}
  std::string name() const override { return "FixedAnswers"; }
  std::size_t size() const override { return answers_.size(); }
  tasks::Example example(std::size_t i) const override {
    check_index(i);
    tasks::Example e;
    e.conversation.messages.push_back({"user", "question " + std::to_string(i)});
    e.conversation.messages.push_back({"assistant", "#### " + answers_[i]});
    return e;
  }
  bool has_scorer() const override { return true; }
  bool evaluate(const tasks::Example& e, std::string_view completion) const override {
    return tasks::same_final_answer(std::get<std::string>(e.conversation.messages.back().content), completion);
  }

 private:
  std::vector<std::string> answers_;
};

// Multiple-choice problems in nanochat's format: problem i has letters[i] and the gold gold[i];
// its question's length grows with i, so the prompts of a batch differ in length.
class Quiz final : public tasks::Task {
 public:
  Quiz(std::vector<std::vector<std::string>> letters, std::vector<std::string> gold)
      : letters_(std::move(letters)), gold_(std::move(gold)) {}
  std::string name() const override { return "Quiz"; }
  std::size_t size() const override { return letters_.size(); }
  tasks::Example example(std::size_t i) const override {
    check_index(i);
    std::vector<std::string> choices;
    for (std::size_t c = 0; c < letters_[i].size(); ++c) choices.push_back("choice " + std::to_string(c));
    return tasks::multiple_choice_example("question" + std::string(3 * i, '?'), letters_[i], choices, gold_[i]);
  }
  tasks::EvalType eval_type() const override { return tasks::EvalType::categorical; }
  bool has_scorer() const override { return true; }
  bool evaluate(const tasks::Example& e, std::string_view chosen) const override {
    return tasks::multiple_choice_correct(e, chosen, "Quiz");
  }

 private:
  std::vector<std::vector<std::string>> letters_;
  std::vector<std::string> gold_;
};

// A model that plays one script per row (greedy sampling then writes row r's script; the first
// token comes from the prefill, row 0's, so the scripts share it).
class PerRowScripts {
 public:
  PerRowScripts(std::vector<std::vector<std::int32_t>> scripts, std::int64_t vocab)
      : scripts_(std::move(scripts)), vocab_(vocab) {}
  std::span<const float> forward(std::span<const std::int32_t> ids, std::int64_t rows) {
    pos_ += static_cast<std::int64_t>(ids.size()) / rows;
    logits_.assign(static_cast<std::size_t>(rows * vocab_), 0.0f);
    for (std::int64_t r = 0; r < rows; ++r) {
      const auto& script = scripts_[static_cast<std::size_t>(r)];
      logits_[static_cast<std::size_t>(r * vocab_ + (step_ < script.size() ? script[step_] : 0))] = 100.0f;
    }
    ++step_;
    return logits_;
  }
  void reset() { pos_ = 0; step_ = 0; }
  void reserve(std::int64_t) {}
  void broadcast_row0(std::int64_t) {}
  std::int64_t vocab_size() const { return vocab_; }
  std::int64_t max_rows() const { return static_cast<std::int64_t>(scripts_.size()); }
  std::int64_t max_positions() const { return 1000; }
  std::int64_t position() const { return pos_; }

 private:
  std::vector<std::vector<std::int32_t>> scripts_;
  std::int64_t vocab_, pos_ = 0;
  std::size_t step_ = 0;
  std::vector<float> logits_;
};

std::vector<std::int32_t> bytes_of(std::string_view text) {
  return {text.begin(), text.end()};
}

std::vector<std::int32_t> script_of(std::initializer_list<std::vector<std::int32_t>> pieces) {
  std::vector<std::int32_t> out;
  for (const auto& p : pieces) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace

TEST_CASE("chat_eval: a scripted reply scores exactly the problems whose answer it states") {
  const auto tok = engine_test::byte_tokenizer();
  const auto end = static_cast<std::int32_t>(tok.encode_special("<|assistant_end|>"));
  engine_test::ScriptedModel model(script_of({bytes_of("The answer.\n#### 7"), {end}}), engine_test::byte_vocab);
  engine::Engine engine(model, tok);
  const FixedAnswers task({"7", "8", "7", "70", "7"});
  eval::ChatEvalOptions options;
  const eval::TaskAccuracy all = eval::evaluate_generative(engine, tok, task, options);
  CHECK(all.task == "FixedAnswers");
  CHECK(all.total == 5);
  CHECK(all.correct == 3);
  CHECK(all.accuracy() == doctest::Approx(0.6));
  options.max_problems = 2;  // the first two problems only
  const eval::TaskAccuracy two = eval::evaluate_generative(engine, tok, task, options);
  CHECK(two.total == 2);
  CHECK(two.correct == 1);
  // The transcript: a line per problem with its question, reply (newlines as \n) and verdict.
  std::FILE* transcript = std::tmpfile();
  REQUIRE(transcript != nullptr);
  options.transcript = transcript;
  eval::evaluate_generative(engine, tok, task, options);
  options.transcript = nullptr;
  std::rewind(transcript);
  std::string lines(256, '\0');
  lines.resize(std::fread(lines.data(), 1, lines.size(), transcript));
  std::fclose(transcript);
  CHECK(lines == "FixedAnswers 0 right: question 0 => The answer.\\n#### 7\nFixedAnswers 1 wrong: question 1 => The answer.\\n#### 7\n");
  // The reply is cut at --max-new-tokens: "The answer.\n#" states no answer.
  options.max_problems = 0;
  options.max_new_tokens = 13;
  CHECK(eval::evaluate_generative(engine, tok, task, options).correct == 0);
}

TEST_CASE("chat_eval: with several samples a problem passes if any is right, and pass@k counts the first k") {
  const auto tok = engine_test::byte_tokenizer();
  const auto end = static_cast<std::int32_t>(tok.encode_special("<|assistant_end|>"));
  // Row r answers "#### 7", "#### 8", "#### 9" to every problem.
  PerRowScripts model({script_of({bytes_of("#### 7"), {end}}), script_of({bytes_of("#### 8"), {end}}),
                       script_of({bytes_of("#### 9"), {end}})},
                      engine_test::byte_vocab);
  engine::Engine engine(model, tok);
  const FixedAnswers task({"8", "7", "1", "9"});
  eval::ChatEvalOptions options;
  options.num_samples = 3;
  const auto replies = eval::complete(engine, tok, task.example(0), options);
  CHECK(replies == std::vector<std::string>{"#### 7", "#### 8", "#### 9"});
  const eval::TaskAccuracy r = eval::evaluate_generative(engine, tok, task, options);
  CHECK(r.total == 4);
  CHECK(r.correct == 3);  // "1" is never said
  CHECK(r.pass_at_k == std::vector<double>{0.25, 0.5, 0.75});
  CHECK(r.sample_accuracy == doctest::Approx(3.0 / 12.0));  // one right sample of three, for three problems
  options.num_samples = 1;
  const eval::TaskAccuracy one = eval::evaluate_generative(engine, tok, task, options);
  CHECK(one.correct == 1);
  CHECK(one.pass_at_k == std::vector<double>{0.25});
  CHECK(one.sample_accuracy == doctest::Approx(0.25));
  options.num_samples = 0;
  CHECK_THROWS_WITH_AS(eval::evaluate_generative(engine, tok, task, options), doctest::Contains("num_samples is 0"),
                       Error);
}

TEST_CASE("chat_eval: a held-out arithmetic problem answered through the calculator is correct") {
  const auto tok = engine_test::byte_tokenizer();
  const auto special = [&](const char* name) { return static_cast<std::int32_t>(tok.encode_special(name)); };
  const auto problems = eval::make_eval_task("arithmetic", 3);
  const tasks::Example first = problems->example(0);
  const std::string expression = first.extra.at("problem");
  const auto result = engine::use_calculator(expression);
  REQUIRE(result.has_value());
  // The model writes the call; the Engine forces <|output_start|> result <|output_end|> over the
  // script's filler columns; the model then states the answer.
  const std::vector<std::int32_t> filler(result->size() + 2, 'x');
  engine_test::ScriptedModel model(script_of({{special("<|python_start|>")}, bytes_of(expression),
                                              {special("<|python_end|>")}, filler, bytes_of("\n\n#### " + *result),
                                              {special("<|assistant_end|>")}}),
                                   engine_test::byte_vocab);
  engine::Engine engine(model, tok);
  const std::string reply = eval::complete(engine, tok, first, {}).at(0);
  CHECK(reply.find("<|output_start|>" + *result + "<|output_end|>") != std::string::npos);
  CHECK(problems->evaluate(first, reply));
  // The same reply to the three problems: right for the first, and for another only if it has the same answer.
  std::size_t same = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    same += engine::use_calculator(problems->example(i).extra.at("problem")) == result ? 1 : 0;
  }
  CHECK(eval::evaluate_generative(engine, tok, *problems, {}).correct == same);
}

TEST_CASE("categorical eval: the accuracy is the letters' argmax at each prompt's last position, by hand from the logits") {
  using Cfg = GptConfig<1, 2, 1, 8>;
  cpu::Cpu cpu;
  const auto tok = engine_test::byte_tokenizer();
  GptWeights<Cfg, cpu::Cpu> weights(cpu, engine_test::byte_vocab);
  cpu::fill_normal(cpu, weights.flat(), 17, 0, 0.0f, 0.5f);
  const std::vector<float> w = to_host(cpu, weights.flat());
  const std::vector<std::vector<std::string>> letters{{"A", "B", "C", "D"}, {"A", "B"}, {"1", "2", "3", "4"}};
  // The prompts leave out the gold answer: any gold renders the same prompt.
  const Quiz unscored(letters, {"A", "A", "1"});
  std::vector<std::vector<tokenizer::TokenId>> prompts;
  std::size_t longest = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    prompts.push_back(tokenizer::render_for_completion(tok, unscored.example(i).conversation));
    longest = std::max(longest, prompts.back().size());
  }
  REQUIRE(prompts[0].size() < prompts[2].size());
  // By hand: each prompt (its last `context` tokens) alone through a model planned for exactly
  // it, the logits at its last position, the highest of its letters'.
  const auto by_hand = [&](std::size_t context) {
    std::vector<std::string> chosen;
    for (std::size_t i = 0; i < 3; ++i) {
      const std::size_t keep = std::min(context, prompts[i].size());
      const std::vector<std::int32_t> ids(prompts[i].end() - static_cast<std::ptrdiff_t>(keep), prompts[i].end());
      Gpt<Cfg, cpu::Cpu> one(cpu, engine_test::byte_vocab, 1, static_cast<std::int64_t>(keep));
      copy_from_host(cpu, one.weights().flat(), std::span<const float>(w));
      Tensor<std::int32_t, cpu::Cpu> x(cpu, {1, static_cast<std::int64_t>(keep)});
      copy_from_host(cpu, x.view(), std::span<const std::int32_t>(ids));
      const std::vector<float> logits = to_host(cpu, one.forward(x.view()));
      const float* last = logits.data() + (keep - 1) * engine_test::byte_vocab;
      std::size_t best = 0;
      for (std::size_t l = 1; l < letters[i].size(); ++l)
        if (last[static_cast<unsigned char>(letters[i][l][0])] > last[static_cast<unsigned char>(letters[i][best][0])]) best = l;
      chosen.push_back(letters[i][best]);
    }
    return chosen;
  };
  const std::vector<std::string> picked = by_hand(longest);
  // Right on the first two, wrong on the third.
  const std::string wrong = picked[2] == "1" ? "2" : "1";
  const Quiz quiz(letters, {picked[0], picked[1], wrong});
  // Two rows a forward: problems 0 and 1 padded to the longer, problem 2 beside a padding row.
  Gpt<Cfg, cpu::Cpu> model(cpu, engine_test::byte_vocab, 2, static_cast<std::int64_t>(longest));
  copy_from_host(cpu, model.weights().flat(), std::span<const float>(w));
  const eval::CategoricalAccuracy r = eval::evaluate_categorical(cpu, model, tok, quiz, 0);
  CHECK(r.accuracy.task == "Quiz");
  CHECK(r.accuracy.total == 3);
  CHECK(r.accuracy.correct == 2);
  CHECK(r.cropped == 0);
  CHECK(eval::evaluate_categorical(cpu, model, tok, Quiz(letters, picked), 0).accuracy.correct == 3);
  CHECK(eval::evaluate_categorical(cpu, model, tok, quiz, 2).accuracy.correct == 2);  // the first two only
  CHECK(eval::evaluate_categorical(cpu, model, tok, quiz, 2).accuracy.total == 2);
  CHECK(eval::longest_prompt(tok, quiz, 0) == longest);

  // A model planned for fewer positions than the longest prompt sees each longer prompt's end.
  const std::size_t context = longest - 4;
  const auto longer = static_cast<std::size_t>(
      std::count_if(prompts.begin(), prompts.end(), [&](const auto& p) { return p.size() > context; }));
  REQUIRE(longer >= 1);
  REQUIRE(longer < 3);
  Gpt<Cfg, cpu::Cpu> short_model(cpu, engine_test::byte_vocab, 2, static_cast<std::int64_t>(context));
  copy_from_host(cpu, short_model.weights().flat(), std::span<const float>(w));
  const Quiz cropped_quiz(letters, by_hand(context));
  const eval::CategoricalAccuracy c = eval::evaluate_categorical(cpu, short_model, tok, cropped_quiz, 0);
  CHECK(c.cropped == longer);
  CHECK(c.accuracy.correct == 3);

  // Refused: a letter of two tokens, and a generative task.
  CHECK_THROWS_WITH_AS(eval::evaluate_categorical(cpu, model, tok, Quiz({{"A", "BB"}}, {"A"}), 0),
                       doctest::Contains("task Quiz: answer letter 'BB' is 2 tokens; each letter must be one token"), Error);
  CHECK_THROWS_WITH_AS(eval::evaluate_categorical(cpu, model, tok, FixedAnswers({"1"}), 0),
                       doctest::Contains("task FixedAnswers is generative"), Error);
}

TEST_CASE("chat_eval: unknown task names are refused with the known ones, and results are written as JSON") {
  CHECK_THROWS_WITH_AS(eval::make_eval_task("arithmatic", 10), doctest::Contains("task 'arithmatic' is unknown; known tasks: arithmetic"), Error);
  for (const char* name : {"arithmetic", "letter-count", "spelling"}) {
    const auto task = eval::make_eval_task(name, 200);
    CHECK(task->size() == 200);
    CHECK(task->name().find("(test)") != std::string::npos);
  }
  CHECK(eval::make_eval_task("letter-count", 0)->size() == 1000);  // "all" of a generated task
  const auto identity = eval::make_eval_task("identity", 200);  // every held-out question, 200 of them or more
  CHECK(identity->size() >= 200);
  CHECK(identity->name() == "OfflineIdentity(test)");
  // Harder arithmetic: 1..5-digit operands, named apart from the default 3 digits.
  const auto five = eval::make_eval_task("arithmetic", 50, {.arithmetic_digits = 5});
  CHECK(five->name() == "OfflineArithmetic(test, 5 digits)");
  std::size_t longest = 0;
  for (std::size_t i = 0; i < five->size(); ++i) longest = std::max(longest, five->example(i).extra.at("problem").size());
  CHECK(longest > 7);  // "999+999" is the longest of 3 digits
  // Harder spelling: invented words of up to 5 syllables (at most 3 x 3 letters by default).
  const auto spell5 = eval::make_eval_task("spelling", 100, {.spelling_syllables = 5});
  CHECK(spell5->name() == "OfflineSpelling(test, 5 syllables)");
  std::size_t longest_word = 0;
  for (std::size_t i = 0; i < spell5->size(); ++i)
    longest_word = std::max(longest_word, spell5->example(i).extra.at("problem").size());
  CHECK(longest_word > 11);  // 11 is "mississippi", the longest built-in word
  const fs::path path = fs::temp_directory_path() / ("nanochat_chat_eval_" + std::to_string(::getpid()) + ".json");
  eval::write_results(path, "sft", {{"A", 3, 4, {0.5, 0.75}, 0.625}, {"B", 0, 2, {}}});
  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  const json::Value doc = json::parse(text.str(), path.string());
  CHECK(doc.find("source")->string("source") == "sft");
  const json::Value* a = doc.find("tasks")->find("A");
  REQUIRE(a != nullptr);
  CHECK(a->find("correct")->whole_number("correct") == 3);
  CHECK(a->find("accuracy")->number("accuracy") == doctest::Approx(0.75));
  CHECK(a->find("sample_accuracy")->number("sample_accuracy") == doctest::Approx(0.625));
  const json::Value* pass = a->find("pass@k");
  REQUIRE(pass != nullptr);
  REQUIRE(pass->array("pass@k").size() == 2);
  CHECK(pass->array("pass@k")[0].number("pass@1") == doctest::Approx(0.5));
  CHECK(doc.find("tasks")->find("B")->find("total")->whole_number("total") == 2);
  fs::remove(path);
}

TEST_CASE("ChatCORE: the mean centered accuracy over nanochat's six tasks, absent when one is missing") {
  std::map<std::string, double, std::less<>> acc = {{"ARC-Easy", 0.5},  {"ARC-Challenge", 0.25}, {"MMLU", 0.4},
                                                    {"GSM8K", 0.1},     {"HumanEval", 0.05},     {"SpellingBee", 0.9}};
  // (0.25/0.75 + 0 + 0.15/0.75 + 0.1 + 0.05 + 0.9) / 6
  const double expected = (1.0 / 3.0 + 0.0 + 0.2 + 0.1 + 0.05 + 0.9) / 6.0;
  REQUIRE(eval::chatcore(acc).has_value());
  CHECK(*eval::chatcore(acc) == doctest::Approx(expected).epsilon(1e-12));
  acc["arithmetic"] = 1.0;  // another task of the run is not part of it
  CHECK(*eval::chatcore(acc) == doctest::Approx(expected).epsilon(1e-12));
  // At chance everywhere: 0; all right: 1.
  for (auto& [name, a] : acc) a = name.starts_with("A") || name == "MMLU" ? 0.25 : 0.0;
  CHECK(*eval::chatcore(acc) == doctest::Approx(0.0));
  for (auto& [name, a] : acc) a = 1.0;
  CHECK(*eval::chatcore(acc) == doctest::Approx(1.0));
  acc.erase("SpellingBee");
  CHECK_FALSE(eval::chatcore(acc).has_value());
  // In the results JSON only when computed.
  const fs::path path = fs::temp_directory_path() / ("nanochat_chatcore_" + std::to_string(::getpid()) + ".json");
  eval::write_results(path, "sft", {{"GSM8K", 1, 4, {0.25}}}, 0.125);
  std::stringstream with;
  with << std::ifstream(path).rdbuf();
  CHECK(json::parse(with.str(), path.string()).find("ChatCORE")->number("ChatCORE") == doctest::Approx(0.125));
  eval::write_results(path, "sft", {{"GSM8K", 1, 4, {0.25}}});
  std::stringstream without;
  without << std::ifstream(path).rdbuf();
  CHECK(json::parse(without.str(), path.string()).find("ChatCORE") == nullptr);
  fs::remove(path);
}

TEST_CASE("chat_eval: HumanEval runs each reply's code with the problem's tests in the sandbox") {
  if (!eval::sandbox_refusal().empty()) {
    nanochat::testing::skip_test(eval::sandbox_refusal());
    return;
  }
  // openai/human-eval's JSONL: has_close_elements and truncate_number, a test each.
  const tasks::HumanEval task(fs::path(NANOCHAT_FIXTURES) / "tasks" / "humaneval.jsonl");
  REQUIRE(task.size() == 2);
  CHECK(task.has_scorer());
  std::size_t truncate_index = 2;
  for (std::size_t i = 0; i < task.size(); ++i) {
    const tasks::Example e = task.example(i);
    const std::string entry = e.extra.at("entry_point");
    if (entry == "truncate_number") truncate_index = i;
    CAPTURE(entry);
    CHECK(task.evaluate(e, std::get<std::string>(e.conversation.messages.at(1).content)));  // prompt + canonical solution
    CHECK_FALSE(task.evaluate(e, "```python\ndef " + entry + "(*args):\n    return None\n```"));
  }
  // An endless reply is killed at nanochat's 5 s.
  CHECK_FALSE(task.evaluate(task.example(0), "def f():\n    while True:\n        pass\nf()\n"));
  REQUIRE(truncate_index < 2);
  // Through chat_eval: one scripted reply, prose around a fenced block, solves truncate_number only.
  const auto tok = engine_test::byte_tokenizer();
  const auto end = static_cast<std::int32_t>(tok.encode_special("<|assistant_end|>"));
  engine_test::ScriptedModel model(
      script_of({bytes_of("Here it is:\n```python\ndef truncate_number(number: float) -> float:\n    return number % 1.0\n```\nDone."),
                 {end}}),
      engine_test::byte_vocab);
  engine::Engine engine(model, tok);
  eval::ChatEvalOptions options;
  options.max_new_tokens = 256;
  std::FILE* transcript = std::tmpfile();
  REQUIRE(transcript != nullptr);
  options.transcript = transcript;
  const eval::TaskAccuracy r = eval::evaluate_generative(engine, tok, task, options);
  CHECK(r.total == 2);
  CHECK(r.correct == 1);
  std::rewind(transcript);
  std::string lines(8192, '\0');
  lines.resize(std::fread(lines.data(), 1, lines.size(), transcript));
  std::fclose(transcript);
  CHECK(lines.find("HumanEval " + std::to_string(truncate_index) + " right: ") != std::string::npos);
  CHECK(lines.find("HumanEval " + std::to_string(1 - truncate_index) + " wrong: ") != std::string::npos);
  // By name, from the Hub's parquet under the base directory.
  const fs::path base = fs::temp_directory_path() / ("nanochat_humaneval_base_" + std::to_string(::getpid()));
  fs::create_directories(base);
  fs::create_directory_symlink(fs::path(NANOCHAT_FIXTURES) / "tasks", base / "task_data");
  const nanochat::testing::ScopedEnv scoped("NANOCHAT_BASE_DIR", base.string());
  const auto named = eval::make_eval_task("HumanEval", 0);
  CHECK(named->name() == "HumanEval");
  CHECK(named->size() == 2);
  CHECK(named->has_scorer());
  fs::remove_all(base);
}

#ifdef NANOCHAT_CHAT_EVAL
TEST_CASE("chat_eval program: accuracy of a tiny checkpoint per task, written as JSON, and bad flags refused") {
  using nanochat::testing::Run;
  using nanochat::testing::run;
  const fs::path dir = fs::temp_directory_path() / ("nanochat_chat_eval_prog_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "chatsft_checkpoints" / "d2");
  tokenizer::save_tokenizer(engine_test::byte_tokenizer(), dir / "tokenizer");
  cpu::Cpu cpu;
  GptWeights<NanochatConfig<2>, cpu::Cpu> w(cpu, engine_test::byte_vocab);
  cpu::fill_normal(cpu, w.flat(), 7, 0, 0.0f, 0.05f);
  save_weights(cpu, w, dir / "chatsft_checkpoints" / "d2" / "model_000003.safetensors", 64);
  std::ofstream(dir / "chatsft_checkpoints" / "d2" / "meta_000003.json") << "{\"step\": 3}\n";
  const std::string prog = "NANOCHAT_BASE_DIR='" + dir.string() + "' " + NANOCHAT_CHAT_EVAL;

  const Run ok = run(prog + " -a 'arithmetic|letter-count' -x 3 --max-new-tokens 4");
  CAPTURE(ok.output);
  CHECK(ok.status == 0);
  CHECK(ok.output.find("OfflineArithmetic(test) accuracy: ") != std::string::npos);
  CHECK(ok.output.find("OfflineLetterCount(test) accuracy: ") != std::string::npos);
  CHECK(ok.output.find("(0/3)") != std::string::npos);  // random weights state no answer in 4 tokens
  CHECK(fs::exists(dir / "chat_eval" / "sft.json"));
  // Its report-card section, by the names -a takes; not all of nanochat's six ran: no ChatCORE.
  const report::Section section = report::read_section(dir / "report" / "chat-evaluation-sft.md");
  CHECK(section.title == "Chat evaluation sft");
  CHECK(section.metric("arithmetic") == "0.0000");
  CHECK(section.metric("letter-count") == "0.0000");
  CHECK(section.metric("max-problems") == "3");
  CHECK(section.metric("ChatCORE").empty());
  CHECK(ok.output.find("ChatCORE") == std::string::npos);
  const Run sampled = run(prog + " -a arithmetic --arithmetic-digits 5 -x 2 -n 3 -t 1 --max-new-tokens 4");
  CAPTURE(sampled.output);
  CHECK(sampled.status == 0);
  CHECK(sampled.output.find("OfflineArithmetic(test, 5 digits) accuracy: ") != std::string::npos);
  CHECK(sampled.output.find(", pass@3: ") != std::string::npos);
  CHECK(sampled.output.find("OfflineArithmetic(test, 5 digits) right samples: ") != std::string::npos);
  const Run unknown = run(prog + " -a 'arithmetic|nope'");
  CHECK(unknown.status != 0);
  CHECK(unknown.output.find("task 'nope' is unknown") != std::string::npos);
  const Run empty = run(prog + " -a 'arithmetic||spelling'");
  CHECK(empty.status != 0);
  CHECK(empty.output.find("has an empty name") != std::string::npos);
  // nanochat's categorical tasks are known; without their dataset the error names it.
  const Run no_arc = run(prog + " -a ARC-Easy");
  CHECK(no_arc.status != 0);
  CHECK(no_arc.output.find("ARC") != std::string::npos);
  CHECK(no_arc.output.find("is unknown") == std::string::npos);
  const Run missing = run(prog + " -i mid");
  CHECK(missing.status != 0);
  CHECK(missing.output.find("mid_checkpoints") != std::string::npos);
  const Run digits = run(prog + " --arithmetic-digits 10");
  CHECK(digits.status != 0);
  CHECK(digits.output.find("flag --arithmetic-digits") != std::string::npos);
  const Run negative = run(prog + " -x -1");
  CHECK(negative.status != 0);
  CHECK(negative.output.find("flag --max-problems") != std::string::npos);
  fs::remove_all(dir);
}
#endif
