#pragma once
// A training run's metrics.jsonl: one JSON object per line, each with its "step". The file (and
// its directory) appears with the first line written, so a run that fails before it leaves no
// empty checkpoint directory; at that moment the lines from the resume step on are dropped, so a
// resumed (or restarted) run's file reads as one run. A line without a step (torn by a kill)
// goes too.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "nanochat/core/atomic_file.hpp"
#include "nanochat/core/error.hpp"
#include "nanochat/core/json.hpp"

namespace nanochat {

class MetricsFile {
 public:
  MetricsFile(std::filesystem::path path, std::int64_t first_step) : path_(std::move(path)), first_step_(first_step) {}

  // The stream to write one line to (the caller ends it with "\n" and flushes).
  std::ofstream& line() {
    if (!out_.is_open()) {
      keep_lines_before(path_, first_step_);
      std::filesystem::create_directories(path_.parent_path());
      out_.open(path_, std::ios::app);
      NANOCHAT_CHECK(out_.good(), path_.string(), ": cannot open for appending");
    }
    return out_;
  }

 private:
  static void keep_lines_before(const std::filesystem::path& path, std::int64_t step) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return;
    std::string kept, line;
    while (std::getline(in, line)) {
      try {
        const json::Value entry = json::parse(line, path.string());
        const json::Value* at = entry.find("step");
        if (at != nullptr && static_cast<std::int64_t>(at->whole_number("step")) < step) kept += line + "\n";
      } catch (const Error&) {  // not a line a trainer wrote whole
      }
    }
    in.close();
    write_file_atomically(path, kept);
  }

  std::filesystem::path path_;
  std::int64_t first_step_;
  std::ofstream out_;
};

}  // namespace nanochat
