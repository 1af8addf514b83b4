#pragma once
// CORE's prompts and answer spans (spec §6.2), as nanochat's core_eval renders and batches them:
// the text its jinja templates give, the ids with <|bos|> in front, and for each row the span
// [start, end) of ids whose log-likelihood is scored.
//   few-shot  example idx draws random.Random(1234 + idx).sample(every other index, k); each shot
//             is rendered like the item with its gold answer, followed by "\n\n"
//   MC        a row per choice: shots + query + delimiter + choice; the span starts at the
//             choices' common token prefix
//   schema    a row per context option: shots + option + delimiter + continuation; the span is
//             the options' common token suffix
//   LM        one row: shots + trim(context) + delimiter + continuation; the span starts after
//             the same text without the continuation, Python-stripped, which must be a token
//             prefix of it
// A row longer than the model's context keeps its last positions, the span moved with it, as
// nanochat crops for a model with a maximum length.

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/utf8.hpp"
#include "nanochat/eval/core_bundle.hpp"
#include "nanochat/tasks/python_random.hpp"
#include "nanochat/tokenizer/tokenizer.hpp"

namespace nanochat::eval {

// The rows of one example and their answer spans.
struct CoreRows {
  std::vector<std::vector<tokenizer::TokenId>> ids;
  std::vector<std::size_t> start, end;
};

namespace core_prompts_detail {

// Python's str.isspace() (Unicode White_Space plus the separators U+001C..U+001F).
inline bool python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Python's str.strip() of UTF-8 text (jinja's trim filter is the same).
inline std::string_view python_strip(std::string_view text) {
  std::size_t begin = 0;
  while (begin < text.size()) {
    const DecodedChar c = decode_utf8(text, begin);
    if (!python_space(c.code)) break;
    begin += c.size;
  }
  std::size_t end = begin;  // just past the last non-space character
  for (std::size_t pos = begin; pos < text.size();) {
    const DecodedChar c = decode_utf8(text, pos);
    pos += c.size;
    if (!python_space(c.code)) end = pos;
  }
  return text.substr(begin, end - begin);
}

// nanochat's find_common_length: how many ids all rows share from the front (or the back).
inline std::size_t common_length(const std::vector<std::vector<tokenizer::TokenId>>& rows, bool from_back) {
  std::size_t shortest = rows[0].size();
  for (const auto& row : rows) shortest = std::min(shortest, row.size());
  for (std::size_t i = 0; i < shortest; ++i) {
    const auto at = [&](const std::vector<tokenizer::TokenId>& row) { return from_back ? row[row.size() - 1 - i] : row[i]; };
    for (const auto& row : rows)
      if (at(row) != at(rows[0])) return i;
  }
  return shortest;
}

}  // namespace core_prompts_detail

// The data indices of example idx's shots among n examples (nanochat's few-shot draw).
inline std::vector<std::size_t> core_fewshot_indices(std::size_t idx, std::size_t n, std::size_t k,
                                                     std::string_view label) {
  if (k == 0) return {};
  NANOCHAT_CHECK(n > k, "CORE ", label, ": ", k, " shots need more than ", n, " examples");
  tasks::PythonRandom rng(1234 + static_cast<std::int64_t>(idx));
  std::vector<std::size_t> shots = rng.sample_positions(n - 1, k);  // positions in the list without idx
  for (std::size_t& s : shots)
    if (s >= idx) ++s;
  return shots;
}

