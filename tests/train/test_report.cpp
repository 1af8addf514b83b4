// The report card: a stage's section in nanochat's format read back, report.md's summary table
// and wall time built from hand-made sections, reset, malformed files named, and the SVG curves
// well-formed XML (parsed with expat) with a polyline per curve.

#include <doctest/doctest.h>
#include <expat.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/read_file.hpp"
#include "nanochat/train/metrics_plot.hpp"
#include "nanochat/train/report_card.hpp"
#include "nanochat/train/report_section.hpp"
#include "train_test_util.hpp"

using namespace nanochat;
using nanochat_train_test::ScratchDir;
namespace fs = std::filesystem;

namespace {

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// A warning sink that keeps what generate/reset print.
struct Log {
  fs::path path;
  std::FILE* file;
  explicit Log(const fs::path& p) : path(p), file(std::fopen(p.c_str(), "w")) { REQUIRE(file != nullptr); }
  ~Log() {
    if (file) std::fclose(file);
  }
  std::string text() {
    std::fflush(file);
    return read_file(path);
  }
};

// The element names of a well-formed XML document, in order; "" when expat rejects it.
struct XmlElements {
  std::vector<std::string> names;
  bool well_formed = false;
};
XmlElements parse_xml(const std::string& text) {
  XmlElements out;
  XML_Parser parser = XML_ParserCreate("UTF-8");
  XML_SetUserData(parser, &out.names);
  XML_SetStartElementHandler(parser, [](void* data, const XML_Char* name, const XML_Char**) {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  });
  out.well_formed = XML_Parse(parser, text.data(), static_cast<int>(text.size()), 1) == XML_STATUS_OK;
  XML_ParserFree(parser);
  return out;
}

std::size_t count(const std::vector<std::string>& names, const std::string& name) {
  return static_cast<std::size_t>(std::count(names.begin(), names.end(), name));
}

}  // namespace

TEST_CASE("report section: nanochat's format (slug, timestamp, 4 decimals, thousands separators) reads back") {
  ScratchDir dir("report_section");
  report::StageReport section("Base model training", {{"depth", "4"}, {"run", "dummy"}});
  section.add("Minimum validation bpb", 1.23456).add("Number of parameters", std::int64_t{36'700'160})
      .add("Number of iterations", 150).add("Note", "text: with a colon").add_text("| a | b |\n|---|---|\n");
  const fs::path path = section.write(dir.path);
  CHECK(path == dir.path / "base-model-training.md");
  CHECK_FALSE(fs::exists(dir.path / "base-model-training.md.tmp"));
  const report::Section back = report::read_section(path);
  CHECK(back.title == "Base model training");
  std::time_t when{};
  CHECK(report::parse_timestamp(back.timestamp, when));
  CHECK(back.text.starts_with("## Base model training\ntimestamp: "));
  CHECK(back.text.find("\n\n- Environment: ") != std::string::npos);
  CHECK(back.text.find("| a | b |\n|---|---|\n") != std::string::npos);
  CHECK(back.metric("depth") == "4");
  CHECK(back.metric("run") == "dummy");
  CHECK(back.metric("Minimum validation bpb") == "1.2346");
  CHECK(back.metric("Number of parameters") == "36,700,160");
  CHECK(back.metric("Number of iterations") == "150");  // under 10,000: as it is
  CHECK(back.metric("Note") == "text: with a colon");
  CHECK(back.metric("Environment").find("commit ") != std::string::npos);
  CHECK_FALSE(back.metric("Wall time").empty());
  CHECK(back.metric("absent").empty());
  CHECK(report::slug("Chat evaluation sft") == "chat-evaluation-sft");
  CHECK(report::format_value(std::int64_t{9999}) == "9999");
  CHECK(report::format_value(std::int64_t{1'234'567}) == "1,234,567");
  CHECK(report::with_thousands_separators(-1234) == "-1,234");
}

