#pragma once
// The report card (nanochat's report.py reset and generate) over the sections the stages write
// (train/report_section.hpp) in BASE/report/:
// - reset: removes what the report wrote there (*.md and *.svg) and writes header.md: the
//   environment (git, hardware, compiler), the source's size ("Bloat") and "Run started".
// - generate: report.md = the header, the sections in nanochat's order (a missing one is skipped
//   with a warning), after each training section an SVG of its curves (train/metrics_plot.hpp)
//   from the metrics file the section names, then "## Summary": the bloat lines, the table
//   Metric | BASE | MID | SFT | RL (CORE first, ChatCORE last, the rest in byte order, "-" where
//   a stage has no value) and "Total wall clock time: XhYm" from "Run started" to the last
//   section outside RL.

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "nanochat/core/atomic_file.hpp"
#include "nanochat/core/error.hpp"
#include "nanochat/core/read_file.hpp"
#include "nanochat/train/metrics_plot.hpp"
#include "nanochat/train/report_environment.hpp"
#include "nanochat/train/report_section.hpp"

namespace nanochat::report {

// nanochat's section files, in the report's order.
inline constexpr std::string_view kSectionFiles[] = {
    "tokenizer-training.md", "tokenizer-evaluation.md", "base-model-training.md", "base-model-loss.md",
    "base-model-evaluation.md", "midtraining.md", "chat-evaluation-mid.md", "chat-sft.md",
    "chat-evaluation-sft.md", "chat-rl.md", "chat-evaluation-rl.md"};

// The summary table's stages and where each one's numbers come from. nanochat takes only GSM8K
// from the RL evaluation (all it evaluated); ours takes whatever chat_eval -i rl measured.
struct SummaryStage {
  std::string_view column, file;
  bool chat;  // chat metrics; else CORE
};
inline constexpr SummaryStage kSummaryStages[] = {{"BASE", "base-model-evaluation.md", false},
                                                  {"MID", "chat-evaluation-mid.md", true},
                                                  {"SFT", "chat-evaluation-sft.md", true},
                                                  {"RL", "chat-evaluation-rl.md", true}};
// nanochat's chat metrics, then the offline tasks this project's main job evaluates.
inline constexpr std::string_view kChatMetrics[] = {"ARC-Easy", "ARC-Challenge", "MMLU", "GSM8K", "HumanEval", "ChatCORE",
                                                    "arithmetic", "letter-count", "spelling", "identity"};

// The tracked source files' size, as nanochat's "Bloat" (it packs its .py/.md/.rs/... files with
// files-to-prompt): characters, lines and files of `git ls-files` in the working directory
// (C++, CUDA, CMake, shell, Python and Markdown), tokens ~ characters / 4. Empty outside a checkout.
inline std::string bloat_lines() {
  const auto files = command_output("git ls-files");
  if (!files) return "";
  std::size_t chars = 0, lines = 0, count = 0;
  std::istringstream list(*files);
  for (std::string name; std::getline(list, name);) {
    const std::string ext = std::filesystem::path(name).extension().string();
    const bool source = ext == ".hpp" || ext == ".cpp" || ext == ".h" || ext == ".cu" || ext == ".cuh" || ext == ".cmake" ||
                        ext == ".sh" || ext == ".py" || ext == ".md" || std::filesystem::path(name).filename() == "CMakeLists.txt";
    std::error_code ec;
    if (!source || !std::filesystem::is_regular_file(name, ec)) continue;
    const std::string text = read_file(name);
    chars += text.size();
    lines += static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
    ++count;
  }
  const auto commas = [](std::size_t v) { return with_thousands_separators(static_cast<std::int64_t>(v)); };
  return cat("- Characters: ", commas(chars), "\n- Lines: ", commas(lines), "\n- Files: ", commas(count),
             "\n- Tokens (approx): ", commas(chars / 4), "\n");
}

inline std::string header_text() {
  const GitInfo g = git_info();
  const HardwareInfo h = hardware_info();
  char memory[32];
  std::snprintf(memory, sizeof memory, "%.1f GB", h.memory_gb);
  std::string bloat = bloat_lines();
  const std::string now = local_timestamp();
  return cat("# nanochat training report\n\nGenerated: ", now, "\n\n## Environment\n\n### Git Information\n- Branch: ", g.branch,
             "\n- Commit: ", g.commit, g.dirty ? " (dirty)" : " (clean)", "\n- Message: ", g.message,
             "\n\n### Hardware\n- Platform: ", h.platform, "\n- CPU: ", h.cpu_model, "\n- CPUs: ", h.physical_cores, " cores (",
             h.logical_cpus, " logical)\n- Memory: ", memory, "\n\n### Software\n- Compiler: ", compiler_name(),
             "\n- Build: ", build_kind(), "\n\n", bloat.empty() ? "" : "### Bloat\n" + bloat + "\n",
             "Run started: ", now, "\n\n---\n\n");
}

// Removes the report's own files (*.md, *.svg and their .tmp leftovers) from dir and writes a
// fresh header.md; other files are left alone.
inline void reset(const std::filesystem::path& dir = report_dir(), std::FILE* log = stdout) {
  std::filesystem::create_directories(dir);
  std::vector<std::filesystem::path> ours;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (name.ends_with(".tmp")) name.resize(name.size() - 4);
    if (entry.is_regular_file() && (name.ends_with(".md") || name.ends_with(".svg"))) ours.push_back(entry.path());
  }
  for (const auto& path : ours) remove_file_durably(path);
  write_file_atomically(dir / "header.md", header_text());
  std::fprintf(log, "Reset report and wrote header to %s\n", (dir / "header.md").c_str());
}

