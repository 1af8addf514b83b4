// The chat tasks: Python's random reproduced, TaskMixture/TaskSequence/slices, each dataset
// reader on small files in its published format (tests/fixtures/tasks, written by
// tests/reference/make_task_fixtures.py) with the ids and masks nanochat's rendering gives,
// clear errors for missing and malformed files, and disjoint held-out splits.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "data/temp_dir.hpp"
#include "error_text.hpp"
#include "scoped_env.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/core/read_file.hpp"
#include "nanochat/engine/calculator.hpp"
#include "nanochat/tasks/arc.hpp"
#include "nanochat/tasks/custom_json.hpp"
#include "nanochat/tasks/gsm8k.hpp"
#include "nanochat/tasks/held_out_split.hpp"
#include "nanochat/tasks/hub_datasets.hpp"
#include "nanochat/tasks/humaneval.hpp"
#include "nanochat/tasks/mmlu.hpp"
#include "nanochat/tasks/numpy_random.hpp"
#include "nanochat/tasks/offline_arithmetic.hpp"
#include "nanochat/tasks/offline_identity.hpp"
#include "nanochat/tasks/offline_words.hpp"
#include "nanochat/tasks/smoltalk.hpp"
#include "nanochat/tasks/spelling_bee.hpp"
#include "nanochat/tasks/task_mixture.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"

namespace tk = nanochat::tokenizer;
namespace ts = nanochat::tasks;
using nanochat::json::Value;

namespace {

const std::filesystem::path kDir = std::filesystem::path(NANOCHAT_FIXTURES) / "tasks";
const std::filesystem::path kHub = kDir / "hub";  // the Hugging Face splits, laid out as hub_datasets.hpp says

const tk::Tokenizer& tokenizer() {
  static const tk::Tokenizer tok = [] {
    const std::string ranks = nanochat::read_file(std::filesystem::path(NANOCHAT_FIXTURES) / "tokenizer/ranks_2048.tiktoken");
    return tk::Tokenizer(tk::parse_ranks(ranks, "fixture"), {tk::kSpecialTokens.begin(), tk::kSpecialTokens.end()});
  }();
  return tok;
}

const Value& expected() {
  static const Value value = nanochat::json::parse(nanochat::read_file(kDir / "expected.json"), "expected.json");
  return value;
}

std::vector<std::uint64_t> numbers(const Value& list) {
  std::vector<std::uint64_t> out;
  for (const Value& v : list.array("list")) out.push_back(v.whole_number("number"));
  return out;
}

// Every example of task renders to the reference's ids and mask, in order.
void check_rendering(const ts::Task& task, const std::string& name) {
  const auto& cases = expected().find("tasks")->find(name)->array(name);
  REQUIRE(task.size() >= cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(name);
    CAPTURE(i);
    const tk::RenderedConversation r = tk::render_conversation(tokenizer(), task.example(i).conversation);
    const auto ids = numbers(*cases[i].find("ids"));
    const auto mask = numbers(*cases[i].find("mask"));
    CHECK(std::vector<std::uint64_t>(r.ids.begin(), r.ids.end()) == ids);
    CHECK(std::vector<std::uint64_t>(r.mask.begin(), r.mask.end()) == mask);
  }
}

std::vector<std::string> fixture_words() { return ts::read_word_list(kDir / "words.txt"); }

// A task whose example i says which task and index it is.
class LabelledTask final : public ts::Task {
 public:
  LabelledTask(int id, std::size_t n) : id_(id), n_(n) {}
  std::string name() const override { return "labelled"; }
  std::size_t size() const override { return n_; }
  ts::Example example(std::size_t i) const override {
    check_index(i);
    ts::Example e;
    e.conversation.messages.push_back({"user", nanochat::cat(id_, ":", i)});
    e.conversation.messages.push_back({"assistant", std::string("ok")});
    return e;
  }

 private:
  int id_;
  std::size_t n_;
};

std::string label(const ts::Task& task, std::size_t i) {
  return std::get<std::string>(task.example(i).conversation.messages[0].content);
}

using nanochat::testing::ScopedEnv;
using nanochat::testing::error_of;


}  // namespace

TEST_CASE("tasks/random: PythonRandom reproduces CPython's random.Random streams") {
  for (const auto& [seed_text, stream] : expected().find("random")->object("random")) {
    CAPTURE(seed_text);
    const bool huge = seed_text.size() > 18;  // 2**63 + 12345 does not fit int64
    ts::PythonRandom rng = huge ? ts::PythonRandom::from_unsigned(std::stoull(seed_text)) : ts::PythonRandom(std::stoll(seed_text));
    for (std::uint64_t u : numbers(*stream.find("u32"))) CHECK(rng.getrandbits(32) == u);
    for (const Value& r : stream.find("random")->array("random")) CHECK(rng.random() == r.number("random"));
    for (std::uint64_t u : numbers(*stream.find("bits40"))) CHECK(rng.getrandbits(40) == u);
    const std::uint64_t bounds[] = {1, 7, 1000, 370105};
    const auto below = numbers(*stream.find("randbelow"));
    for (std::size_t i = 0; i < below.size(); ++i) CHECK(rng.randbelow(bounds[i]) == below[i]);
  }
}

