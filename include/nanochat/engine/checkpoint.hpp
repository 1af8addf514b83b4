#pragma once
// Finding and opening an inference checkpoint: our safetensors weights file (nanochat's
// state_dict names, model_config as metadata). A file is named directly, or found nanochat's way
// (spec §5.2): <base>/<source dir>/<tag>/model_<step>.safetensors with the tag defaulting to the
// largest d<N> directory and the step to the largest present, both among complete checkpoints
// (weights and meta file of the same step). Its n_layer picks the compiled Config
// (dispatch_depth); a depth not compiled in, or other fields that disagree with that depth's
// shape, are errors that say what the file has and what the program knows.

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "nanochat/core/depth_dispatch.hpp"
#include "nanochat/core/limits.hpp"
#include "nanochat/core/safetensors.hpp"
#include "nanochat/core/step_names.hpp"
#include "nanochat/data/paths.hpp"
#include "nanochat/model/weights_file.hpp"

namespace nanochat::engine {

inline std::string checkpoint_dir_name(const std::string& source) {
  if (source == "base") return "base_checkpoints";
  if (source == "mid") return "mid_checkpoints";
  if (source == "sft") return "chatsft_checkpoints";
  if (source == "rl") return "chatrl_checkpoints";
  NANOCHAT_FAIL("checkpoint source '", source, "' is unknown; use base, mid, sft or rl");
}

// The depth N of a d<N> tag (nanochat's default tags); nullopt for any other name.
inline std::optional<int> tag_depth(std::string_view tag) {
  int depth = 0;
  if (tag.size() < 2 || tag[0] != 'd' || tag[1] < '1' || tag[1] > '9') return std::nullopt;
  const auto [end, ec] = std::from_chars(tag.data() + 1, tag.data() + tag.size(), depth);
  if (ec != std::errc{} || end != tag.data() + tag.size()) return std::nullopt;
  return depth;
}

// The weights file for source/tag/step under base. Tag "" picks the deepest d<N> directory that
// holds a complete checkpoint (an empty or half-written one, or a stray entry, is passed over);
// step < 0 picks the latest complete step.
inline std::filesystem::path find_checkpoint(const std::filesystem::path& base, const std::string& source,
                                             std::string tag, std::int64_t step) {
  namespace fs = std::filesystem;
  const fs::path root = base / checkpoint_dir_name(source);
  NANOCHAT_CHECK(fs::is_directory(root), "no ", source, " checkpoints: ", root, " is not a directory");
  if (tag.empty()) {
    int best = -1;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root, ec)) {
      const std::string name = e.path().filename().string();
      const auto depth = tag_depth(name);
      if (depth && *depth > best && e.is_directory(ec) && latest_complete_step(e.path()) >= 0) {
        best = *depth;
        tag = name;
      }
    }
    NANOCHAT_CHECK(best >= 0, "no d<depth> directory under ", root,
                   " holds a complete checkpoint (model_<step>.safetensors with its meta_<step>.json)");
  }
  const fs::path dir = root / data::check_path_component(tag, "--model-tag");
  NANOCHAT_CHECK(fs::is_directory(dir), "checkpoint tag ", tag, ": ", dir, " is not a directory");
  if (step < 0) {
    step = latest_complete_step(dir);
    NANOCHAT_CHECK(step >= 0, "no complete checkpoint (model_<step>.safetensors with its meta_<step>.json) in ", dir);
  }
  const fs::path file = dir / step_file_name("model_", step, ".safetensors");
  NANOCHAT_CHECK(fs::is_regular_file(file), "checkpoint step ", step, ": ", file, " does not exist");
  NANOCHAT_CHECK(is_complete_checkpoint(dir, step), "checkpoint step ", step, " in ", dir, " is incomplete: ",
                 step_file_name("meta_", step, ".json"), " is missing (the run stopped while saving it?)");
  return file;
}

