#pragma once
// Our tokenizer in Hugging Face's form (the `tokenizers` library's tokenizer.json, read by
// transformers' PreTrainedTokenizerFast) and back.
//   tokenizer.json: a byte-level BPE model whose vocabulary is our ranks (token bytes written in
//     GPT-2's byte-to-character alphabet, id = rank), merges derived from the ranks, our split
//     pattern as a Split pre-tokenizer followed by ByteLevel, the ByteLevel decoder, and the
//     special tokens as added tokens after the ranks.
//   tokenizer_config.json: bos/eos/pad names and a chat template that renders conversations the
//     way render_conversation does.
// tiktoken merges any two adjacent parts whose concatenation is a token, lowest rank first. BPE
// merges only the listed pairs, in list order; listing every split of every token into two
// tokens, ordered by the rank of the whole, makes the two agree, and ignore_merges (a piece that
// is a whole token is taken as it is) matches tiktoken's first lookup.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/core/utf8.hpp"
#include "nanochat/tokenizer/pretokenizer.hpp"
#include "nanochat/tokenizer/tokenizer.hpp"

namespace nanochat::tokenizer {

// GPT-2's byte-level alphabet: printable Latin-1 bytes stand for themselves, the other 68
// bytes for U+0100.. in byte order, so that every token is a printable string.
inline const std::array<char32_t, 256>& byte_level_chars() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      t[static_cast<std::size_t>(b)] = printable ? static_cast<char32_t>(b) : next++;
    }
    return t;
  }();
  return table;
}

inline std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  for (const char c : bytes) append_utf8(out, byte_level_chars()[static_cast<unsigned char>(c)]);
  return out;
}

// The bytes a byte-level string stands for; `what` names it when a character is outside the
// alphabet (such a tokenizer is not byte-level BPE).
inline std::string byte_level_decode(std::string_view text, std::string_view what) {
  static const std::unordered_map<char32_t, char> to_byte = [] {
    std::unordered_map<char32_t, char> m;
    for (int b = 0; b < 256; ++b) m.emplace(byte_level_chars()[static_cast<std::size_t>(b)], static_cast<char>(b));
    return m;
  }();
  std::string out;
  for (std::size_t pos = 0; pos < text.size();) {
    const DecodedChar d = decode_utf8(text, pos);
    const auto it = to_byte.find(d.code);
    NANOCHAT_CHECK(it != to_byte.end(), what, " ", json::quote(text),
                   " has a character outside the byte-level alphabet (not a byte-level BPE vocabulary)");
    out += it->second;
    pos += d.size;
  }
  return out;
}

struct BpeMerge {
  TokenId left, right;  // ranks of the two parts; the merged token is their concatenation
};

// Every split of every token of two or more bytes into two tokens, ordered by the rank of the
// whole, then by the split position: the merge list under which BPE encodes as tiktoken does.
inline std::vector<BpeMerge> merges_from_ranks(const std::vector<std::string>& tokens) {
  std::unordered_map<std::string_view, TokenId> rank;
  rank.reserve(tokens.size());
  for (std::size_t r = 0; r < tokens.size(); ++r) rank.emplace(tokens[r], static_cast<TokenId>(r));
  std::vector<BpeMerge> merges;
  for (const std::string& t : tokens) {
    const std::string_view whole = t;
    for (std::size_t i = 1; i < whole.size(); ++i) {
      const auto l = rank.find(whole.substr(0, i));
      const auto r = rank.find(whole.substr(i));
      if (l != rank.end() && r != rank.end()) merges.push_back({l->second, r->second});
    }
  }
  return merges;
}

// The chat template: render_conversation's token sequence as text (the specials as added
// tokens), for transformers' apply_chat_template. Consecutive text parts of one assistant message
// become one text here (render_conversation encodes each part on its own).
inline constexpr std::string_view kHfChatTemplate =
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set system_prefix = messages[0]['content'] + '\\n\\n' -%}{%- set turns = messages[1:] -%}"
    "{%- else -%}{%- set system_prefix = '' -%}{%- set turns = messages -%}{%- endif -%}"
    "{{- bos_token -}}"
    "{%- for message in turns -%}"
    "{%- if message['role'] != ['user', 'assistant'][loop.index0 % 2] -%}"
    "{{- raise_exception('roles must alternate user, assistant (a system message may come first)') -}}"
    "{%- endif -%}"
    "{%- if message['role'] == 'user' -%}"
    "{{- '<|user_start|>' + (system_prefix if loop.first else '') + message['content'] + '<|user_end|>' -}}"
    "{%- else -%}"
    "{{- '<|assistant_start|>' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'text' -%}{{- part['text'] -}}"
    "{%- elif part['type'] == 'python' -%}{{- '<|python_start|>' + part['text'] + '<|python_end|>' -}}"
    "{%- elif part['type'] == 'python_output' -%}{{- '<|output_start|>' + part['text'] + '<|output_end|>' -}}"
    "{%- else -%}{{- raise_exception('unknown assistant content part type ' + part['type']) -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|assistant_end|>' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant_start|>' -}}{%- endif -%}";

