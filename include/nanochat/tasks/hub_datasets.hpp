#pragma once
// The Hugging Face datasets nanochat's chat stages load, and where their parquet shards live
// offline: one directory per (repository, config, split) under task_data_dir()/hub, holding
// the split's shards as Hugging Face publishes them (the readers read every *.parquet in it,
// in name order). `download --tasks` fills these directories; the readers' default paths
// point into them. One table, so the downloader and the readers cannot disagree.

#include <array>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/tasks/dataset_files.hpp"

namespace nanochat::tasks {

struct HubSplit {
  std::string_view repo;    // owner/name on the Hub
  std::string_view config;  // the dataset config ("subset" in nanochat's tasks)
  std::string_view split;
};

// Every split nanochat's mid_train, chat_sft, chat_rl and chat_eval read.
inline constexpr std::array<HubSplit, 15> hub_splits{{
    {"openai/gsm8k", "main", "train"},
    {"openai/gsm8k", "main", "test"},
    {"HuggingFaceTB/smol-smoltalk", "default", "train"},
    {"HuggingFaceTB/smol-smoltalk", "default", "test"},
    {"cais/mmlu", "auxiliary_train", "train"},
    {"cais/mmlu", "all", "test"},
    {"cais/mmlu", "all", "validation"},
    {"cais/mmlu", "all", "dev"},
    {"allenai/ai2_arc", "ARC-Easy", "train"},
    {"allenai/ai2_arc", "ARC-Easy", "validation"},
    {"allenai/ai2_arc", "ARC-Easy", "test"},
    {"allenai/ai2_arc", "ARC-Challenge", "train"},
    {"allenai/ai2_arc", "ARC-Challenge", "validation"},
    {"allenai/ai2_arc", "ARC-Challenge", "test"},
    {"openai/openai_humaneval", "openai_humaneval", "test"},
}};

inline std::filesystem::path hub_split_dir(const HubSplit& split) {
  return task_data_dir() / "hub" / split.repo / split.config / split.split;
}

// "openai/gsm8k main/train", as progress lines and errors name a split.
inline std::string hub_split_name(const HubSplit& split) {
  return cat(split.repo, " ", split.config, "/", split.split);
}

// The split's parquet shards in dir (by default its place under task_data_dir()), in name order
// = the Hub's shard order; none is an Error, "<dataset>: no *.parquet in <dir>; run download
// --tasks (online) or put ... at <dir>", saying which of the Hub's files go there.
inline std::vector<std::filesystem::path> hub_split_files(const HubSplit& split, std::string_view dataset,
                                                          const std::filesystem::path& dir) {
  return require_parquet_shards(
      dir, dataset,
      cat(split.repo, "'s ", split.config, "/", split.split, " parquet shards (https://huggingface.co/datasets/",
          split.repo, "/tree/refs%2Fconvert%2Fparquet/", split.config, "/", split.split, ")"));
}
inline std::vector<std::filesystem::path> hub_split_files(const HubSplit& split, std::string_view dataset) {
  return hub_split_files(split, dataset, hub_split_dir(split));
}

// The directory of a split in the table; one not in it is an Error (a reader's default path
// must be a directory the downloader fills).
inline std::filesystem::path hub_split_dir(std::string_view repo, std::string_view config, std::string_view split) {
  for (const HubSplit& s : hub_splits) {
    if (s.repo == repo && s.config == config && s.split == split) return hub_split_dir(s);
  }
  NANOCHAT_FAIL(repo, ": no split '", split, "' of config '", config, "' among the splits nanochat reads");
}

// What a reader's missing-data error says goes at its path (dataset_remedy's "put ... at").
inline std::string hub_split_contents(std::string_view repo, std::string_view other_forms) {
  return cat(repo, "'s parquet shards of the split (a directory of *.parquet, or one .parquet file)",
             other_forms.empty() ? "" : " or ", other_forms);
}

}  // namespace nanochat::tasks