TEST_CASE("report generate: sections in nanochat's order, the summary table, wall time and the curves") {
  ScratchDir dir("report_generate");
  write_text(dir.path / "header.md", "# nanochat training report\n\n### Bloat\n- Characters: 1,000\n- Lines: 20\n\n"
                                      "Run started: 2026-01-02 10:00:00\n\n---\n\n");
  write_text(dir.path / "metrics.jsonl", "{\"step\": 0, \"val_bpb\": 3.0}\n{\"step\": 0, \"loss\": 9.0}\n"
                                         "{\"step\": 1, \"loss\": 7.0}\n{\"step\": 2, \"val_bpb\": 2.5}\n");
  write_text(dir.path / "base-model-training.md", "## Base model training\ntimestamp: 2026-01-02 11:00:00\n\n"
                                                  "- Metrics file: " + (dir.path / "metrics.jsonl").string() + "\n\n");
  write_text(dir.path / "base-model-evaluation.md",
             "## Base model evaluation\ntimestamp: 2026-01-02 12:00:00\n\n- Model: base_model (step 2)\n- CORE metric: 0.2219\n"
             "- hellaswag: 0.1000\n\n");
  write_text(dir.path / "chat-evaluation-mid.md",
             "## Chat evaluation mid\ntimestamp: 2026-01-02 13:00:00\n\n- tasks: ARC-Easy|MMLU\n- ARC-Easy: 0.3561\n"
             "- MMLU: 0.3111\n- arithmetic: 0.5000\n- ChatCORE metric: 0.0730\n\n");
  write_text(dir.path / "chat-evaluation-sft.md",
             "## Chat evaluation sft\ntimestamp: 2026-01-02 13:51:30\n\n- ARC-Easy: 0.3876\n- GSM8K: 0.0455\n\n");
  // RL is left out of the wall time.
  write_text(dir.path / "chat-evaluation-rl.md", "## Chat evaluation rl\ntimestamp: 2026-01-03 09:00:00\n\n- GSM8K: 0.0758\n\n");
  Log log(dir.path / "log.txt");
  const fs::path report_path = report::generate(dir.path, log.file);
  CHECK(report_path == dir.path / "report.md");
  const std::string report = read_file(report_path);
  CAPTURE(report);
  CHECK(report.starts_with("# nanochat training report\n"));
  // In nanochat's order, the header first.
  const std::size_t training = report.find("## Base model training"), evaluation = report.find("## Base model evaluation"),
                    mid = report.find("## Chat evaluation mid"), sft = report.find("## Chat evaluation sft"),
                    summary = report.find("## Summary");
  REQUIRE(training != std::string::npos);
  CHECK(training < evaluation);
  CHECK(evaluation < mid);
  CHECK(mid < sft);
  CHECK(sft < summary);
  CHECK(report.find("![Base model training curves](base-model-training.svg)") != std::string::npos);
  CHECK(fs::exists(dir.path / "base-model-training.svg"));
  CHECK(report.find("## Summary\n\n- Characters: 1,000\n- Lines: 20\n\n") != std::string::npos);
  const std::string table =
      "| Metric          | BASE     | MID      | SFT      | RL       |\n"
      "|-----------------|----------|----------|----------|----------|\n"
      "| CORE            | 0.2219   | -        | -        | -        |\n"
      "| ARC-Easy        | -        | 0.3561   | 0.3876   | -        |\n"
      "| GSM8K           | -        | -        | 0.0455   | 0.0758   |\n"
      "| MMLU            | -        | 0.3111   | -        | -        |\n"
      "| arithmetic      | -        | 0.5000   | -        | -        |\n"
      "| ChatCORE        | -        | 0.0730   | -        | -        |\n";
  CHECK(report.find(table) != std::string::npos);
  CHECK(report.find("Total wall clock time: 3h51m\n") != std::string::npos);  // 10:00:00 to 13:51:30
  const std::string warnings = log.text();
  CHECK(warnings.find((dir.path / "tokenizer-training.md").string() + " does not exist, skipping") != std::string::npos);
  CHECK(warnings.find("chat-evaluation-rl.md does not exist") == std::string::npos);
}

