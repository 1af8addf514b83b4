#pragma once
// The DCLM eval bundle that CORE reads (spec §6.2), laid out as nanochat unzips eval_bundle.zip
// under BASE/eval_bundle:
//   core.yaml           icl_tasks: a list of {label, dataset_uri, num_fewshot: [k], icl_task_type,
//                       continuation_delimiter (optional, " ")}; other keys are ignored
//   eval_data/<uri>     one JSON object per line: multiple_choice {query, choices, gold},
//                       schema {context_options, continuation, gold}, language_modeling
//                       {context, continuation}
//   eval_meta_data.csv  a header naming "Eval Task" and "Random baseline" (percent), a row per task
// Nothing is downloaded here: a missing file is an Error naming its path, what goes there and
// the zip nanochat fetches; a malformed one names the file and line (the CSV: its record).

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "nanochat/core/error.hpp"
#include "nanochat/core/read_file.hpp"
#include "nanochat/data/paths.hpp"
#include "nanochat/tasks/csv.hpp"
#include "nanochat/tasks/dataset_files.hpp"

namespace nanochat::eval {

// What nanochat's base_eval downloads (~162 MB) and unzips into BASE, giving BASE/eval_bundle.
inline constexpr std::string_view kEvalBundleUrl = "https://karpathy-public.s3.us-west-2.amazonaws.com/eval_bundle.zip";

inline std::filesystem::path default_eval_bundle_dir() { return data::base_dir() / "eval_bundle"; }

enum class CoreTaskType { multiple_choice, schema, language_modeling };

inline const char* core_task_type_name(CoreTaskType type) {
  switch (type) {
    case CoreTaskType::multiple_choice: return "multiple_choice";
    case CoreTaskType::schema: return "schema";
    case CoreTaskType::language_modeling: return "language_modeling";
  }
  return "?";
}

struct CoreTask {
  std::string label;
  CoreTaskType type = CoreTaskType::multiple_choice;
  std::size_t num_fewshot = 0;
  std::string continuation_delimiter = " ";
  std::filesystem::path data_file;  // eval_data/<dataset_uri>
  double random_baseline = 0.0;     // percent, from eval_meta_data.csv
};

// One line of a task's JSONL; the fields its type uses.
struct CoreExample {
  std::string query;                 // multiple_choice
  std::string context;               // language_modeling
  std::vector<std::string> options;  // multiple_choice: choices; schema: context_options
  std::string continuation;          // schema, language_modeling
  std::size_t gold = 0;              // multiple_choice, schema: index into options
};

struct CoreBundle {
  std::filesystem::path dir;
  std::vector<CoreTask> tasks;  // in core.yaml's order
};

namespace core_bundle_detail {

// "file:line" of a node (yaml-cpp counts lines from 0); a node without a position (a missing
// key) takes its parent's.
inline std::string where(const std::filesystem::path& file, const YAML::Node& node, const YAML::Node& parent) {
  const YAML::Mark mark = node.IsDefined() && !node.Mark().is_null() ? node.Mark() : parent.Mark();
  return cat(file.string(), ":", mark.line + 1);
}

inline std::string scalar(const std::filesystem::path& file, const YAML::Node& entry, const char* key) {
  const YAML::Node value = entry[key];
  NANOCHAT_CHECK(value.IsDefined(), where(file, value, entry), ": task has no '", key, "'");
  NANOCHAT_CHECK(value.IsScalar(), where(file, value, entry), ": '", key, "' must be a plain value");
  return value.Scalar();
}

inline CoreTaskType task_type(const std::string& name, const std::string& at) {
  if (name == "multiple_choice") return CoreTaskType::multiple_choice;
  if (name == "schema") return CoreTaskType::schema;
  if (name == "language_modeling") return CoreTaskType::language_modeling;
  NANOCHAT_FAIL(at, ": icl_task_type '", name, "' is not multiple_choice, schema or language_modeling");
}

inline std::string missing_remedy(const std::filesystem::path& dir) {
  return tasks::dataset_remedy("the unzipped DCLM eval bundle (core.yaml, eval_data/, eval_meta_data.csv)", dir,
                               cat("curl -LO ", kEvalBundleUrl, " && unzip eval_bundle.zip -d ",
                                   dir.parent_path().string()));
}

inline void require_bundle_file(const std::filesystem::path& path, const std::filesystem::path& dir) {
  std::error_code ec;
  NANOCHAT_CHECK(std::filesystem::is_regular_file(path, ec), "CORE: missing ", path.string(), "; ",
                 missing_remedy(dir));
}

// Python's float() of a CSV field: a decimal number, blanks around it allowed.
inline double parse_percent(std::string_view text, const std::string& at) {
  const std::size_t first = text.find_first_not_of(" \t");
  const std::size_t last = text.find_last_not_of(" \t");
  double value = 0.0;
  const char* begin = first == std::string_view::npos ? text.data() + text.size() : text.data() + first;
  const char* end = first == std::string_view::npos ? begin : text.data() + last + 1;
  const auto [ptr, ec] = std::from_chars(begin, end, value);
  NANOCHAT_CHECK(ec == std::errc{} && ptr == end && begin != end && std::isfinite(value), at, ": 'Random baseline' '",
                 text, "' is not a number");
  // centered = (acc - b) / (1 - b) with b = value / 100: 100 % or more leaves nothing to center on.
  NANOCHAT_CHECK(value >= 0.0 && value < 100.0, at, ": 'Random baseline' ", value, " is outside [0, 100)");
  return value;
}

inline std::map<std::string, double> read_random_baselines(const std::filesystem::path& path) {
  std::map<std::string, double> baselines;
  std::size_t task_column = 0, baseline_column = 0, columns = 0;
  tasks::for_each_csv_record(read_file(path), path.string(), [&](const std::vector<std::string>& fields,
                                                                 std::size_t record) {
    const std::string at = cat(path.string(), ": record ", record);
    if (record == 1) {
      columns = fields.size();
      bool has_task = false, has_baseline = false;
      for (std::size_t i = 0; i < fields.size(); ++i) {
        if (fields[i] == "Eval Task") task_column = i, has_task = true;
        if (fields[i] == "Random baseline") baseline_column = i, has_baseline = true;
      }
      NANOCHAT_CHECK(has_task && has_baseline, at, ": the header has no 'Eval Task' and 'Random baseline' columns");
      return;
    }
    NANOCHAT_CHECK(fields.size() == columns, at, ": ", fields.size(), " fields, the header has ", columns);
    // A later row of the same task wins, as in the dict nanochat builds.
    baselines[fields[task_column]] = parse_percent(fields[baseline_column], at);
  });
  return baselines;
}

}  // namespace core_bundle_detail

// Reads core.yaml and eval_meta_data.csv of the bundle at dir (the tasks' data is read per task,
// by load_core_examples). Every task must have a random baseline and its data file.
inline CoreBundle load_core_bundle(const std::filesystem::path& dir) {
  using namespace core_bundle_detail;
  const std::filesystem::path config = dir / "core.yaml", meta = dir / "eval_meta_data.csv";
  std::error_code ec;
  NANOCHAT_CHECK(std::filesystem::is_directory(dir, ec), "CORE: no eval bundle at ", dir.string(), "; ",
                 missing_remedy(dir));
  require_bundle_file(config, dir);
  require_bundle_file(meta, dir);
  YAML::Node root;
  try {
    root = YAML::Load(read_file(config));
  } catch (const YAML::Exception& e) {
    NANOCHAT_FAIL(config.string(), ":", e.mark.line + 1, ": invalid YAML: ", e.msg);
  }
  NANOCHAT_CHECK(root.IsMap() && root["icl_tasks"].IsSequence() && root["icl_tasks"].size() > 0, config.string(),
                 ":1: expected a mapping with a non-empty list 'icl_tasks'");
  const std::map<std::string, double> baselines = read_random_baselines(meta);
  CoreBundle bundle{dir, {}};
  std::set<std::string> labels;
  for (const YAML::Node& entry : root["icl_tasks"]) {
    const std::string at = where(config, entry, root);
    NANOCHAT_CHECK(entry.IsMap(), at, ": a task must be a mapping of its keys");
    CoreTask task;
    task.label = scalar(config, entry, "label");
    NANOCHAT_CHECK(!task.label.empty() && labels.insert(task.label).second, at, ": label '", task.label,
                   "' is empty or given twice");
    task.type = task_type(scalar(config, entry, "icl_task_type"), where(config, entry["icl_task_type"], entry));
    const YAML::Node shots = entry["num_fewshot"];
    NANOCHAT_CHECK(shots.IsSequence() && shots.size() > 0 && shots[0].IsScalar(), where(config, shots, entry),
                   ": num_fewshot must be a list whose first entry is the number of shots, as [10]");
    long long k = -1;
    try {
      k = shots[0].as<long long>();
    } catch (const YAML::Exception&) {
    }
    NANOCHAT_CHECK(k >= 0 && k <= 1000000, where(config, shots[0], shots), ": num_fewshot ", shots[0].Scalar(),
                   " is not a count of shots");
    task.num_fewshot = static_cast<std::size_t>(k);
    if (const YAML::Node delimiter = entry["continuation_delimiter"]; delimiter.IsDefined()) {
      NANOCHAT_CHECK(delimiter.IsScalar(), where(config, delimiter, entry), ": continuation_delimiter must be a string");
      task.continuation_delimiter = delimiter.Scalar();
    }
    const std::string uri = scalar(config, entry, "dataset_uri");
    NANOCHAT_CHECK(!uri.empty() && std::filesystem::path(uri).is_relative(), where(config, entry["dataset_uri"], entry),
                   ": dataset_uri '", uri, "' must be a path relative to eval_data/");
    task.data_file = dir / "eval_data" / uri;
    require_bundle_file(task.data_file, dir);
    const auto baseline = baselines.find(task.label);
    NANOCHAT_CHECK(baseline != baselines.end(), meta.string(), ": no row for task '", task.label, "' (", at, ")");
    task.random_baseline = baseline->second;
    bundle.tasks.push_back(std::move(task));
  }
  return bundle;
}

// A task's examples in file order; a line without its type's fields names the file and line.
inline std::vector<CoreExample> load_core_examples(const CoreTask& task) {
  std::vector<CoreExample> examples;
  tasks::for_each_jsonl(task.data_file, [&](const json::Value& line, const std::string& where) {
    CoreExample example;
    const auto strings = [&](const char* key) {
      const json::Value* list = line.find(key);
      NANOCHAT_CHECK(list != nullptr, where, ": no \"", key, "\"");
      std::vector<std::string> out;
      for (const json::Value& s : list->array(cat(where, ": \"", key, "\""))) out.push_back(s.string(cat(where, ": \"", key, "\" entries")));
      NANOCHAT_CHECK(!out.empty(), where, ": \"", key, "\" is empty");
      return out;
    };
    const auto gold = [&] {
      const json::Value* value = line.find("gold");
      NANOCHAT_CHECK(value != nullptr, where, ": no \"gold\"");
      const std::uint64_t g = value->whole_number(cat(where, ": \"gold\""));
      NANOCHAT_CHECK(g < example.options.size(), where, ": \"gold\" ", g, " is not one of the ", example.options.size(),
                     " options");
      return static_cast<std::size_t>(g);
    };
    switch (task.type) {
      case CoreTaskType::multiple_choice:
        example.query = tasks::json_string(line, "query", where);
        example.options = strings("choices");
        example.gold = gold();
        break;
      case CoreTaskType::schema:
        example.options = strings("context_options");
        example.continuation = tasks::json_string(line, "continuation", where);
        example.gold = gold();
        break;
      case CoreTaskType::language_modeling:
        example.context = tasks::json_string(line, "context", where);
        example.continuation = tasks::json_string(line, "continuation", where);
        break;
    }
    examples.push_back(std::move(example));
  });
  NANOCHAT_CHECK(!examples.empty(), task.data_file.string(), ": no examples");
  return examples;
}

}  // namespace nanochat::eval
