#pragma once
// The offline default corpus: the King James Bible (public domain), which Debian's bible-kjv
// package ships and its `bible` program prints. A fresh machine without network can still
// train on it. Each chapter is one document (its verses, one per line, without references);
// the chapters are written in order to JSONL shards (shard_00000.jsonl, ...), and like
// FineWeb-EDU the last shard is the validation split (the end of Revelation).

#include <sys/wait.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <istream>
#include <sstream>
#include <string>
#include <vector>

#include "nanochat/core/atomic_file.hpp"
#include "nanochat/core/error.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/data/document_source.hpp"

namespace nanochat::data {

// The command that prints every verse as "Ge1:1 In the beginning ..." (-f: no pretty-printing).
inline constexpr const char* kBibleCommand = "bible -f gen1:1-rev22:21 </dev/null 2>&1";

// Groups `bible -f` output into chapter documents. A line is "<Book><chapter>:<verse> <text>";
// anything else is an error that names the line.
inline std::vector<std::string> kjv_chapters(std::istream& verses) {
  std::vector<std::string> chapters;
  std::string line;
  std::string current;  // "<Book><chapter>" of the chapter being built
  std::size_t number = 0;
  while (std::getline(verses, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    auto colon = line.find(':');
    auto space = line.find(' ');
    NANOCHAT_CHECK(colon != std::string::npos && space != std::string::npos && colon < space &&
                       colon > 0 && std::isdigit(static_cast<unsigned char>(line[colon - 1])),
                   "bible output line ", number, " is not '<Book><chapter>:<verse> <text>': ", line);
    std::string chapter = line.substr(0, colon);
    std::string text = line.substr(space + 1);
    if (chapters.empty() || chapter != current) {
      chapters.push_back(text);
      current = chapter;
    } else {
      chapters.back() += '\n';
      chapters.back() += text;
    }
  }
  return chapters;
}

// Writes documents as JSONL shards of `per_shard` documents into dir, each through a temporary
// name and a rename so a reader never sees a half-written shard. Returns the shard paths.
inline std::vector<std::filesystem::path> write_jsonl_shards(const std::vector<std::string>& documents,
                                                             const std::filesystem::path& dir,
                                                             std::size_t per_shard) {
  NANOCHAT_CHECK(per_shard > 0, "write_jsonl_shards: per_shard must be positive");
  std::filesystem::create_directories(dir);
  std::vector<std::filesystem::path> shards;
  for (std::size_t first = 0; first < documents.size(); first += per_shard) {
    char name[32];
    std::snprintf(name, sizeof name, "shard_%05zu.jsonl", shards.size());
    auto path = dir / name;
    std::string text;
    for (std::size_t d = first; d < std::min(documents.size(), first + per_shard); ++d) {
      text += "{\"text\": " + json::quote(documents[d]) + "}\n";
    }
    write_file_atomically(path, text);
    shards.push_back(path);
  }
  return shards;
}

// Runs `bible` and returns its chapters; fails with the fix when the package is missing.
inline std::vector<std::string> read_kjv() {
  std::FILE* pipe = ::popen(kBibleCommand, "r");
  NANOCHAT_CHECK(pipe != nullptr, "cannot run '", kBibleCommand, "'");
  std::string output;
  char buffer[65536];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, n);
  int status = ::pclose(pipe);
  NANOCHAT_CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                 "'", kBibleCommand, "' failed (is the bible-kjv package installed? "
                 "examples/setup.sh installs it): ", output.substr(0, 200));
  std::istringstream verses(output);
  return kjv_chapters(verses);
}

// Builds the offline corpus in dir unless shards are already there; returns the shards.
// 1189 chapters at 128 per shard make 10 shards: 9 for training, the last (37 chapters) for
// validation.
inline std::vector<std::filesystem::path> prepare_offline_corpus(const std::filesystem::path& dir,
                                                                 std::size_t per_shard = 128) {
  if (std::filesystem::is_directory(dir)) {
    auto existing = list_shards(dir);
    if (!existing.empty()) return existing;
  }
  auto shards = write_jsonl_shards(read_kjv(), dir, per_shard);
  NANOCHAT_CHECK(shards.size() >= 2, dir.string(), ": the corpus made only ", shards.size(),
                 " shard(s); need a training and a validation shard");
  return shards;
}

}  // namespace nanochat::data