// A stage program's --source: a stage (base, mid, sft, rl), found as find_checkpoint finds it, or
// a checkpoint directory (its latest complete step, or `step`).
inline std::filesystem::path find_source_checkpoint(const std::filesystem::path& base, const std::string& source,
                                                    const std::string& tag, std::int64_t step) {
  namespace fs = std::filesystem;
  if (source == "base" || source == "mid" || source == "sft" || source == "rl")
    return find_checkpoint(base, source, tag, step);
  NANOCHAT_CHECK(fs::is_directory(source), "--source ", source,
                 " is neither base, mid, sft or rl nor a checkpoint directory");
  if (step < 0) step = latest_complete_step(source);
  NANOCHAT_CHECK(step >= 0, "--source ", source,
                 ": no complete checkpoint (model_<step>.safetensors with its meta_<step>.json) in it");
  NANOCHAT_CHECK(is_complete_checkpoint(source, step), "--source ", source, ": step ", step,
                 " is not a complete checkpoint there");
  return fs::path(source) / step_file_name("model_", step, ".safetensors");
}

// A checkpoint runs with the tokenizer it was trained with: at least their vocabularies agree.
inline void check_tokenizer_vocab(std::size_t tokenizer_vocab, const std::filesystem::path& tokenizer_dir,
                                  const SafetensorsFile& file, std::int64_t vocab) {
  NANOCHAT_CHECK(static_cast<std::int64_t>(tokenizer_vocab) == vocab, "the tokenizer in ", tokenizer_dir, " has ", tokenizer_vocab,
                 " tokens but ", file.path(), " was trained with ", vocab);
}

// Calls fn.template operator()<C>(file, vocab_size, sequence_len) with the compiled Config whose
// depth is the file's n_layer, after checking the file's other fields against it.
template <class Depths, class Fn>
decltype(auto) with_checkpoint_config(const SafetensorsFile& file, Depths depths, Fn&& fn) {
  const std::int64_t n_layer = metadata_integer(file, "n_layer");
  const std::int64_t vocab = metadata_integer(file, "vocab_size");
  const std::int64_t sequence_len = metadata_integer(file, "sequence_len");
  NANOCHAT_CHECK(vocab > 0 && sequence_len > 0, file.path(), ": vocab_size ", vocab, " and sequence_len ",
                 sequence_len, " must be positive");
  // Beyond this bound (core/limits.hpp) the file is taken as corrupt.
  NANOCHAT_CHECK(sequence_len <= max_sequence_len, file.path(), ": sequence_len ", sequence_len,
                 " is more than the ", max_sequence_len, " a checkpoint may have");
  NANOCHAT_CHECK(n_layer > 0 && n_layer <= max_layers && Depths::contains(static_cast<int>(n_layer)), file.path(),
                 ": n_layer ", n_layer, " matches no model compiled into this program; compiled depths: ",
                 Depths::str());
  return dispatch_depth<float>(static_cast<int>(n_layer), depths, [&]<Config C>() -> decltype(auto) {
    check_model_config<C>(file, vocab);
    return fn.template operator()<C>(file, vocab, sequence_len);
  });
}

// What the chat programs' --checkpoint/-i/--model-tag/--step and --tokenizer flags name: the
// weights file given, else the one find_checkpoint picks under data::base_dir(); the tokenizer
// directory given, else <base>/tokenizer.
inline std::filesystem::path chat_checkpoint_path(const std::string& checkpoint, const std::string& source,
                                                  const std::string& model_tag, std::int64_t step) {
  return !checkpoint.empty() ? std::filesystem::path(checkpoint)
                             : find_checkpoint(data::base_dir(), source, model_tag, step);
}
inline std::filesystem::path chat_tokenizer_dir(const std::string& tokenizer) {
  return tokenizer.empty() ? data::base_dir() / "tokenizer" : std::filesystem::path(tokenizer);
}

}  // namespace nanochat::engine