// The chat template, bos/eos and our engine name nanochat's nine special tokens; a tokenizer
// without one of them is refused (`source` names it).
inline void check_nanochat_specials(const Tokenizer& tok, std::string_view source) {
  for (const std::string_view name : kSpecialTokens) {
    const auto& specials = tok.special_tokens();
    NANOCHAT_CHECK(std::find(specials.begin(), specials.end(), name) != specials.end(), source,
                   ": has no special token ", name, ", which the chat template, bos/eos and our engine need");
  }
}

// tokenizer.json for the `tokenizers` library.
inline std::string hf_tokenizer_json(const Tokenizer& tok) {
  const auto& tokens = tok.encoder().tokens();
  std::string out = "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [";
  for (std::size_t i = 0; i < tok.special_tokens().size(); ++i) {
    out += cat(i ? "," : "", "\n    {\"id\": ", tok.num_ranks() + i, ", \"content\": ", json::quote(tok.special_tokens()[i]),
               ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}");
  }
  out += "\n  ],\n  \"normalizer\": null,\n";
  out += "  \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [\n";
  out += "    {\"type\": \"Split\", \"pattern\": {\"Regex\": " + json::quote(kSplitPattern) +
         "}, \"behavior\": \"Isolated\", \"invert\": false},\n";
  out += "    {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}]},\n";
  out += "  \"post_processor\": null,\n";
  out += "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true},\n";
  out += "  \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, \"continuing_subword_prefix\": null,"
         " \"end_of_word_suffix\": null, \"fuse_unk\": false, \"byte_fallback\": false, \"ignore_merges\": true,\n";
  out += "    \"vocab\": {";
  std::vector<std::string> chars(tokens.size());
  for (std::size_t r = 0; r < tokens.size(); ++r) {
    chars[r] = byte_level_encode(tokens[r]);
    out += cat(r ? ", " : "", json::quote(chars[r]), ": ", r);
  }
  out += "},\n    \"merges\": [";
  bool first = true;
  for (const BpeMerge& m : merges_from_ranks(tokens)) {
    out += (first ? "\n      " : ",\n      ") + json::quote(chars[m.left] + ' ' + chars[m.right]);
    first = false;
  }
  out += "]\n  }\n}\n";
  return out;
}

// tokenizer_config.json: the special tokens transformers needs by role and the chat template.
// No post-processor adds <|bos|>: tokenizer(text) gives the ids of the text alone, as encode does.
inline std::string hf_tokenizer_config_json(std::int64_t model_max_length) {
  std::string out = "{\n  \"tokenizer_class\": \"PreTrainedTokenizerFast\",\n";
  out += "  \"bos_token\": \"<|bos|>\",\n  \"eos_token\": \"<|assistant_end|>\",\n  \"pad_token\": \"<|assistant_end|>\",\n";
  out += "  \"add_bos_token\": false,\n  \"add_eos_token\": false,\n  \"clean_up_tokenization_spaces\": false,\n";
  out += cat("  \"model_max_length\": ", model_max_length, ",\n");
  out += "  \"chat_template\": " + json::quote(kHfChatTemplate) + "\n}\n";
  return out;
}

// What an import of tokenizer.json gives: our tokenizer, and how many of the splits tiktoken
// would merge the file's merge list lacks (0 for our exports; more means that transformers may
// tokenize some text differently from the imported ranks).
struct HfTokenizerImport {
  Tokenizer tokenizer;
  std::size_t missing_merges = 0;
};