TEST_CASE("tasks/random: PythonRandom::sample is CPython's random.sample, pool and set branches alike") {
  const Value cases = nanochat::json::parse(nanochat::read_file(kDir / "python_sample.json"), "python_sample.json");
  std::size_t checked = 0;
  for (const Value& c : cases.array("cases")) {
    const std::uint64_t seed = c.find("seed")->whole_number("seed");
    const std::size_t n = c.find("n")->whole_number("n"), k = c.find("k")->whole_number("k");
    CAPTURE(seed);
    CAPTURE(n);
    CAPTURE(k);
    ts::PythonRandom rng = ts::PythonRandom::from_unsigned(seed);
    const std::vector<std::uint64_t> want = numbers(*c.find("sample"));
    const std::vector<std::size_t> got = rng.sample_positions(n, k);
    CHECK(std::vector<std::uint64_t>(got.begin(), got.end()) == want);
    CHECK(rng.getrandbits(32) == c.find("next")->whole_number("next"));  // the stream goes on as CPython's
    std::vector<std::size_t> population(n);
    for (std::size_t i = 0; i < n; ++i) population[i] = 1000 + i;
    ts::PythonRandom again = ts::PythonRandom::from_unsigned(seed);
    const std::vector<std::size_t> values = again.sample(population, k);
    for (std::size_t i = 0; i < k; ++i) CHECK(values[i] == 1000 + want[i]);
    ++checked;
  }
  CHECK(checked == 78);
  ts::PythonRandom rng(1);
  CHECK_THROWS_WITH_AS(rng.sample_positions(3, 4), doctest::Contains("sample of 4 larger than the population of 3"),
                       nanochat::Error);
}

TEST_CASE("tasks/random: NumpyRandom is numpy's default_rng, so shuffled_rows is Hugging Face's shuffle") {
  const Value fixture = nanochat::json::parse(nanochat::read_file(kDir / "numpy_random.json"), "numpy_random.json");
  const auto hex_words = [](const Value& list) {
    std::vector<std::uint64_t> out;
    for (const Value& v : list.array("words")) out.push_back(std::stoull(v.string("word"), nullptr, 16));
    return out;
  };
  for (const auto& [seed_text, words] : fixture.find("seed_state")->object("seed_state")) {
    CAPTURE(seed_text);
    const auto state = ts::numpy_seed_state(std::stoull(seed_text));
    CHECK(std::vector<std::uint64_t>(state.begin(), state.end()) == hex_words(words));
    ts::NumpyRandom rng(std::stoull(seed_text));
    for (std::uint64_t raw : hex_words(*fixture.find("raw")->find(seed_text))) CHECK(rng.next64() == raw);
  }
  for (const Value& c : fixture.find("permutations")->array("permutations")) {
    const std::uint64_t seed = std::stoull(c.find("seed")->string("seed"));
    const std::size_t n = c.find("n")->whole_number("n");
    CAPTURE(seed);
    CAPTURE(n);
    const auto perm = ts::NumpyRandom(seed).permutation(n);
    if (const Value* all = c.find("all")) {
      CHECK(perm == numbers(*all));
      continue;
    }
    const auto first = numbers(*c.find("first")), last = numbers(*c.find("last"));
    CHECK(std::vector<std::uint64_t>(perm.begin(), perm.begin() + 50) == first);
    CHECK(std::vector<std::uint64_t>(perm.end() - 50, perm.end()) == last);
    std::string joined;
    for (std::uint64_t v : perm) joined += (joined.empty() ? "" : ",") + std::to_string(v);
    CHECK(ts::fnv1a64(joined) == std::stoull(c.find("fnv1a64")->string("fnv1a64"), nullptr, 16));
    if (seed == 42) {  // shuffled_rows is the same order, as the readers' row indices
      const auto rows = ts::shuffled_rows(n);
      CHECK(std::equal(rows.begin(), rows.end(), perm.begin(), perm.end()));
    }
  }
  // next32 serves the low half of a 64-bit output, then the high half.
  ts::NumpyRandom a(7), b(7);
  const std::uint64_t word = a.next64();
  CHECK(b.next32() == static_cast<std::uint32_t>(word));
  CHECK(b.next32() == static_cast<std::uint32_t>(word >> 32));
  CHECK(b.next64() == a.next64());
  CHECK(ts::shuffled_rows(0).empty());
  CHECK(error_of([] { ts::shuffled_rows(3, -1); }).find("seed -1 is negative") != std::string::npos);
}

