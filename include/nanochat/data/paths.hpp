#pragma once
// Where the data lives (nanochat's layout): BASE is $NANOCHAT_BASE_DIR, else ~/.cache/nanochat;
// FineWeb-EDU shards go to BASE/base_data, the offline corpus to BASE/offline_data.

#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "nanochat/core/error.hpp"

namespace nanochat::data {

inline std::filesystem::path base_dir() {
  if (const char* base = std::getenv("NANOCHAT_BASE_DIR"); base != nullptr && *base != '\0') return base;
  const char* home = std::getenv("HOME");
  NANOCHAT_CHECK(home != nullptr && *home != '\0', "neither NANOCHAT_BASE_DIR nor HOME is set");
  return std::filesystem::path(home) / ".cache" / "nanochat";
}

// A user's name for one directory under BASE (a --model-tag): it must be one plain path
// component, so that it can neither climb out of its parent ("..", "a/../..", "/abs") nor name
// the parent itself ("", "."); control characters (NUL included) are refused too.
inline const std::string& check_path_component(const std::string& name, std::string_view what) {
  NANOCHAT_CHECK(!name.empty() && name != "." && name != "..", what, " '", name,
                 "' is not a directory name (empty, . and .. are refused)");
  for (const char c : name) {
    NANOCHAT_CHECK(c != '/' && c != '\\' && static_cast<unsigned char>(c) >= 0x20 && c != 0x7f, what, " '", name,
                   "' must be one plain directory name: no '/', '\\' or control characters");
  }
  return name;
}

inline std::filesystem::path shard_dir() { return base_dir() / "base_data"; }
inline std::filesystem::path offline_corpus_dir() { return base_dir() / "offline_data"; }

// The corpus training reads by default: the downloaded FineWeb-EDU shards when there are any
// (`download --num-shards N`), else the offline corpus (`prepare_corpus`).
inline std::filesystem::path training_corpus_dir() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(shard_dir(), ec)) {
    if (entry.path().extension() == ".parquet") return shard_dir();
  }
  return offline_corpus_dir();
}

}  // namespace nanochat::data
