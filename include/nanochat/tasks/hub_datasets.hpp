#pragma once
// The Hugging Face datasets nanochat's chat stages load, and where their parquet shards live
// offline: one directory per (repository, config, split) under task_data_dir()/hub, holding
// the split's shards as Hugging Face publishes them (the readers read every *.parquet in it,
// in name order). `download --tasks` fills these directories; the readers' default paths
// point into them. One table, so the downloader and the readers cannot disagree.

#include <array>
#include <filesystem>
#include <string_view>

#include "nanochat/tasks/dataset_files.hpp"

namespace nanochat::tasks {

struct HubSplit {
  std::string_view repo;    // owner/name on the Hub
  std::string_view config;  // the dataset config ("subset" in nanochat's tasks)
  std::string_view split;
};

// Every split nanochat's mid_train, chat_sft, chat_rl and chat_eval read.
inline constexpr std::array<HubSplit, 16> hub_splits{{
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

}  // namespace nanochat::tasks
