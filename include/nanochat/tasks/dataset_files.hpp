#pragma once
// Where the public chat datasets live offline, and the small readers they share. Every file is
// read from a local directory (nothing is downloaded here): a missing one is an Error naming
// the path it is expected at, what to put there and that `download --tasks` fetches it; a
// malformed one names the file and line.
//
// Layout under task_data_dir() = BASE/task_data (BASE as data::base_dir()): the Hugging Face
// splits nanochat loads, as the Hub serves them, one directory of parquet shards per split
// (tasks/hub_datasets.hpp lists them; `download --tasks` fills them; the readers' default paths):
//   hub/openai/gsm8k/main/{train,test}/
//   hub/HuggingFaceTB/smol-smoltalk/default/{train,test}/
//   hub/cais/mmlu/all/{test,validation,dev}/ and hub/cais/mmlu/auxiliary_train/train/
//   hub/allenai/ai2_arc/ARC-{Easy,Challenge}/{train,validation,test}/
//   hub/openai/openai_humaneval/openai_humaneval/test/
// each holding <split>-0000i-of-0000n.parquet. A reader also takes one .parquet file, or the
// dataset in another published form by extension: GSM8K, SmolTalk (datasets' to_json), ARC
// (AI2's release) and HumanEval (openai/human-eval) as .jsonl, MMLU as the release's CSVs.
// and, as nanochat keeps them, BASE/identity_conversations.jsonl and a word list.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/core/read_file.hpp"
#include "nanochat/data/paths.hpp"
#include "nanochat/tasks/numpy_random.hpp"

namespace nanochat::tasks {

inline std::filesystem::path task_data_dir() { return data::base_dir() / "task_data"; }

// What a reader says when its data is not on disk: how to get it online or where to put it.
// Every "missing" message carries it, so the remedy reads the same everywhere.
inline std::string dataset_remedy(std::string_view what_goes_there, const std::filesystem::path& path,
                                  std::string_view download_command = "download --tasks") {
  return cat("run ", download_command, " (online) or put ", what_goes_there, " at ", path.string());
}

// Throws unless path is a regular file: "<dataset>: missing <path>; <dataset_remedy>".
inline void require_dataset_file(const std::filesystem::path& path, std::string_view dataset,
                                 std::string_view what_goes_there,
                                 std::string_view download_command = "download --tasks") {
  std::error_code ec;
  NANOCHAT_CHECK(std::filesystem::is_regular_file(path, ec), dataset, ": missing ", path.string(), "; ",
                 dataset_remedy(what_goes_there, path, download_command));
}

// The *.parquet files in dir in name order (a split's shards), or an Error as
// require_dataset_file's when there are none.
inline std::vector<std::filesystem::path> require_parquet_shards(const std::filesystem::path& dir,
                                                                 std::string_view dataset,
                                                                 std::string_view what_goes_there) {
  std::vector<std::filesystem::path> shards;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".parquet" && entry.is_regular_file(ec)) shards.push_back(entry.path());
  }
  NANOCHAT_CHECK(!shards.empty(), dataset, ": no *.parquet in ", dir.string(), "; ",
                 dataset_remedy(what_goes_there, dir));
  std::sort(shards.begin(), shards.end());
  return shards;
}

// Calls on_line(value, where) for each non-blank line of a JSONL file, where = "file:line N".
template <class OnLine>
void for_each_jsonl(const std::filesystem::path& path, OnLine on_line) {
  const std::string text = read_file(path);
  std::size_t line_number = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    ++line_number;
    pos = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = cat(path.string(), ":", line_number);
    on_line(json::parse(line, where), where);
  }
}

// A string member of a JSON object, or an Error naming where it is missing.
inline const std::string& json_string(const json::Value& object, std::string_view key, std::string_view where) {
  const json::Value* member = object.find(key);
  NANOCHAT_CHECK(member != nullptr, where, ": no \"", key, "\"");
  return member->string(cat(where, ": \"", key, "\""));
}

// The row order nanochat reads a Hugging Face dataset in after .shuffle(seed=42): datasets takes
// np.random.default_rng(seed).permutation(rows), reproduced exactly by NumpyRandom, so a prefix
// slice (SmolTalk's first 10,000, GSM8K test's first 420) is the subset nanochat trains on.
inline std::vector<std::uint32_t> shuffled_rows(std::size_t rows, std::int64_t seed = 42) {
  NANOCHAT_CHECK(rows < (std::size_t{1} << 32), "shuffled_rows: ", rows, " rows exceed 2^32");
  NANOCHAT_CHECK(seed >= 0, "shuffled_rows: seed ", seed, " is negative (numpy's SeedSequence refuses it)");
  return NumpyRandom(static_cast<std::uint64_t>(seed)).permutation<std::uint32_t>(rows);
}

}  // namespace nanochat::tasks