TEST_CASE("tasks/mixture: nanochat's shuffled order, every example once, deterministic") {
  const auto sizes = numbers(*expected().find("mixture")->find("sizes"));
  std::vector<ts::TaskPtr> parts;
  for (std::size_t t = 0; t < sizes.size(); ++t) parts.push_back(std::make_shared<LabelledTask>(int(t), sizes[t]));
  const ts::TaskMixture mixture(parts);
  const auto& order = expected().find("mixture")->find("order")->array("order");
  REQUIRE(mixture.size() == order.size());
  std::set<std::string> seen;
  for (std::size_t i = 0; i < order.size(); ++i) {
    const auto pair = numbers(order[i]);
    CHECK(label(mixture, i) == nanochat::cat(pair[0], ":", pair[1]));
    const ts::ExampleSource from = mixture.source(i);
    CHECK(from.task == parts[pair[0]].get());
    CHECK(from.index == pair[1]);
    seen.insert(label(mixture, i));
  }
  CHECK(seen.size() == 15);  // coverage: 5 + 0 + 3 + 7 distinct examples
  const ts::TaskMixture again(parts);
  for (std::size_t i = 0; i < mixture.size(); ++i) CHECK(label(again, i) == label(mixture, i));
  const ts::TaskMixture other_seed(parts, 7);
  bool differs = false;
  for (std::size_t i = 0; i < mixture.size(); ++i) differs = differs || label(other_seed, i) != label(mixture, i);
  CHECK(differs);
  CHECK_THROWS_WITH_AS(mixture.example(15), doctest::Contains("example 15 out of range (15 examples)"), nanochat::Error);

  // At scale (100K examples, the shuffle's randbelow takes 17 bits).
  const ts::TaskMixture big({std::make_shared<LabelledTask>(0, 70000), std::make_shared<LabelledTask>(1, 30000)});
  const auto& head = expected().find("mixture_100k_head")->array("head");
  for (std::size_t i = 0; i < head.size(); ++i) {
    const auto pair = numbers(head[i]);
    CHECK(big.source(i).index == pair[1]);
    CHECK(big.source(i).task == big.tasks()[pair[0]].get());
  }
  std::vector<std::uint8_t> hit(100000, 0);
  for (std::size_t i = 0; i < big.size(); ++i) {
    const auto from = big.source(i);
    ++hit[(from.task == big.tasks()[0].get() ? 0 : 70000) + from.index];
  }
  CHECK(std::count(hit.begin(), hit.end(), 1) == 100000);
}

TEST_CASE("tasks/mixture: a task listed twice is seen twice, TaskSequence keeps order") {
  auto a = std::make_shared<LabelledTask>(0, 3);
  const ts::TaskMixture twice({a, a});
  std::multiset<std::string> labels;
  for (std::size_t i = 0; i < twice.size(); ++i) labels.insert(label(twice, i));
  CHECK(twice.size() == 6);
  CHECK(labels.count("0:1") == 2);

  const ts::TaskSequence seq({a, std::make_shared<LabelledTask>(1, 0), std::make_shared<LabelledTask>(2, 2)});
  REQUIRE(seq.size() == 5);
  const char* want[] = {"0:0", "0:1", "0:2", "2:0", "2:1"};
  for (std::size_t i = 0; i < 5; ++i) CHECK(label(seq, i) == want[i]);
  CHECK_THROWS_AS(seq.example(5), nanochat::Error);
}

TEST_CASE("tasks/slice: start, stop, step as nanochat's Task view") {
  auto base = std::make_shared<LabelledTask>(0, 10);
  const auto view = ts::slice(base, {.start = 2, .stop = 9, .step = 3});
  REQUIRE(view->size() == 3);  // ceil((9 - 2) / 3)
  CHECK(label(*view, 0) == "0:2");
  CHECK(label(*view, 1) == "0:5");
  CHECK(label(*view, 2) == "0:8");
  CHECK(ts::slice(base, {.start = 4})->size() == 6);
  CHECK(ts::slice(base, {.start = 4, .stop = 4})->size() == 0);
  CHECK(label(*ts::slice(ts::slice(base, {.start = 1, .step = 2}), {.start = 1, .step = 2}), 1) == "0:7");
  CHECK_THROWS_WITH_AS(ts::slice(base, {.start = 5, .stop = 3}), doctest::Contains("before start"), nanochat::Error);
  CHECK_THROWS_WITH_AS(ts::slice(base, {.stop = 11}), doctest::Contains("past its 10 examples"), nanochat::Error);
  CHECK_THROWS_WITH_AS(ts::slice(base, {.step = 0}), doctest::Contains("step must be at least 1"), nanochat::Error);
  CHECK_THROWS_AS(view->example(3), nanochat::Error);
}

TEST_CASE("tasks/gsm8k: parquet and JSONL rows become calculator tool calls") {
  const ts::GSM8K parquet(kHub / "openai/gsm8k/main/train");
  const ts::GSM8K jsonl(kDir / "gsm8k_train.jsonl");
  REQUIRE(parquet.size() == 4);
  check_rendering(parquet, "GSM8K");
  check_rendering(ts::GSM8K(kHub / "openai/gsm8k/main/train/train-00000-of-00001.parquet"), "GSM8K");
  check_rendering(jsonl, "GSM8K");
  const auto parts = ts::gsm8k_solution_parts("a <<2*3=6>>6 b <<x>> <q>\n#### 6");
  REQUIRE(parts.size() == 7);
  CHECK(parts[1].type == "python");
  CHECK(parts[1].text == "2*3");
  CHECK(parts[2].text == "6");
  CHECK(parts[4].text == "x");
  CHECK(parts[5].text == "");
  CHECK(parts[6].text == " <q>\n#### 6");
  // Scoring: the "#### n" answer, commas dropped (the fixture has one "#### 1,248").
  for (std::size_t i = 0; i < parquet.size(); ++i) {
    const ts::Example e = parquet.example(i);
    const std::string answer = *ts::extract_answer(ts::final_text_part(e, "test"));
    CHECK(parquet.evaluate(e, "so it is\n#### " + answer));
    CHECK_FALSE(parquet.evaluate(e, "#### 99999"));
    CHECK_FALSE(parquet.evaluate(e, "no marker " + answer));
    CHECK(parquet.reward(e, "#### " + answer) == 1.0);
  }
  CHECK(ts::extract_answer("x #### -1,234.5 y") == "-1234.5");
  CHECK(ts::extract_answer("#### - 3 then #### 4") == "4");
  CHECK(ts::extract_answer("none") == std::nullopt);
}