// The prompt texts of one example: a row per choice (MC), per context option (schema), or the
// prompt without and with the continuation (LM).
inline std::vector<std::string> render_core_prompts(const CoreTask& task, const CoreExample& item,
                                                    const std::vector<const CoreExample*>& shots) {
  using core_prompts_detail::python_strip;
  const std::string& delimiter = task.continuation_delimiter;
  std::string prefix;
  for (const CoreExample* shot : shots) {
    switch (task.type) {
      case CoreTaskType::multiple_choice: prefix += shot->query + delimiter + shot->options[shot->gold]; break;
      case CoreTaskType::schema: prefix += shot->options[shot->gold] + delimiter + shot->continuation; break;
      case CoreTaskType::language_modeling:
        prefix += std::string(python_strip(shot->context)) + delimiter + shot->continuation;
        break;
    }
    prefix += "\n\n";
  }
  std::vector<std::string> prompts;
  switch (task.type) {
    case CoreTaskType::multiple_choice:
      for (const std::string& choice : item.options) prompts.push_back(prefix + item.query + delimiter + choice);
      break;
    case CoreTaskType::schema:
      for (const std::string& option : item.options) prompts.push_back(prefix + option + delimiter + item.continuation);
      break;
    case CoreTaskType::language_modeling: {
      const std::string without = prefix + std::string(python_strip(item.context)) + delimiter;
      prompts.push_back(std::string(python_strip(without)));
      prompts.push_back(without + item.continuation);
      break;
    }
  }
  return prompts;
}

// The ids (<|bos|> first) and spans of the prompts render_core_prompts gave.
inline CoreRows tokenize_core_prompts(const tokenizer::Tokenizer& tok, CoreTaskType type,
                                      const std::vector<std::string>& prompts, std::string_view where) {
  CoreRows rows;
  for (const std::string& prompt : prompts) {
    std::vector<tokenizer::TokenId> ids{tok.bos_id()};
    tok.encode_into(prompt, ids);
    rows.ids.push_back(std::move(ids));
  }
  switch (type) {
    case CoreTaskType::multiple_choice: {
      const std::size_t start = core_prompts_detail::common_length(rows.ids, false);
      for (const auto& ids : rows.ids) rows.start.push_back(start), rows.end.push_back(ids.size());
      break;
    }
    case CoreTaskType::schema: {
      const std::size_t suffix = core_prompts_detail::common_length(rows.ids, true);
      for (const auto& ids : rows.ids) rows.start.push_back(ids.size() - suffix), rows.end.push_back(ids.size());
      break;
    }
    case CoreTaskType::language_modeling: {
      const auto& without = rows.ids[0];
      const auto& with = rows.ids[1];
      NANOCHAT_CHECK(without.size() < with.size() && std::equal(without.begin(), without.end(), with.begin()), where,
                     ": the prompt without its continuation does not tokenize to a prefix of the prompt with it");
      const std::size_t start = without.size(), end = with.size();
      rows.ids.erase(rows.ids.begin());  // only the prompt with the continuation is run
      rows.start = {start};
      rows.end = {end};
      break;
    }
  }
  return rows;
}

// Rows longer than max_ids keep their last max_ids ids; the spans move down with them. A span
// must keep the position that predicts its first id.
inline std::size_t crop_core_rows(CoreRows& rows, std::size_t max_ids, std::string_view where) {
  std::size_t cropped = 0;
  for (std::size_t r = 0; r < rows.ids.size(); ++r) {
    auto& ids = rows.ids[r];
    if (ids.size() <= max_ids) continue;
    const std::size_t cut = ids.size() - max_ids;
    NANOCHAT_CHECK(rows.start[r] > cut, where, ": the answer does not fit the model's context of ", max_ids,
                   " positions (the row has ", ids.size(), " ids, the answer starts at ", rows.start[r], ")");
    ids.erase(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(cut));
    rows.start[r] -= cut;
    rows.end[r] -= cut;
    ++cropped;
  }
  return cropped;
}

// Example idx of a task's (shuffled, cropped) data, rendered and tokenized.
inline CoreRows core_example_rows(const tokenizer::Tokenizer& tok, const CoreTask& task,
                                  const std::vector<CoreExample>& data, std::size_t idx) {
  std::vector<const CoreExample*> shots;
  for (std::size_t s : core_fewshot_indices(idx, data.size(), task.num_fewshot, task.label)) shots.push_back(&data[s]);
  return tokenize_core_prompts(tok, task.type, render_core_prompts(task, data[idx], shots),
                               cat("CORE ", task.label, " example ", idx));
}

}  // namespace nanochat::eval