TEST_CASE("report generate: without a header the wall time is unknown, and a missing metrics file is a warning") {
  ScratchDir dir("report_no_header");
  write_text(dir.path / "chat-sft.md", "## Chat SFT\ntimestamp: 2026-01-02 11:00:00\n\n- Metrics file: " +
                                           (dir.path / "gone.jsonl").string() + "\n\n");
  Log log(dir.path / "log.txt");
  const std::string report = read_file(report::generate(dir.path, log.file));
  CHECK(report.find("## Chat SFT") != std::string::npos);
  CHECK(report.find("[bloat data missing]") != std::string::npos);
  CHECK(report.find("Total wall clock time: unknown\n") != std::string::npos);
  CHECK(report.find("| Metric          | BASE     | MID      | SFT      | RL       |\n|--") != std::string::npos);
  const std::string warnings = log.text();
  CHECK(warnings.find("header.md does not exist") != std::string::npos);
  CHECK(warnings.find("gone.jsonl, which does not exist; no plot") != std::string::npos);
}

TEST_CASE("report reset: removes the report's files, keeps others, writes the header with the run's start") {
  ScratchDir dir("report_reset");
  for (const char* name : {"chat-sft.md", "report.md", "chat-sft.svg", "header.md", "midtraining.md.tmp"})
    write_text(dir.path / name, "old");
  write_text(dir.path / "notes.txt", "mine");
  Log log(dir.path / "log.txt");
  report::reset(dir.path, log.file);
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(dir.path)) left.push_back(entry.path().filename().string());
  std::sort(left.begin(), left.end());
  CHECK(left == std::vector<std::string>{"header.md", "log.txt", "notes.txt"});
  const std::string header = read_file(dir.path / "header.md");
  CHECK(header.starts_with("# nanochat training report\n\nGenerated: "));
  CHECK(header.find("### Hardware\n- Platform: ") != std::string::npos);
  CHECK(header.find("- Compiler: ") != std::string::npos);
  CHECK(report::timestamp_after(header, "Run started: ").has_value());
  CHECK(header.ends_with("\n\n---\n\n"));
  // A generate right after: the header alone, and a known wall time of 0h0m is not claimed
  // (there is no section to end it).
  const std::string report = read_file(report::generate(dir.path, log.file));
  CHECK(report.find("Total wall clock time: unknown") != std::string::npos);
}

TEST_CASE("report generate: a malformed section is an Error naming the file and the line, not a crash") {
  ScratchDir dir("report_malformed");
  Log log(dir.path / "log.txt");
  const fs::path section = dir.path / "midtraining.md";
  const std::pair<std::string, std::string> cases[] = {
      {"garbage\n", "line 1 must be '## <title>'"},
      {std::string("\0\xff\x01", 3), "line 1 must be '## <title>'"},
      {"", "line 1 must be '## <title>'"},
      {"## Midtraining\n", "line 2 must be 'timestamp: YYYY-MM-DD HH:MM:SS'"},
      {"## Midtraining\ntimestamp: yesterday\n\n", "line 2 must be 'timestamp: YYYY-MM-DD HH:MM:SS'"},
      {"## Midtraining\ntimestamp: 2026-13-40 25:00:00\n\n", "line 2 must be"},
  };
  for (const auto& [text, message] : cases) {
    CAPTURE(text);
    write_text(section, text);
    CHECK_THROWS_WITH_AS(report::generate(dir.path, log.file),
                         doctest::Contains((section.string() + ": not a report section: " + message).c_str()), Error);
  }
  fs::remove(section);
  fs::create_directories(section);  // a directory in its place
  CHECK_THROWS_WITH_AS(report::generate(dir.path, log.file), doctest::Contains((section.string()).c_str()), Error);
}