TEST_CASE("tasks/spelling: SpellingBee and SimpleSpelling are nanochat's conversations") {
  const auto words = fixture_words();
  CHECK(words == std::vector<std::string>{"strawberry", "banana", "mississippi", "zyzzyva", "cat", "bookkeeper"});
  check_rendering(ts::SpellingBee(words, 12, ts::Split::train), "SpellingBee/train");
  check_rendering(ts::SpellingBee(words, 4, ts::Split::test), "SpellingBee/test");
  check_rendering(ts::SimpleSpelling(words, 6, ts::Split::train), "SimpleSpelling/train");
  check_rendering(ts::SimpleSpelling(words, 3, ts::Split::test), "SimpleSpelling/test");
  const ts::SpellingBee bee(words, 3, ts::Split::train);
  const ts::Example e = bee.example(0);
  const std::string answer = *ts::extract_answer(ts::final_text_part(e, "test"));
  CHECK(bee.evaluate(e, "#### " + answer));
  CHECK_FALSE(bee.evaluate(e, "#### 1" + answer));
  // The calculator tool gives the python_output the conversation holds.
  const auto& parts = std::get<std::vector<tk::MessagePart>>(e.conversation.messages[1].content);
  CHECK(nanochat::engine::use_calculator(parts[2].text) == parts[3].text);
}

TEST_CASE("tasks/readers: SmolTalk, CustomJSON, MMLU, ARC, HumanEval in their published formats") {
  // SmolTalk's parquet in two shards read in name order, and its rows as JSONL.
  const ts::SmolTalk smoltalk(kHub / "HuggingFaceTB/smol-smoltalk/default/train");
  CHECK(smoltalk.size() == 3);
  check_rendering(smoltalk, "SmolTalk");
  check_rendering(ts::SmolTalk(kDir / "smoltalk.jsonl"), "SmolTalk");
  CHECK(ts::SmolTalk(kHub / "HuggingFaceTB/smol-smoltalk/default/train/train-00000-of-00002.parquet").size() == 2);
  check_rendering(ts::CustomJSON(kDir / "identity.jsonl"), "CustomJSON");

  // MMLU: the Hub's all/test, its auxiliary_train (rows wrapped in a struct `train`) and the
  // release's CSVs hold the same questions.
  const ts::MMLU mmlu(kHub / "cais/mmlu/all/test");
  REQUIRE(mmlu.size() == 3);
  check_rendering(mmlu, "MMLU");
  check_rendering(ts::MMLU(kHub / "cais/mmlu/auxiliary_train/train"), "MMLU");
  check_rendering(ts::MMLU(kDir / "mmlu" / "test"), "MMLU");
  CHECK(mmlu.eval_type() == ts::EvalType::categorical);
  std::set<std::string> subjects;
  for (std::size_t i = 0; i < mmlu.size(); ++i) {
    const ts::Example e = mmlu.example(i);
    subjects.insert(e.extra.at("subject"));
    CHECK(e.letters == std::vector<std::string>{"A", "B", "C", "D"});
    const std::string gold = std::get<std::string>(e.conversation.messages[1].content);
    CHECK(mmlu.evaluate(e, gold));
    CHECK_FALSE(mmlu.evaluate(e, gold == "A" ? "B" : "A"));
  }
  CHECK(subjects == std::set<std::string>{"astronomy", "virology"});
  CHECK(ts::MMLU(kDir / "mmlu" / "test").example(0).extra.at("subject") == mmlu.example(0).extra.at("subject"));

  // ARC: the Hub's struct<text: list, label: list> choices and AI2's JSONL, the same questions.
  const ts::ARC arc(kHub / "allenai/ai2_arc/ARC-Easy/train");
  REQUIRE(arc.size() == 3);
  CHECK(arc.name() == "ARC-Easy-train");
  check_rendering(arc, "ARC");
  check_rendering(ts::ARC(kDir / "arc_easy.jsonl"), "ARC");
  std::set<std::size_t> choice_counts;
  for (std::size_t i = 0; i < arc.size(); ++i) choice_counts.insert(arc.example(i).letters.size());
  CHECK(choice_counts == std::set<std::size_t>{4, 5});

  const ts::HumanEval humaneval(kDir / "humaneval.jsonl");
  check_rendering(humaneval, "HumanEval");
  check_rendering(ts::HumanEval(kHub / "openai/openai_humaneval/openai_humaneval/test"), "HumanEval");
  CHECK(humaneval.has_scorer());  // its scoring runs the code: tests/engine/test_chat_eval.cpp
  for (std::size_t i = 0; i < humaneval.size(); ++i) {
    const ts::Example e = humaneval.example(i);
    if (e.extra.at("entry_point") != "has_close_elements") continue;
    const std::string program =
        ts::humaneval_program(e, "Sure:\n```python\ndef has_close_elements(n, t):\n    return False\n```\nDone.");
    CHECK(program.starts_with("from typing import List\n\ndef has_close_elements(n, t):\n    return False\n\n"));
    CHECK(program.ends_with("\ncheck(has_close_elements)"));
    CHECK(ts::humaneval_program(e, "  x = 1\n").find("\n\nx = 1\n\n") != std::string::npos);
  }
}