namespace detail {

inline void check_null_or_absent(const json::Value& obj, std::string_view key, std::string_view source,
                                 std::string_view why) {
  const json::Value* v = obj.find(key);
  NANOCHAT_CHECK(v == nullptr || v->is_null(), source, ": ", key, " must be null: ", why);
}

inline bool flag_is(const json::Value& obj, std::string_view key, bool expected, bool default_value) {
  const json::Value* v = obj.find(key);
  if (v == nullptr || v->is_null()) return default_value == expected;
  return std::holds_alternative<bool>(v->data) && std::get<bool>(v->data) == expected;
}

// The pre-tokenizer must be nanochat's split pattern, then byte-level without its own regex.
inline void check_hf_pre_tokenizer(const json::Value& model_json, std::string_view source) {
  const json::Value* pre = model_json.find("pre_tokenizer");
  NANOCHAT_CHECK(pre != nullptr && pre->is_object(), source, ": pre_tokenizer is missing");
  const std::string what = cat(source, ": pre_tokenizer");
  const json::Value* type = pre->find("type");
  NANOCHAT_CHECK(type != nullptr && type->string(what + " type") == "Sequence", what,
                 " must be a Sequence of Split (nanochat's pattern) and ByteLevel");
  const json::Value* list = pre->find("pretokenizers");
  NANOCHAT_CHECK(list != nullptr && list->array(what + " pretokenizers").size() == 2, what,
                 " must be a Sequence of Split (nanochat's pattern) and ByteLevel");
  const json::Value& split = list->array(what)[0];
  const json::Value& byte_level = list->array(what)[1];
  const json::Value* split_type = split.find("type");
  const json::Value* pattern = split.find("pattern");
  const json::Value* regex = pattern ? pattern->find("Regex") : nullptr;
  NANOCHAT_CHECK(split_type && split_type->is_string() && split_type->string(what) == "Split" && regex && regex->is_string(),
                 what, ": the first step must be a Split with a Regex pattern");
  NANOCHAT_CHECK(regex->string(what) == kSplitPattern, what,
                 ": unsupported split pattern (only nanochat's is implemented): ", regex->string(what));
  const json::Value* behavior = split.find("behavior");
  NANOCHAT_CHECK(behavior && behavior->is_string() && behavior->string(what) == "Isolated" &&
                     flag_is(split, "invert", false, false),
                 what, ": the Split must be behavior Isolated, invert false (the pieces are the matches)");
  const json::Value* bl_type = byte_level.find("type");
  NANOCHAT_CHECK(bl_type && bl_type->is_string() && bl_type->string(what) == "ByteLevel", what,
                 ": the second step must be ByteLevel");
  NANOCHAT_CHECK(flag_is(byte_level, "add_prefix_space", false, true) && flag_is(byte_level, "use_regex", false, true),
                 what, ": ByteLevel must have add_prefix_space false and use_regex false (nanochat splits once, "
                       "with its own pattern, and adds no space)");
}

}  // namespace detail

