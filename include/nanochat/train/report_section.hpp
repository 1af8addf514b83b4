#pragma once
// One stage's section of the report card, in nanochat's format (report.py's log): the file
// BASE/report/<slug>.md (slug: the title lower-cased, spaces to '-') holds
//   ## <title>
//   timestamp: YYYY-MM-DD HH:MM:SS
//   <blank>
//   - key: value        (one per item; floats with 4 decimals, integers >= 10,000 with commas)
//   <markdown given verbatim>
// A StageReport is made when the stage starts (it times the stage from there) and written at its
// end: the environment line, the stage's flags, its metrics, then its wall time. read_section
// parses such a file back; a file that is not one is an Error naming it and the line.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "nanochat/core/atomic_file.hpp"
#include "nanochat/core/error.hpp"
#include "nanochat/core/read_file.hpp"
#include "nanochat/data/paths.hpp"
#include "nanochat/train/report_environment.hpp"

namespace nanochat::report {

inline std::filesystem::path report_dir() { return data::base_dir() / "report"; }

inline std::string slug(std::string_view title) {
  std::string out(title);
  for (char& c : out) c = c == ' ' ? '-' : static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

// nanochat's rendering of a value: a float with 4 decimals, an integer of 10,000 or more with
// thousands separators, anything else as it is.
inline std::string format_value(double v) {
  char text[64];
  std::snprintf(text, sizeof text, "%.4f", v);
  return text;
}
inline std::string with_thousands_separators(std::int64_t v) {
  std::string digits = std::to_string(v);
  const std::ptrdiff_t first = v < 0 ? 1 : 0;  // after the sign
  for (std::ptrdiff_t at = static_cast<std::ptrdiff_t>(digits.size()) - 3; at > first; at -= 3)
    digits.insert(static_cast<std::size_t>(at), ",");
  return digits;
}
inline std::string format_value(std::int64_t v) { return v >= 10000 ? with_thousands_separators(v) : std::to_string(v); }
inline std::string format_value(std::string_view v) { return std::string(v); }

class StageReport {
 public:
  // flags: the program's flags as Flags::values() gives them (nanochat logs its argparse args).
  explicit StageReport(std::string title, const std::map<std::string, std::string>& flags = {})
      : title_(std::move(title)), started_(std::chrono::steady_clock::now()) {
    for (const auto& [name, value] : flags) add(name, value);
  }

  const std::string& title() const { return title_; }

  template <class T>
  StageReport& add(std::string_view key, const T& value) {
    if constexpr (std::is_floating_point_v<T>) body_ += cat("- ", key, ": ", format_value(static_cast<double>(value)), "\n");
    else if constexpr (std::is_integral_v<T>) body_ += cat("- ", key, ": ", format_value(static_cast<std::int64_t>(value)), "\n");
    else body_ += cat("- ", key, ": ", format_value(std::string_view(value)), "\n");
    return *this;
  }

  // Markdown written as it is (tok_eval's tables).
  StageReport& add_text(std::string_view markdown) {
    body_ += markdown;
    if (!markdown.empty() && markdown.back() != '\n') body_ += "\n";
    return *this;
  }

  // The file's text, stamped `timestamp`, with the wall time so far.
  std::string render(std::string_view timestamp) const {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    return cat("## ", title_, "\ntimestamp: ", timestamp, "\n\n- Environment: ", environment_line(), "\n", body_,
               "- Wall time: ", format_value(seconds), " s\n\n");
  }

  // Writes <dir>/<slug>.md as one unit (core/atomic_file.hpp); returns its path.
  std::filesystem::path write(const std::filesystem::path& dir = report_dir()) const {
    std::filesystem::create_directories(dir);
    const std::filesystem::path path = dir / (slug(title_) + ".md");
    write_file_atomically(path, render(local_timestamp()));
    return path;
  }

 private:
  std::string title_;
  std::chrono::steady_clock::time_point started_;
  std::string body_;
};

// A section file read back.
struct Section {
  std::filesystem::path path;
  std::string title, timestamp, text;                       // text: the whole file
  std::vector<std::pair<std::string, std::string>> items;  // the "- key: value" lines, in order

  // The value of the item named key (or "<key> metric", as nanochat names CORE and ChatCORE); the
  // last one wins, as in nanochat's extract. Empty when there is none.
  std::string metric(std::string_view key) const {
    std::string found;
    for (const auto& [k, v] : items)
      if (k == key || k == cat(key, " metric")) found = v;
    return found;
  }
};

// "YYYY-MM-DD HH:MM:SS" as seconds since the epoch (local time); false when it is not one.
inline bool parse_timestamp(std::string_view text, std::time_t& out) {
  std::tm t{};
  char tail = 0;
  const std::string s(text);
  if (s.size() != 19 || std::sscanf(s.c_str(), "%4d-%2d-%2d %2d:%2d:%2d%c", &t.tm_year, &t.tm_mon, &t.tm_mday, &t.tm_hour,
                                    &t.tm_min, &t.tm_sec, &tail) != 6)
    return false;
  if (t.tm_mon < 1 || t.tm_mon > 12 || t.tm_mday < 1 || t.tm_mday > 31 || t.tm_hour > 23 || t.tm_min > 59 || t.tm_sec > 60)
    return false;
  t.tm_year -= 1900;
  t.tm_mon -= 1;
  t.tm_isdst = -1;
  out = std::mktime(&t);
  return out != static_cast<std::time_t>(-1);
}

inline Section read_section(const std::filesystem::path& path) {
  Section s{path, "", "", read_file(path), {}};
  const std::string& text = s.text;
  std::size_t line_no = 0;
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t end = std::min(text.find('\n', at), text.size());
    const std::string_view line(text.data() + at, end - at);
    at = end + 1;
    ++line_no;
    if (line_no == 1) {
      NANOCHAT_CHECK(line.starts_with("## ") && line.size() > 3, path.string(),
                     ": not a report section: line 1 must be '## <title>'");
      s.title = line.substr(3);
    } else if (line_no == 2) {
      std::time_t ignored{};
      NANOCHAT_CHECK(line.starts_with("timestamp: ") && parse_timestamp(line.substr(11), ignored), path.string(),
                     ": not a report section: line 2 must be 'timestamp: YYYY-MM-DD HH:MM:SS'");
      s.timestamp = line.substr(11);
    } else if (line.starts_with("- ")) {
      const std::size_t colon = line.find(": ");
      if (colon != std::string_view::npos) s.items.emplace_back(line.substr(2, colon - 2), line.substr(colon + 2));
    }
  }
  NANOCHAT_CHECK(line_no >= 1, path.string(), ": not a report section: line 1 must be '## <title>'; the file is empty");
  NANOCHAT_CHECK(line_no >= 2, path.string(),
                 ": not a report section: line 2 must be 'timestamp: YYYY-MM-DD HH:MM:SS'; the file ends before it");
  return s;
}

}  // namespace nanochat::report