TEST_CASE("tasks/hub: every split nanochat loads has its own directory under task_data/hub") {
  std::set<std::filesystem::path> dirs;
  for (const ts::HubSplit& split : ts::hub_splits) {
    CAPTURE(ts::hub_split_name(split));
    CHECK_FALSE(split.repo.empty());
    CHECK_FALSE(split.config.empty());
    CHECK_FALSE(split.split.empty());
    dirs.insert(ts::hub_split_dir(split));
  }
  CHECK(dirs.size() == ts::hub_splits.size());
  CHECK(ts::hub_split_dir(ts::hub_splits[0]) == ts::task_data_dir() / "hub" / "openai" / "gsm8k" / "main" / "train");
}

TEST_CASE("tasks/readers: a missing dataset names the expected path, a malformed one the file and line") {
  nanochat::data::testing::TempDir dir;
  const auto missing = dir.path() / "gsm8k" / "main" / "train-00000-of-00001.parquet";
  CHECK(error_of([&] { ts::GSM8K{missing}; }).find("GSM8K: missing " + missing.string() +
                                                   "; run download --tasks (online) or put openai/gsm8k") != std::string::npos);
  const std::string gsm8k = error_of([&] { ts::GSM8K{missing}; });
  const std::size_t put_at = gsm8k.rfind(" at " + missing.string());
  CHECK(put_at != std::string::npos);
  CHECK(put_at > gsm8k.find("; run download --tasks"));
  CHECK(error_of([&] { ts::MMLU{dir.path() / "nope"}; }).find("MMLU: missing " + (dir.path() / "nope").string()) !=
        std::string::npos);
  const std::string identity = error_of([&] { ts::CustomJSON{dir.path() / "id.jsonl"}; });
  CHECK(identity.find("; run download --tasks (online) or put ") != std::string::npos);
  CHECK(identity.find("identity_conversations.jsonl") != std::string::npos);
  const std::string words = error_of([&] { ts::read_word_list(dir.path() / "words"); });
  CHECK(words.find("run download --words-alpha (nanochat's list, saved as ") != std::string::npos);
  CHECK(words.find("wamerican") != std::string::npos);
  // A Hub split's directory: its *.parquet in name order, or the remedy naming the Hub's files.
  const ts::HubSplit& train = ts::hub_splits[0];
  const auto split_dir = dir.path() / "hub_split";
  CHECK(error_of([&] { ts::hub_split_files(train, "GSM8K", split_dir); }).starts_with(
        "GSM8K: no *.parquet in " + split_dir.string() + "; run download --tasks (online) or put openai/gsm8k's " +
            "main/train parquet shards (https://huggingface.co/datasets/openai/gsm8k/tree/refs%2Fconvert%2Fparquet/" +
            "main/train) at " + split_dir.string()));
  std::filesystem::create_directories(split_dir / "0002.parquet.d");
  dir.write("hub_split/0001.parquet", "x");
  dir.write("hub_split/0000.parquet", "x");
  dir.write("hub_split/0003.parquet.1234.tmp", "x");
  CHECK(ts::hub_split_files(train, "GSM8K", split_dir) ==
        std::vector<std::filesystem::path>{split_dir / "0000.parquet", split_dir / "0001.parquet"});
  // The readers' default, a split directory: missing, or without shards, names the remedy too.
  const auto no_split = dir.path() / "hub" / "openai" / "gsm8k" / "main" / "train";
  CHECK(error_of([&] { ts::GSM8K{no_split}; }).find("GSM8K: missing " + no_split.string() +
                                                    "; run download --tasks (online) or put openai/gsm8k's parquet shards") !=
        std::string::npos);
  const std::string no_shards = error_of([&] { ts::SmolTalk{dir.path()}; });
  CHECK(no_shards.starts_with("SmolTalk: no *.parquet in " + dir.path().string() +
                              "; run download --tasks (online) or put HuggingFaceTB/smol-smoltalk's parquet shards"));
  CHECK(no_shards.find("or a JSONL of its rows") != std::string::npos);
  CHECK(error_of([&] { ts::ARC{dir.path() / "a.parquet"}; }).find("put allenai/ai2_arc's parquet shards") !=
        std::string::npos);
  CHECK(error_of([&] { ts::HumanEval{dir.path() / "h.jsonl"}; }).find("HumanEval: missing " + (dir.path() / "h.jsonl").string()) !=
        std::string::npos);

  const auto bad_json = dir.write("g.jsonl", "{\"question\": \"q\", \"answer\": \"a\"}\n\n{\"question\": \"q\"\n");
  CHECK(error_of([&] { ts::GSM8K{bad_json}; }).find(bad_json.string() + ":3") != std::string::npos);
  const auto no_answer = dir.write("h.jsonl", "{\"question\": \"q\"}\n");
  CHECK(error_of([&] { ts::GSM8K{no_answer}; }).find(no_answer.string() + ":1: no \"answer\"") != std::string::npos);
  const auto roles = dir.write("c.jsonl", "[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"}]\n");
  CHECK(error_of([&] { ts::CustomJSON{roles}; }).find(roles.string() + ":1: message 1 has role \"user\" but should be assistant") !=
        std::string::npos);
  const auto short_chat = dir.write("s.jsonl", "{\"messages\": [{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"u\"}]}\n");
  CHECK(error_of([&] { ts::SmolTalk{short_chat}; }).find("at least 2 messages") != std::string::npos);
  const auto arc_bad = dir.write("a.jsonl",
                                 "{\"question\": {\"stem\": \"q\", \"choices\": [{\"text\": \"t\", \"label\": \"A\"}]}, \"answerKey\": \"B\"}\n");
  CHECK(error_of([&] { ts::ARC{arc_bad}; }).find(arc_bad.string() + ":1: answerKey 'B'") != std::string::npos);
  std::filesystem::create_directories(dir.path() / "test");
  const auto csv = dir.write("test/x_test.csv", "q,a,b,c,d,A\n\"q2\",a,b,c,d,E\n");
  CHECK(error_of([&] { ts::MMLU{dir.path() / "test"}; }).find(csv.string() + ": record 2: answer 'E'") != std::string::npos);
  dir.write("test/x_test.csv", "q,a,b,c,A\n");
  CHECK(error_of([&] { ts::MMLU{dir.path() / "test"}; }).find("record 1 has 5 fields") != std::string::npos);
  dir.write("test/x_test.csv", "\"q,a,b,c,d,A\n");
  CHECK(error_of([&] { ts::MMLU{dir.path() / "test"}; }).find("quoted field is not closed") != std::string::npos);
  const auto parquet_bad = dir.write("bad.parquet", "PAR1 not really");
  CHECK(error_of([&] { ts::GSM8K{parquet_bad}; }).find(parquet_bad.string()) != std::string::npos);
  // Parquet of the wrong shape: the error names the file, and the row where the shape breaks.
  const auto gsm8k_shard = kHub / "openai/gsm8k/main/train/train-00000-of-00001.parquet";
  CHECK(error_of([&] { ts::SmolTalk{gsm8k_shard}; }).find(gsm8k_shard.string() + ": no field named 'messages' (the fields are: question, answer)") !=
        std::string::npos);
  const auto humaneval_shard = kHub / "openai/openai_humaneval/openai_humaneval/test/test-00000-of-00001.parquet";
  CHECK(error_of([&] { ts::MMLU{humaneval_shard}; }).find("no field named 'question'") != std::string::npos);
  const auto mmlu_shard = kHub / "cais/mmlu/all/test/test-00000-of-00001.parquet";
  CHECK(error_of([&] { ts::GSM8K{mmlu_shard}; }).find(mmlu_shard.string() + ": row 0: \"answer\" must be a string") !=
        std::string::npos);
}

