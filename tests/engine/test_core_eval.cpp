// CORE (eval/core_bundle.hpp, core_prompts.hpp, core_eval.hpp) against
// tests/reference/make_core_fixtures.py: a small DCLM bundle in the real formats, a tiny model,
// and what nanochat's core_eval gives for them — every example's few-shot draw, rows of ids and
// spans, which examples are right, the accuracies, centered accuracies and CORE, uncropped, with
// max_per_task 7, and with the model's context shorter than the longest row. Then the bundle's
// errors: a missing bundle names the path and the zip to unpack there, a malformed file its line.

#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "error_text.hpp"
#include "nanochat/backend/cpu.hpp"
#include "nanochat/core/read_file.hpp"
#include "nanochat/core/safetensors.hpp"
#include "nanochat/eval/core_eval.hpp"
#include "nanochat/model/weights_file.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"

using namespace nanochat;
using nanochat::cpu::Cpu;
using nanochat::json::Value;
using nanochat::testing::error_of;
namespace fs = std::filesystem;

namespace {

const fs::path kDir = fs::path(NANOCHAT_FIXTURES) / "eval";
using TinyConfig = GptConfig<2, 2, 1, 8>;  // the fixture model's shape

const tokenizer::Tokenizer& fixture_tokenizer() {
  static const tokenizer::Tokenizer tok(
      tokenizer::parse_ranks(read_file(fs::path(NANOCHAT_FIXTURES) / "tokenizer/ranks_2048.tiktoken"), "fixture"),
      {tokenizer::kSpecialTokens.begin(), tokenizer::kSpecialTokens.end()});
  return tok;
}

const Value& expected() {
  static const Value value = json::parse(read_file(kDir / "expected.json"), "expected.json");
  return value;
}

std::vector<std::size_t> sizes(const Value& list) {
  std::vector<std::size_t> out;
  for (const Value& v : list.array("list")) out.push_back(v.whole_number("entry"));
  return out;
}

fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("nanochat_core_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// A copy of the fixture bundle to break.
fs::path bundle_copy(const std::string& name) {
  const fs::path dir = temp_dir(name) / "eval_bundle";
  fs::copy(kDir / "bundle", dir, fs::copy_options::recursive);
  return dir;
}

void write(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

// Runs the fixture model, planned for [rows, context], over the bundle, and checks the setting
// of expected.json: each example's correctness, each task's accuracy and centered accuracy, CORE.
void check_setting(const std::string& name, std::int64_t rows, std::int64_t context) {
  CAPTURE(name);
  CAPTURE(rows);
  const Value& setting = *expected().find("settings")->find(name);
  const auto max_per_task = static_cast<std::int64_t>(setting.find("max_per_task")->number("max_per_task"));
  const auto file = SafetensorsFile::load(kDir / "model.safetensors");
  Cpu cpu;
  Gpt<TinyConfig, Cpu> model(cpu, static_cast<std::int64_t>(fixture_tokenizer().vocab_size()), rows, context);
  load_weights(cpu, model.weights(), file);
  const eval::CoreBundle bundle = eval::load_core_bundle(kDir / "bundle");
  double centered_sum = 0.0;
  std::size_t cropped = 0;
  for (const eval::CoreTask& task : bundle.tasks) {
    CAPTURE(task.label);
    const Value& want = *setting.find("tasks")->find(task.label);
    const auto data = eval::select_core_examples(eval::load_core_examples(task), max_per_task);
    std::vector<bool> correct;
    const eval::CoreTaskResult got = eval::evaluate_core_task(cpu, model, fixture_tokenizer(), task, data, &correct);
    const json::Array& examples = want.find("examples")->array("examples");
    REQUIRE(correct.size() == examples.size());
    for (std::size_t i = 0; i < examples.size(); ++i) {
      CAPTURE(i);
      CHECK(correct[i] == std::get<bool>(examples[i].find("correct")->data));
    }
    // The tokens run are the rows' ids, as the reference renders them (cut to the context when cropped).
    std::size_t tokens = 0;
    for (const Value& example : examples)
      for (const Value& row : example.find("ids")->array("ids"))
        tokens += std::min(row.array("row").size(), static_cast<std::size_t>(context));
    CHECK(got.tokens == tokens);
    CHECK(got.accuracy == doctest::Approx(want.find("accuracy")->number("accuracy")).epsilon(1e-12));
    CHECK(got.centered == doctest::Approx(want.find("centered")->number("centered")).epsilon(1e-12));
    centered_sum += got.centered;
    cropped += got.cropped;
  }
  CHECK(centered_sum / 3.0 == doctest::Approx(setting.find("core")->number("core")).epsilon(1e-12));
  const eval::CoreResult all = eval::evaluate_core(cpu, model, fixture_tokenizer(), bundle, max_per_task);
  CHECK(all.core == doctest::Approx(setting.find("core")->number("core")).epsilon(1e-12));
  CHECK((cropped > 0) == !setting.find("context")->is_null());
}

}  // namespace

TEST_CASE("core eval: the bundle reader takes core.yaml's tasks, their data and eval_meta_data.csv's baselines") {
  const eval::CoreBundle bundle = eval::load_core_bundle(kDir / "bundle");
  REQUIRE(bundle.tasks.size() == 3);
  const eval::CoreTask& mc = bundle.tasks[0];
  CHECK(mc.label == "mc_task");
  CHECK(mc.type == eval::CoreTaskType::multiple_choice);
  CHECK(mc.num_fewshot == 2);
  CHECK(mc.continuation_delimiter == "\nAnswer: ");
  CHECK(mc.random_baseline == 25.0);
  CHECK(mc.data_file == kDir / "bundle" / "eval_data" / "commonsense" / "mc_task.jsonl");
  CHECK(bundle.tasks[1].type == eval::CoreTaskType::schema);
  CHECK(bundle.tasks[1].continuation_delimiter == " ");  // absent: nanochat's default
  CHECK(bundle.tasks[1].random_baseline == 50.0);
  CHECK(bundle.tasks[2].type == eval::CoreTaskType::language_modeling);
  CHECK(bundle.tasks[2].num_fewshot == 3);
  const auto mc_data = eval::load_core_examples(mc);
  REQUIRE(mc_data.size() == 14);
  CHECK(mc_data.back().options == std::vector<std::string>{"the quiet river", "the quiet stone"});
  CHECK(mc_data.back().gold == 1);
  const auto lm_data = eval::load_core_examples(bundle.tasks[2]);
  CHECK(lm_data[2].context.ends_with("morning\u3000"));  // raw UTF-8 in the file
}

TEST_CASE("core eval: few-shot draws, prompts, ids and spans are nanochat's for every example") {
  const eval::CoreBundle bundle = eval::load_core_bundle(kDir / "bundle");
  for (const char* name : {"all", "max7", "cropped"}) {
    CAPTURE(name);
    const Value& setting = *expected().find("settings")->find(name);
    const auto max_per_task = static_cast<std::int64_t>(setting.find("max_per_task")->number("max_per_task"));
    const Value* context = setting.find("context");
    for (const eval::CoreTask& task : bundle.tasks) {
      CAPTURE(task.label);
      const auto data = eval::select_core_examples(eval::load_core_examples(task), max_per_task);
      const json::Array& examples = setting.find("tasks")->find(task.label)->find("examples")->array("examples");
      REQUIRE(data.size() == examples.size());
      for (std::size_t i = 0; i < data.size(); ++i) {
        CAPTURE(i);
        const Value& want = examples[i];
        CHECK(eval::core_fewshot_indices(i, data.size(), task.num_fewshot, task.label) == sizes(*want.find("shots")));
        eval::CoreRows rows = eval::core_example_rows(fixture_tokenizer(), task, data, i);
        if (!context->is_null()) eval::crop_core_rows(rows, context->whole_number("context"), "test");
        const json::Array& ids = want.find("ids")->array("ids");
        REQUIRE(rows.ids.size() == ids.size());
        for (std::size_t r = 0; r < ids.size(); ++r) {
          const std::vector<std::size_t> want_ids = sizes(ids[r]);
          CHECK(std::vector<std::size_t>(rows.ids[r].begin(), rows.ids[r].end()) == want_ids);
        }
        CHECK(rows.start == sizes(*want.find("start")));
        CHECK(rows.end == sizes(*want.find("end")));
      }
    }
  }
}

TEST_CASE("core eval: accuracies, centered accuracies and CORE equal nanochat's on the reference model") {
  const auto longest = static_cast<std::int64_t>(expected().find("longest")->whole_number("longest"));
  const auto crop = static_cast<std::int64_t>(expected().find("crop_context")->whole_number("crop_context"));
  const eval::CoreShape shape =
      eval::core_shape(fixture_tokenizer(), eval::load_core_bundle(kDir / "bundle"), -1);
  CHECK(shape.rows == 5);  // the most choices of one example
  CHECK(static_cast<std::int64_t>(shape.longest) == longest);
  check_setting("all", 5, longest);
  check_setting("all", 12, longest + 3);  // more rows: several examples share a forward, same answers
  check_setting("max7", 5, longest);
  check_setting("cropped", 5, crop);
  // Fewer rows than an example's choices is refused, not cut short.
  Cpu cpu;
  Gpt<TinyConfig, Cpu> narrow(cpu, static_cast<std::int64_t>(fixture_tokenizer().vocab_size()), 4, longest);
  const eval::CoreBundle bundle = eval::load_core_bundle(kDir / "bundle");
  CHECK(error_of([&] { eval::evaluate_core(cpu, narrow, fixture_tokenizer(), bundle, -1); })
            .find("choices but the model is planned for 4 rows") != std::string::npos);
  // A context too short for an answer is refused.
  Gpt<TinyConfig, Cpu> tiny(cpu, static_cast<std::int64_t>(fixture_tokenizer().vocab_size()), 5, 4);
  CHECK(error_of([&] { eval::evaluate_core(cpu, tiny, fixture_tokenizer(), bundle, -1); })
            .find("does not fit the model's context of 4 positions") != std::string::npos);
}

TEST_CASE("core eval: the results CSV is nanochat's base_eval file, padded columns and a CORE row") {
  eval::CoreResult result;
  result.tasks.push_back({"hellaswag", 0.25, 0.0, 4, 1, 0});
  result.tasks.push_back({"lambada_openai", 0.5, 0.5, 2, 1, 0});
  result.core = 0.25;
  CHECK(eval::core_results_csv(result) ==
        "Task                               , Accuracy  , Centered  \n"
        "hellaswag                          , 0.250000  , 0.000000  \n"
        "lambada_openai                     , 0.500000  , 0.500000  \n"
        "CORE                               ,           , 0.250000  \n");
}

TEST_CASE("core eval: a missing bundle names the path and the zip nanochat downloads") {
  const fs::path dir = temp_dir("missing") / "eval_bundle";
  const std::string missing = error_of([&] { eval::load_core_bundle(dir); });
  CHECK(missing.find("CORE: no eval bundle at " + dir.string()) != std::string::npos);
  CHECK(missing.find("https://karpathy-public.s3.us-west-2.amazonaws.com/eval_bundle.zip") != std::string::npos);
  CHECK(missing.find("core.yaml, eval_data/, eval_meta_data.csv") != std::string::npos);
  const fs::path partial = bundle_copy("partial");
  fs::remove(partial / "eval_meta_data.csv");
  CHECK(error_of([&] { eval::load_core_bundle(partial); })
            .find("CORE: missing " + (partial / "eval_meta_data.csv").string()) != std::string::npos);
  const fs::path no_data = bundle_copy("no_data");
  fs::remove(no_data / "eval_data" / "schema_task.jsonl");
  CHECK(error_of([&] { eval::load_core_bundle(no_data); })
            .find("CORE: missing " + (no_data / "eval_data" / "schema_task.jsonl").string()) != std::string::npos);
  CHECK(eval::default_eval_bundle_dir().filename() == "eval_bundle");
}

TEST_CASE("core eval: malformed core.yaml, eval_meta_data.csv and JSONL lines are errors naming file and line") {
  const fs::path dir = bundle_copy("malformed");
  const fs::path yaml = dir / "core.yaml", csv = dir / "eval_meta_data.csv";
  const std::string good_yaml = read_file(yaml), good_csv = read_file(csv);
  const auto yaml_error = [&](const std::string& text) {
    write(yaml, text);
    return error_of([&] { eval::load_core_bundle(dir); });
  };
  // An unclosed list on line 12: yaml-cpp reports the line where it found the flow unclosed.
  CHECK(yaml_error(replaced(good_yaml, "  num_fewshot: [1]", "  num_fewshot: [1")).find(yaml.string() + ":13: invalid YAML") !=
        std::string::npos);
  CHECK(yaml_error(replaced(good_yaml, "icl_task_type: schema", "icl_task_type: cloze"))
            .find(yaml.string() + ":13: icl_task_type 'cloze' is not") != std::string::npos);
  CHECK(yaml_error(replaced(good_yaml, "num_fewshot: [3]", "num_fewshot: [three]"))
            .find(yaml.string() + ":18: num_fewshot three is not a count of shots") != std::string::npos);
  CHECK(yaml_error(replaced(good_yaml, "num_fewshot: [2]", "num_fewshot: 2"))
            .find(yaml.string() + ":5: num_fewshot must be a list") != std::string::npos);
  CHECK(yaml_error(replaced(good_yaml, "  label: schema_task\n", "")).find(yaml.string() + ":10: task has no 'label'") !=
        std::string::npos);
  CHECK(yaml_error(replaced(good_yaml, "label: lm_task", "label: mc_task")).find("label 'mc_task' is empty or given twice") !=
        std::string::npos);
  CHECK(yaml_error("tasks: []\n").find(yaml.string() + ":1: expected a mapping with a non-empty list 'icl_tasks'") !=
        std::string::npos);
  write(yaml, good_yaml);

  const auto csv_error = [&](const std::string& text) {
    write(csv, text);
    return error_of([&] { eval::load_core_bundle(dir); });
  };
  CHECK(csv_error(replaced(good_csv, "schema,1,11,50.0", "schema,1,11,fifty"))
            .find(csv.string() + ": record 4: 'Random baseline' 'fifty' is not a number") != std::string::npos);
  CHECK(csv_error(replaced(good_csv, "schema,1,11,50.0", "schema,1,11,100")).find("record 4: 'Random baseline' 100 is outside") !=
        std::string::npos);
  CHECK(csv_error(replaced(good_csv, "lm_task,", "other_task,")).find("no row for task 'lm_task'") != std::string::npos);
  CHECK(csv_error(replaced(good_csv, "Random baseline", "Baseline")).find("no 'Eval Task' and 'Random baseline' columns") !=
        std::string::npos);
  CHECK(csv_error(replaced(good_csv, ",,a task core.yaml does not list", "")).find(csv.string() + ": record 2: 6 fields") !=
        std::string::npos);
  write(csv, good_csv);

  const eval::CoreBundle bundle = eval::load_core_bundle(dir);
  const fs::path mc = bundle.tasks[0].data_file, lm = bundle.tasks[2].data_file;
  const std::string good_mc = read_file(mc), good_lm = read_file(lm);
  const auto data_error = [&](const fs::path& path, const std::string& text, std::size_t task) {
    write(path, text);
    return error_of([&] { eval::load_core_examples(bundle.tasks[task]); });
  };
  std::string lines = good_mc;
  lines.insert(lines.find('\n', lines.find('\n') + 1) + 1, "{\"query\": \"broken\"\n");
  CHECK(data_error(mc, lines, 0).find(mc.string() + ":3") != std::string::npos);
  CHECK(data_error(mc, replaced(good_mc, "\"gold\": 1}", "\"gold\": 9}"), 0).find("\"gold\" 9 is not one of the") !=
        std::string::npos);
  CHECK(data_error(mc, "{\"query\": \"q\", \"choices\": [], \"gold\": 0}\n", 0).find(mc.string() + ":1: \"choices\" is empty") !=
        std::string::npos);
  CHECK(data_error(lm, "{\"context\": \"c\"}\n", 2).find(lm.string() + ":1: no \"continuation\"") != std::string::npos);
  CHECK(data_error(lm, "", 2).find(lm.string() + ": no examples") != std::string::npos);
  // More shots than other examples: nanochat's sample refuses it, and so does CORE, naming the task.
  CHECK(error_of([] { eval::core_fewshot_indices(0, 3, 3, "lm_task"); })
            .find("CORE lm_task: 3 shots need more than 3 examples") != std::string::npos);
  fs::remove_all(dir.parent_path());
}
