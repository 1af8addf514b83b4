#pragma once
// On-disk tokenizer: a directory with
//   tokenizer.tiktoken  one "base64(token bytes) rank" line per mergeable token, the format
//                       tiktoken.load.load_tiktoken_bpe reads;
//   tokenizer.json      {"pattern": <split pattern>, "special_tokens": {name: id, ...}}.
// Loading validates everything (a user's file is never trusted) and fails with the path and the
// line; saving writes temporary files and renames them so a crash leaves no half-written file.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nanochat/core/atomic_file.hpp"
#include "nanochat/core/error.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/core/read_file.hpp"
#include "nanochat/tokenizer/pretokenizer.hpp"
#include "nanochat/tokenizer/tokenizer.hpp"

namespace nanochat::tokenizer {

inline constexpr std::string_view kRanksFileName = "tokenizer.tiktoken";
inline constexpr std::string_view kConfigFileName = "tokenizer.json";

inline std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  const auto at = [&](std::size_t k) { return std::uint32_t{static_cast<unsigned char>(bytes[k])}; };
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    const std::uint32_t v = (at(i) << 16) | (rest == 2 ? at(i + 1) << 8 : 0);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// Strict decoding (padding required, as Python's b64decode); returns false on bad input.
inline bool base64_decode(std::string_view text, std::string& out) {
  out.clear();
  if (text.size() % 4 != 0) return false;
  const auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const int pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=') : 0;
    if (pad == 1 && text[i + 2] == '=') return false;
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + static_cast<std::size_t>(k)];
      const int d = (k >= 4 - pad) ? 0 : value(c);
      if (d < 0) return false;
      v = (v << 6) | static_cast<std::uint32_t>(d);
    }
    out += static_cast<char>(v >> 16);
    if (pad < 2) out += static_cast<char>((v >> 8) & 0xFF);
    if (pad < 1) out += static_cast<char>(v & 0xFF);
  }
  return true;
}

// Parses a tiktoken ranks file: returns the token bytes by rank. Ranks must be 0..n-1, each once.
inline std::vector<std::string> parse_ranks(std::string_view text, std::string_view source) {
  std::vector<std::pair<std::uint64_t, std::string>> entries;  // (rank, bytes)
  std::vector<std::size_t> lines;                                // line of each entry
  std::size_t line_no = 0;
  std::string bytes;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const std::size_t space = line.find(' ');
    NANOCHAT_CHECK(space != std::string_view::npos, source, ":", line_no,
                   ": expected \"<base64 token> <rank>\"");
    const std::string_view b64 = line.substr(0, space);
    const std::string_view rank_text = line.substr(space + 1);
    NANOCHAT_CHECK(base64_decode(b64, bytes) && !bytes.empty(), source, ":", line_no,
                   ": invalid base64 token");
    NANOCHAT_CHECK(!rank_text.empty() && rank_text.size() <= 10, source, ":", line_no,
                   ": invalid rank");
    std::uint64_t rank = 0;
    for (char c : rank_text) {
      NANOCHAT_CHECK(c >= '0' && c <= '9', source, ":", line_no, ": invalid rank");
      rank = rank * 10 + static_cast<std::uint64_t>(c - '0');
    }
    entries.emplace_back(rank, bytes);
    lines.push_back(line_no);
  }
  NANOCHAT_CHECK(!entries.empty(), source, ": no tokens");
  // Checked against the number of lines before allocating, so a corrupt rank cannot ask for
  // gigabytes.
  std::vector<std::string> tokens(entries.size());
  std::vector<bool> seen(entries.size(), false);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::uint64_t rank = entries[i].first;
    NANOCHAT_CHECK(rank < entries.size(), source, ":", lines[i], ": rank ", rank,
                   " is out of range: ranks must be 0..n-1 for n = ", entries.size(), " tokens (one missing?)");
    NANOCHAT_CHECK(!seen[rank], source, ":", lines[i], ": rank ", rank, " appears twice");
    seen[rank] = true;
    tokens[rank] = std::move(entries[i].second);
  }
  return tokens;
}

inline std::string format_ranks(const std::vector<std::string>& tokens) {
  std::string out;
  for (std::size_t r = 0; r < tokens.size(); ++r) {
    out += base64_encode(tokens[r]);
    out += ' ';
    out += std::to_string(r);
    out += '\n';
  }
  return out;
}

inline void save_tokenizer(const Tokenizer& tok, const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  NANOCHAT_CHECK(!ec, "tokenizer: cannot create directory ", dir.string(), ": ", ec.message());
  write_file_atomically(dir / kRanksFileName, format_ranks(tok.encoder().tokens()));
  std::string config = "{\n  \"pattern\": " + json::quote(kSplitPattern) + ",\n  \"special_tokens\": {";
  for (std::size_t i = 0; i < tok.special_tokens().size(); ++i) {
    config += (i ? ",\n    " : "\n    ") + json::quote(tok.special_tokens()[i]) + ": " +
              std::to_string(tok.num_ranks() + i);
  }
  config += "\n  }\n}\n";
  write_file_atomically(dir / kConfigFileName, config);
}

inline Tokenizer load_tokenizer(const std::filesystem::path& dir) {
  const std::filesystem::path ranks_path = dir / kRanksFileName;
  const std::filesystem::path config_path = dir / kConfigFileName;
  std::vector<std::string> tokens = parse_ranks(read_file(ranks_path), ranks_path.string());
  const std::string config_text = read_file(config_path);
  const std::string source = config_path.string();
  const json::Value config = json::parse(config_text, source);
  const json::Value* pattern = config.find("pattern");
  NANOCHAT_CHECK(pattern != nullptr, source, ": missing \"pattern\"");
  NANOCHAT_CHECK(pattern->string(source + ": pattern") == kSplitPattern, source,
                 ": unsupported split pattern (only nanochat's is implemented): ",
                 pattern->string(source + ": pattern"));
  const json::Value* specials = config.find("special_tokens");
  NANOCHAT_CHECK(specials != nullptr, source, ": missing \"special_tokens\"");
  const json::Object& by_name = specials->object(source + ": special_tokens");
  std::vector<std::string> names(by_name.size());
  std::vector<bool> filled(by_name.size(), false);
  for (const auto& [name, id_value] : by_name) {
    const std::uint64_t id = id_value.whole_number(cat(source, ": id of ", name));
    const std::uint64_t first = tokens.size();
    NANOCHAT_CHECK(id >= first && id < first + names.size(), source, ": special token ", name, " has id ", id,
                   "; special ids must follow the ", tokens.size(), " ranks without gaps");
    const auto index = static_cast<std::size_t>(id - first);
    NANOCHAT_CHECK(!filled[index], source, ": two special tokens have id ", id);
    filled[index] = true;
    names[index] = name;
  }
  try {
    return Tokenizer(std::move(tokens), std::move(names));
  } catch (const Error& e) {
    NANOCHAT_FAIL(dir.string(), ": ", e.what());
  }
}

}  // namespace nanochat::tokenizer