TEST_CASE("tasks/readers: the default paths are the Hub splits' directories") {
  // BASE/task_data is the fixtures' directory, whose hub/ holds the splits the fixtures have.
  nanochat::data::testing::TempDir base;
  std::filesystem::create_directory_symlink(kDir, base.path() / "task_data");
  const ScopedEnv scoped("NANOCHAT_BASE_DIR", base.path().c_str());
  const auto hub = base.path() / "task_data" / "hub";
  CHECK(ts::SmolTalk::default_path("test") == hub / "HuggingFaceTB/smol-smoltalk/default/test");
  CHECK(ts::MMLU::default_path("val") == hub / "cais/mmlu/all/validation");
  CHECK(ts::MMLU::default_path("dev") == hub / "cais/mmlu/all/dev");
  CHECK(ts::ARC::default_path("ARC-Challenge", "Dev") == hub / "allenai/ai2_arc/ARC-Challenge/validation");
  CHECK(ts::ARC::default_path("ARC-Easy", "test") == hub / "allenai/ai2_arc/ARC-Easy/test");
  CHECK(ts::GSM8K::default_path("test") == hub / "openai/gsm8k/main/test");
  check_rendering(ts::SmolTalk(ts::SmolTalk::default_path("train")), "SmolTalk");
  check_rendering(ts::MMLU(ts::MMLU::default_path("test")), "MMLU");
  check_rendering(ts::MMLU(ts::MMLU::default_path("auxiliary_train")), "MMLU");
  check_rendering(ts::ARC(ts::ARC::default_path("ARC-Easy", "Train")), "ARC");
  check_rendering(ts::GSM8K(ts::GSM8K::default_path("train")), "GSM8K");
  check_rendering(ts::HumanEval(ts::HumanEval::default_path()), "HumanEval");
  // Every default path is a split of the table the downloader fills.
  for (const ts::HubSplit& split : ts::hub_splits) CHECK(!split.repo.empty());
  CHECK(error_of([&] { ts::MMLU::default_path("train"); }).find("cais/mmlu: no split 'train' of config 'all'") !=
        std::string::npos);
}