// Reads a tokenizer.json: a byte-level BPE whose vocabulary ids are dense ranks, special tokens
// as added tokens right after them, merges in rank order. What tiktoken's semantics cannot
// represent (another pre-tokenizer, a normalizer, byte fallback, merges out of rank order) is
// refused, named.
inline HfTokenizerImport tokenizer_from_hf_json(std::string_view text, std::string_view source) {
  const json::Value root = json::parse(text, source);
  detail::check_null_or_absent(root, "normalizer", source, "nanochat's tokenizer does not normalize text");
  detail::check_hf_pre_tokenizer(root, source);
  const json::Value* model = root.find("model");
  NANOCHAT_CHECK(model != nullptr && model->is_object(), source, ": model is missing");
  const std::string where = cat(source, ": model");
  const json::Value* type = model->find("type");
  NANOCHAT_CHECK(type != nullptr && type->string(where + " type") == "BPE", where, " type must be BPE");
  NANOCHAT_CHECK(detail::flag_is(*model, "byte_fallback", false, false), where,
                 " byte_fallback must be false (byte-level BPE has every byte as a token)");
  detail::check_null_or_absent(*model, "dropout", where, "BPE dropout samples tokenizations");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json::Value* v = model->find(key);
    NANOCHAT_CHECK(v == nullptr || v->is_null() || (v->is_string() && v->string(key).empty()), where, " ", key,
                   " must be null (nanochat's BPE marks no word boundaries)");
  }

  // Added tokens: the specials.
  std::unordered_map<std::string, std::uint64_t> added;
  std::vector<std::pair<std::uint64_t, std::string>> specials;
  if (const json::Value* list = root.find("added_tokens"); list != nullptr && !list->is_null()) {
    for (const json::Value& a : list->array(cat(source, ": added_tokens"))) {
      const std::string what = cat(source, ": added token");
      const json::Value* id = a.find("id");
      const json::Value* content = a.find("content");
      NANOCHAT_CHECK(id != nullptr && content != nullptr, what, " needs id and content");
      const std::string& name = content->string(what + " content");
      NANOCHAT_CHECK(detail::flag_is(a, "special", true, false), what, " ", name,
                     " is not special: only special added tokens can be represented (ordinary tokens are ranks)");
      added.emplace(name, id->whole_number(what + " id"));
      specials.emplace_back(id->whole_number(what + " id"), name);
    }
  }

  const json::Value* vocab = model->find("vocab");
  NANOCHAT_CHECK(vocab != nullptr, where, " has no vocab");
  const json::Object& by_text = vocab->object(where + " vocab");
  std::vector<std::string> tokens(by_text.size());
  std::vector<bool> filled(by_text.size(), false);
  std::size_t ranks = 0;
  for (const auto& [chars, id_value] : by_text) {
    const std::uint64_t id = id_value.whole_number(cat(where, " vocab id of ", json::quote(chars)));
    if (const auto it = added.find(chars); it != added.end() && it->second == id) continue;  // a special also in the vocabulary
    NANOCHAT_CHECK(id < tokens.size(), where, " vocab: id ", id, " of ", json::quote(chars),
                   " is out of range: ids must be 0..n-1 (the ranks) for n tokens");
    NANOCHAT_CHECK(!filled[id], where, " vocab: id ", id, " appears twice");
    filled[id] = true;
    tokens[id] = byte_level_decode(chars, cat(where, " vocab token"));
    ++ranks;
  }
  NANOCHAT_CHECK(ranks > 0, where, " vocab is empty");
  tokens.resize(ranks);
  NANOCHAT_CHECK(std::all_of(filled.begin(), filled.begin() + static_cast<std::ptrdiff_t>(ranks), [](bool f) { return f; }),
                 where, " vocab: ids are not 0..", ranks - 1, " without gaps");
  std::sort(specials.begin(), specials.end());
  std::vector<std::string> special_names;
  for (std::size_t i = 0; i < specials.size(); ++i) {
    NANOCHAT_CHECK(specials[i].first == ranks + i, source, ": special token ", specials[i].second, " has id ",
                   specials[i].first, "; special ids must follow the ", ranks, " ranks without gaps");
    special_names.push_back(specials[i].second);
  }

  // Merges: each joins two tokens into a token, in rank order of the result.
  std::unordered_map<std::string, TokenId> rank;
  for (std::size_t r = 0; r < tokens.size(); ++r) rank.emplace(tokens[r], static_cast<TokenId>(r));
  const json::Value* merges = model->find("merges");
  NANOCHAT_CHECK(merges != nullptr, where, " has no merges");
  std::size_t listed = 0;
  TokenId last = 0;
  for (const json::Value& m : merges->array(where + " merges")) {
    const std::string what = cat(where, " merge ", listed);
    std::string left, right;
    if (m.is_string()) {  // "left right", the older form
      const std::string& s = m.string(what);
      const std::size_t space = s.find(' ');
      NANOCHAT_CHECK(space != std::string::npos && s.find(' ', space + 1) == std::string::npos, what, " ",
                     json::quote(s), " is not two tokens separated by a space");
      left = s.substr(0, space), right = s.substr(space + 1);
    } else {
      const json::Array& pair = m.array(what);
      NANOCHAT_CHECK(pair.size() == 2, what, " must be a pair of tokens");
      left = pair[0].string(what), right = pair[1].string(what);
    }
    const std::string l = byte_level_decode(left, what), r = byte_level_decode(right, what);
    const auto whole = rank.find(l + r);
    NANOCHAT_CHECK(rank.contains(l) && rank.contains(r) && whole != rank.end(), what, " (", json::quote(left), " + ",
                   json::quote(right), ") joins tokens that are not both in the vocabulary, or into one that is not");
    NANOCHAT_CHECK(whole->second >= last, what, " makes token ", whole->second, " after token ", last,
                   ": merges out of rank order cannot be represented as tiktoken ranks");
    last = whole->second;
    ++listed;
  }
  const std::size_t all = merges_from_ranks(tokens).size();
  try {
    return {Tokenizer(std::move(tokens), std::move(special_names)), all > listed ? all - listed : 0};
  } catch (const Error& e) {
    NANOCHAT_FAIL(source, ": ", e.what());
  }
}

}  // namespace nanochat::tokenizer
