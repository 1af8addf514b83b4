// libFuzzer target: text and JSONL corpus shards (data/document_source.hpp), under ASan and
// UBSan. The first byte picks the format and options (low 2 bits: .jsonl, .txt by line, by
// paragraph, whole file; next 2 bits: 1 to 4 documents per group); the rest is the shard file.
// Every group read must equal what an independent reference makes of the same bytes:
//   - lines end at "\n", and one "\r" before it (or before the end of the file) is not part of
//     the line; a line of only spaces, tabs and "\r" is blank;
//   - .txt by line: every non-blank line; by paragraph: runs of non-blank lines joined by "\n";
//     whole file: the file with "\r\n" as "\n", if not empty;
//   - .jsonl: every non-blank line is one JSON object whose "text" member (the last one, if
//     repeated) is a string, read as the JSON tree reads it with lone surrogates kept; a group
//     with a document that is not raises a nanochat::Error naming the first such document.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/data/document_source.hpp"

using namespace nanochat;
using fuzz::check;

namespace {

struct Line {
  std::string_view text;  // without its "\n" and one "\r" before it
  bool blank;
};

std::vector<Line> split_lines(std::string_view file) {
  std::vector<Line> lines;
  while (!file.empty()) {
    const std::size_t nl = file.find('\n');
    std::string_view line = file.substr(0, nl);
    file.remove_prefix(nl == std::string_view::npos ? file.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const bool blank = line.find_first_not_of(" \t\r") == std::string_view::npos;
    lines.push_back({line, blank});
  }
  return lines;
}

std::vector<std::string> text_documents(std::string_view file, data::TextSplit split) {
  std::vector<std::string> docs;
  if (split == data::TextSplit::file) {
    if (file.empty()) return docs;
    std::string doc;
    for (std::size_t i = 0; i < file.size(); ++i)
      if (!(file[i] == '\r' && i + 1 < file.size() && file[i + 1] == '\n')) doc += file[i];
    docs.push_back(doc);
    return docs;
  }
  bool in_paragraph = false;
  for (const Line& line : split_lines(file)) {
    if (line.blank) {
      in_paragraph = false;
    } else if (split == data::TextSplit::paragraph && in_paragraph) {
      docs.back() += '\n';
      docs.back() += line.text;
    } else {
      docs.emplace_back(line.text);
      in_paragraph = true;
    }
  }
  return docs;
}

// What a shard must make of one document: refuse it, skip it (a null), or read its text.
struct Expected {
  bool valid = true;
  std::optional<std::string> text;  // nullopt: a null document
};

Expected jsonl_document(std::string_view line) {
  try {
    json::Reader in(line, "line", json::LoneSurrogate::keep);
    const json::Value v = json::read_value(in);
    in.finish();
    const json::Value* text = v.is_object() ? v.find("text") : nullptr;
    if (text != nullptr && text->is_null()) return {true, std::nullopt};
    if (text == nullptr || !text->is_string()) return {false, std::nullopt};
    return {true, std::get<std::string>(text->data)};
  } catch (const Error&) {
    return {false, std::nullopt};
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const int format = data[0] & 3;
  const std::size_t group_size = 1 + ((data[0] >> 2) & 3);
  const std::string_view file = fuzz::as_text(data + 1, size - 1);
  const bool jsonl = format == 0;
  const data::TextSplit split = format == 1 ? data::TextSplit::line
                                : format == 2 ? data::TextSplit::paragraph
                                              : data::TextSplit::file;

  // Reference: what the shard must make of each document.
  std::vector<Expected> expected;
  if (jsonl) {
    for (const Line& line : split_lines(file))
      if (!line.blank) expected.push_back(jsonl_document(line.text));
  } else {
    for (std::string& doc : text_documents(file, split)) expected.push_back({true, std::move(doc)});
  }

  const auto path = fuzz::write_file(fuzz::scratch().path() / (jsonl ? "shard.jsonl" : "shard.txt"), file);
  data::CorpusOptions options;
  options.text_split = split;
  options.group_size = group_size;
  const auto shard = data::open_shard(path, options);
  check(shard->num_groups() == (expected.size() + group_size - 1) / group_size, "number of groups");
  std::vector<std::string> docs;
  for (std::size_t g = 0; g < shard->num_groups(); ++g) {
    const std::size_t first = g * group_size, last = std::min(expected.size(), first + group_size);
    std::optional<std::size_t> bad;
    std::vector<std::string> texts;
    std::size_t nulls = 0;
    for (std::size_t d = first; d < last && !bad; ++d) {
      if (!expected[d].valid) bad = d;
      else if (expected[d].text) texts.push_back(*expected[d].text);
      else ++nulls;
    }
    try {
      check(shard->read_group(g, docs) == nulls, "null documents counted");
      check(!bad, "a group with an invalid document was read");
    } catch (const Error& e) {
      check(bad.has_value(), "a valid group was refused");
      fuzz::check_names(e, cat(path.string(), ": document ", *bad, ":"));
      continue;
    }
    check(docs == texts, "the group's documents");
  }
  try {
    shard->read_group(shard->num_groups(), docs);
    check(false, "a group past the end was read");
  } catch (const Error& e) {
    fuzz::check_names(e, path.string());
  }
  return 0;
}