TEST_CASE("tasks/readers: an explicit path needs no base directory") {
  const ScopedEnv no_base("NANOCHAT_BASE_DIR", nullptr);
  const ScopedEnv no_home("HOME", nullptr);
  CHECK(ts::SmolTalk(kHub / "HuggingFaceTB/smol-smoltalk/default/train").size() == 3);
  CHECK(ts::MMLU(kHub / "cais/mmlu/all/test").size() == 3);
}

TEST_CASE("tasks/offline: conversations match the reference and the calculator") {
  check_rendering(ts::OfflineArithmetic({.seed = 7, .size = 8, .split = ts::Split::train}), "OfflineArithmetic/train");
  check_rendering(ts::OfflineArithmetic({.seed = 7, .size = 4, .split = ts::Split::test}), "OfflineArithmetic/test");
  check_rendering(ts::OfflineLetterCount({.seed = 7, .size = 6, .split = ts::Split::train}), "OfflineLetterCount/train");
  check_rendering(ts::OfflineLetterCount({.seed = 7, .size = 3, .split = ts::Split::test}), "OfflineLetterCount/test");
  check_rendering(ts::OfflineSpelling({.seed = 7, .size = 6, .split = ts::Split::train}), "OfflineSpelling/train");
  check_rendering(ts::OfflineSpelling({.seed = 7, .size = 3, .split = ts::Split::test}), "OfflineSpelling/test");

  const ts::OfflineArithmetic arithmetic({.seed = 3, .size = 300});
  const ts::OfflineLetterCount letters({.seed = 3, .size = 300});
  for (const ts::Task* task : {static_cast<const ts::Task*>(&arithmetic), static_cast<const ts::Task*>(&letters)}) {
    for (std::size_t i = 0; i < task->size(); ++i) {
      const ts::Example e = task->example(i);
      const auto& parts = std::get<std::vector<tk::MessagePart>>(e.conversation.messages[1].content);
      REQUIRE(parts.size() == 3);
      CHECK(nanochat::engine::use_calculator(parts[0].text) == parts[1].text);
      CHECK(task->evaluate(e, "#### " + parts[1].text));
      CHECK_FALSE(task->evaluate(e, "#### " + parts[1].text + "1"));
    }
  }
  const ts::OfflineSpelling spelling({.seed = 3, .size = 400});
  const ts::Example word = spelling.example(0);
  const std::string gold = std::get<std::string>(word.conversation.messages[1].content);
  CHECK(spelling.evaluate(word, " " + gold + "\n"));
  CHECK_FALSE(spelling.evaluate(word, gold + ",x"));
  // A quarter built-in English words, the rest invented ones of 2-3 syllables, nearly all distinct.
  std::set<std::string> english, invented;
  for (std::size_t i = 0; i < spelling.size(); ++i) {
    const std::string w = spelling.example(i).extra.at("problem");
    const bool known = std::find(ts::kOfflineWords.begin(), ts::kOfflineWords.end(), w) != ts::kOfflineWords.end();
    (known ? english : invented).insert(w);
    if (!known) {
      CHECK(w.size() >= 4);
      CHECK(w.size() <= 9);
      CHECK(w.find_first_not_of("abcdefghijklmnopqrstuvwxyz") == std::string::npos);
    }
  }
  CHECK(english.size() > 40);
  CHECK(invented.size() > 250);
  const ts::OfflineSpelling only_english({.seed = 3, .size = 100, .english_share = 1.0});
  for (std::size_t i = 0; i < only_english.size(); ++i) {
    const std::string w = only_english.example(i).extra.at("problem");
    CHECK(std::find(ts::kOfflineWords.begin(), ts::kOfflineWords.end(), w) != ts::kOfflineWords.end());
  }
  CHECK(error_of([] { ts::OfflineSpelling({.english_share = 1.5}); }).find("english_share 1.5 must be within 0..1") !=
        std::string::npos);
}