// The value after "<prefix>" on a line of text that starts with it, as a time; nullopt if none.
inline std::optional<std::time_t> timestamp_after(std::string_view text, std::string_view prefix) {
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    std::time_t t{};
    if (line.starts_with(prefix) && parse_timestamp(line.substr(prefix.size()), t)) return t;
  }
  return std::nullopt;
}

// The summary table in nanochat's layout (column widths 15 and 8, values left-aligned).
inline std::string summary_table(const std::map<std::string, std::map<std::string, std::string>>& by_stage) {
  std::set<std::string> names;
  for (const auto& [stage, metrics] : by_stage)
    for (const auto& [name, value] : metrics) names.insert(name);
  std::vector<std::string> rows(names.begin(), names.end());
  std::stable_sort(rows.begin(), rows.end(), [](const std::string& a, const std::string& b) {
    const auto rank = [](const std::string& n) { return n == "CORE" ? 0 : n == "ChatCORE" ? 2 : 1; };
    return rank(a) != rank(b) ? rank(a) < rank(b) : a < b;
  });
  const auto pad = [](std::string s, std::size_t width) { return s.size() < width ? s + std::string(width - s.size(), ' ') : s; };
  std::string out = "| " + pad("Metric", 15) + " |";
  for (const auto& s : kSummaryStages) out += " " + pad(std::string(s.column), 8) + " |";
  out += "\n|" + std::string(17, '-') + "|";
  for (std::size_t i = 0; i < std::size(kSummaryStages); ++i) out += std::string(10, '-') + "|";
  out += "\n";
  for (const auto& name : rows) {
    out += "| " + pad(name, 15) + " |";
    for (const auto& s : kSummaryStages) {
      std::string value = "-";
      if (const auto stage = by_stage.find(std::string(s.column)); stage != by_stage.end())
        if (const auto v = stage->second.find(name); v != stage->second.end()) value = v->second;
      out += " " + pad(value, 8) + " |";
    }
    out += "\n";
  }
  return out;
}

// Writes dir/report.md (and each training section's <slug>.svg); returns report.md's path.
// Warnings (a missing header or section, a missing metrics file) go to log; a malformed section
// or metrics file is an Error naming it.
inline std::filesystem::path generate(const std::filesystem::path& dir = report_dir(), std::FILE* log = stdout) {
  std::string out, bloat = "[bloat data missing]";
  std::optional<std::time_t> start, end;
  const std::filesystem::path header = dir / "header.md";
  std::error_code ec;
  if (std::filesystem::exists(header, ec)) {
    const std::string text = read_file(header);
    out += text;
    start = timestamp_after(text, "Run started: ");
    const std::size_t at = text.find("### Bloat\n");
    bloat = at == std::string::npos ? "" : text.substr(at + 10, text.find("\n\n", at) - (at + 10));
  } else {
    std::fprintf(log, "Warning: %s does not exist. Did you forget to run `report reset`?\n", header.c_str());
  }
  std::map<std::string, std::map<std::string, std::string>> by_stage;
  for (const std::string_view file : kSectionFiles) {
    const std::filesystem::path path = dir / file;
    if (!std::filesystem::exists(path, ec)) {
      std::fprintf(log, "Warning: %s does not exist, skipping\n", path.c_str());
      continue;
    }
    const Section section = read_section(path);
    std::time_t at{};
    // RL is left out of the wall time, as nanochat does (its RL is experimental).
    if (file.find("rl") == std::string_view::npos && parse_timestamp(section.timestamp, at)) end = at;
    for (const auto& stage : kSummaryStages) {
      if (stage.file != file) continue;
      auto& metrics = by_stage[std::string(stage.column)];
      if (!stage.chat) {
        if (auto v = section.metric("CORE"); !v.empty()) metrics["CORE"] = v;
      } else {
        for (const std::string_view name : kChatMetrics)
          if (auto v = section.metric(name); !v.empty()) metrics[std::string(name)] = v;
      }
    }
    out += section.text + "\n";
    if (const std::string metrics = section.metric("Metrics file"); !metrics.empty()) {
      if (!std::filesystem::exists(metrics, ec)) {
        std::fprintf(log, "Warning: %s names %s, which does not exist; no plot\n", path.c_str(), metrics.c_str());
      } else {
        const std::string svg = slug(section.title) + ".svg";
        write_file_atomically(dir / svg, metrics_svg(metrics, section.title));
        out += cat("![", section.title, " curves](", svg, ")\n\n");
      }
    }
  }
  out += "## Summary\n\n" + bloat + "\n\n" + summary_table(by_stage) + "\n";
  if (start && end) {
    const long long seconds = std::max<long long>(0, static_cast<long long>(std::difftime(*end, *start)));
    out += cat("Total wall clock time: ", seconds / 3600, "h", (seconds % 3600) / 60, "m\n");
  } else {
    out += "Total wall clock time: unknown\n";
  }
  const std::filesystem::path report = dir / "report.md";
  write_file_atomically(report, out);
  std::fprintf(log, "Generated report to %s\n", report.c_str());
  return report;
}

}  // namespace nanochat::report