TEST_CASE("metrics plot: well-formed SVG with a polyline per curve, and bad metrics files are named") {
  ScratchDir dir("report_plot");
  const fs::path base = dir.path / "base.jsonl", rl = dir.path / "rl.jsonl";
  write_text(base, "{\"step\": 0, \"val_bpb\": 3.0}\n{\"step\": 0, \"loss\": 9.0}\n\n{\"step\": 1, \"loss\": 7.0}\n"
                   "{\"step\": 2, \"val_bpb\": 2.5}\n");
  const std::string svg = metrics_svg(base, "base_train d2 <main> & co");
  const XmlElements xml = parse_xml(svg);
  CAPTURE(svg);
  REQUIRE(xml.well_formed);
  CHECK(xml.names.front() == "svg");
  CHECK(count(xml.names, "polyline") == 2);  // val bpb and the loss
  CHECK(count(xml.names, "circle") == 2);    // a dot per evaluation
  CHECK(svg.find("base_train d2 &lt;main&gt; &amp; co") != std::string::npos);
  CHECK(svg.find("points=\"56.0,56.0 584.0,304.0\"") != std::string::npos);  // val bpb from top-left to bottom-right
  CHECK(svg.find("step (0 to 2)") != std::string::npos);
  // chat_rl: pass@1 (solid), its widest pass@k (dashed) and the smoothed reward.
  write_text(rl, "{\"step\": 0, \"pass@1\": 0.1, \"pass@4\": 0.3}\n{\"step\": 0, \"reward\": 0.2, \"loss\": 1.0}\n"
                 "{\"step\": 1, \"reward\": 0.6, \"loss\": 1.0}\n{\"step\": 2, \"pass@1\": 0.2, \"pass@4\": 0.5}\n");
  const std::string rl_svg = metrics_svg(rl);
  const XmlElements rl_xml = parse_xml(rl_svg);
  REQUIRE(rl_xml.well_formed);
  CHECK(count(rl_xml.names, "polyline") == 3);
  CHECK(rl_svg.find("stroke-dasharray") != std::string::npos);
  CHECK(rl_svg.find("reward (EMA 0.9)") != std::string::npos);

  const fs::path bad = dir.path / "bad.jsonl";
  write_text(bad, "{\"step\": 0, \"val_bpb\": 3.0}\n{\"step\": 1, \"val_b");
  CHECK_THROWS_WITH_AS(metrics_svg(bad), doctest::Contains((bad.string() + ":2").c_str()), Error);
  write_text(bad, "{\"step\": 0, \"val_bpb\": 3.0}\n[1, 2]\n");
  CHECK_THROWS_WITH_AS(metrics_svg(bad), doctest::Contains((bad.string() + ":2: not a metrics line").c_str()), Error);
  write_text(bad, "{\"step\": \"zero\", \"val_bpb\": 3.0}\n");
  CHECK_THROWS_WITH_AS(metrics_svg(bad), doctest::Contains("\"step\" must be a number"), Error);
  write_text(bad, "{\"step\": 0, \"loss\": 3.0}\n");
  CHECK_THROWS_WITH_AS(metrics_svg(bad), doctest::Contains((bad.string() + ": no val_bpb, val_loss or pass@1 lines").c_str()), Error);
  CHECK_THROWS_WITH_AS(metrics_svg(dir.path / "absent.jsonl"), doctest::Contains("absent.jsonl is not a readable file"), Error);
  // A malformed metrics file named by a section stops generate with its name.
  write_text(dir.path / "chat-rl.md", "## Chat RL\ntimestamp: 2026-01-02 11:00:00\n\n- Metrics file: " + bad.string() + "\n\n");
  Log log(dir.path / "log.txt");
  CHECK_THROWS_WITH_AS(report::generate(dir.path, log.file), doctest::Contains((bad.string()).c_str()), Error);
}