TEST_CASE("tasks/offline: identity questions are many, each answer states its topic's facts, the scorer reads facts") {
  const ts::OfflineIdentity train(ts::Split::train);
  const ts::OfflineIdentity test(ts::Split::test);
  CHECK(test.size() >= 200);  // chat_eval's 200 held-out problems are distinct questions
  CHECK(train.size() > 5 * test.size());
  std::set<std::string> topics_in_first_200;
  for (std::size_t i = 0; i < 200; ++i) topics_in_first_200.insert(test.example(i).extra.at("topic"));
  CHECK(topics_in_first_200.size() == ts::kIdentityTopics.size());
  for (const ts::OfflineIdentity* task : {&train, &test}) {
    for (std::size_t i = 0; i < task->size(); ++i) {
      const ts::Example e = task->example(i);
      CAPTURE(e.extra.at("problem"));
      CHECK(e.extra.at("problem") == std::get<std::string>(e.conversation.messages[0].content));
      CHECK(task->evaluate(e, std::get<std::string>(e.conversation.messages[1].content)));
    }
  }
  for (const ts::IdentityTopic& topic : ts::kIdentityTopics)
    for (std::string_view answer : topic.answers) CHECK(ts::states_identity_facts(topic, answer));
  // Replies in other words: right when they state the facts, wrong when one is missing or
  // contradicted.
  const auto topic_example = [&](std::string_view topic) {
    for (std::size_t i = 0; i < test.size(); ++i)
      if (test.example(i).extra.at("topic") == topic) return test.example(i);
    FAIL("no held-out question about ", topic);
    return ts::Example{};
  };
  const ts::Example name = topic_example("name");
  CHECK(test.evaluate(name, "Hello! My name is NanoChat, nice to meet you."));
  CHECK(test.evaluate(name, "nanochat"));
  CHECK_FALSE(test.evaluate(name, "I was trained with nanochat.cpp."));  // the maker, not the name
  CHECK_FALSE(test.evaluate(name, "My name is nanochatty."));
  CHECK_FALSE(test.evaluate(name, "I am a language model."));
  const ts::Example maker = topic_example("maker");
  CHECK(test.evaluate(maker, "Someone used nanochat.cpp."));
  CHECK_FALSE(test.evaluate(maker, "I am nanochat."));
  const ts::Example human = topic_example("human");
  CHECK(test.evaluate(human, "no - just a Language Model"));
  CHECK_FALSE(test.evaluate(human, "Yes, no, I am a language model."));  // a forbidden word
  CHECK_FALSE(test.evaluate(human, "I am a language model."));           // the "no" is a fact too
  CHECK_FALSE(test.evaluate(human, "Not really, I am a language modeller."));
  const ts::Example skills = topic_example("skills");
  CHECK(test.evaluate(skills, "I can spell, and do arithmetic."));
  CHECK_FALSE(test.evaluate(skills, "I can do arithmetic."));  // one fact of two
  CHECK(ts::contains_word("by Karpathy's code", "karpathy"));
  CHECK_FALSE(ts::contains_word("GPT-4o", "GPT-4"));
  CHECK_FALSE(ts::contains_word("", "no"));
}

TEST_CASE("tasks/offline: held-out problems never appear in training") {
  const auto keys = [](const ts::Task& task) {
    std::set<std::string> out;
    for (std::size_t i = 0; i < task.size(); ++i) out.insert(task.example(i).extra.at("problem"));
    return out;
  };
  const auto check_disjoint = [&](const ts::Task& train, const ts::Task& test, ts::HeldOut held_out) {
    const auto train_keys = keys(train);
    const auto test_keys = keys(test);
    CHECK(test_keys.size() > 1);
    for (const auto& k : test_keys) {
      CHECK(train_keys.count(k) == 0);
      CHECK(held_out.split_of(k) == ts::Split::test);
    }
    for (const auto& k : train_keys) CHECK(held_out.split_of(k) == ts::Split::train);
  };
  for (std::uint64_t seed : {0ull, 1ull, 12345ull}) {
    check_disjoint(ts::OfflineArithmetic({.seed = seed, .size = 3000, .split = ts::Split::train, .max_digits = 2}),
                   ts::OfflineArithmetic({.seed = seed + 1, .size = 500, .split = ts::Split::test, .max_digits = 2}), {});
    check_disjoint(ts::OfflineLetterCount({.seed = seed, .size = 3000}),
                   ts::OfflineLetterCount({.seed = seed, .size = 300, .split = ts::Split::test}), {});
    check_disjoint(ts::OfflineSpelling({.seed = seed, .size = 2000}),
                   ts::OfflineSpelling({.seed = seed, .size = 100, .split = ts::Split::test}), {});
  }
  check_disjoint(ts::OfflineIdentity(ts::Split::train), ts::OfflineIdentity(ts::Split::test), {});
  check_disjoint(ts::OfflineIdentity(ts::Split::train, {.seed = 4, .held_out = {.percent = 30}}),
                 ts::OfflineIdentity(ts::Split::test, {.seed = 9, .held_out = {.percent = 30}}), {.percent = 30});
  // The two splits partition the questions, every one distinct.
  std::size_t phrasings = 0;
  for (const ts::IdentityTopic& topic : ts::kIdentityTopics) phrasings += topic.questions.size();
  std::set<std::string> all = keys(ts::OfflineIdentity(ts::Split::train));
  for (const auto& k : keys(ts::OfflineIdentity(ts::Split::test))) all.insert(k);
  CHECK(all.size() == ts::OfflineIdentity(ts::Split::train).size() + ts::OfflineIdentity(ts::Split::test).size());
  CHECK(all.size() == phrasings * ts::identity_detail::kOpeners.size() * ts::identity_detail::kClosers.size());
  CHECK(error_of([] { ts::OfflineIdentity(ts::Split::test, {.held_out = {.percent = 0}}); }).find("held-out percent 0") !=
        std::string::npos);
  // The same seed and index give the same problem; another seed other problems.
  const ts::OfflineArithmetic a({.seed = 5, .size = 50});
  const ts::OfflineArithmetic b({.seed = 5, .size = 50});
  const ts::OfflineArithmetic c({.seed = 6, .size = 50});
  std::size_t same_as_other_seed = 0;
  for (std::size_t i = 0; i < 50; ++i) {
    CHECK(a.example(i).extra.at("problem") == b.example(i).extra.at("problem"));
    same_as_other_seed += a.example(i).extra.at("problem") == c.example(i).extra.at("problem");
  }
  CHECK(same_as_other_seed < 5);
}
