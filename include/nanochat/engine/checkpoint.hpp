#pragma once
// Finding and opening an inference checkpoint: our safetensors weights file (nanochat's
// state_dict names, model_config as metadata). A file is named directly, or found nanochat's way
// (spec §5.2): <base>/<source dir>/<tag>/model_<step>.safetensors with the tag defaulting to the
// largest d<N> directory and the step to the largest present. Its n_layer picks the compiled
// Config (dispatch_depth); a depth not compiled in, or other fields that disagree with that
// depth's shape, are errors that say what the file has and what the program knows.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>

#include "nanochat/core/depth_dispatch.hpp"
#include "nanochat/core/safetensors.hpp"
#include "nanochat/model/weights_file.hpp"

namespace nanochat::engine {

inline std::string checkpoint_dir_name(const std::string& source) {
  if (source == "base") return "base_checkpoints";
  if (source == "mid") return "mid_checkpoints";
  if (source == "sft") return "chatsft_checkpoints";
  if (source == "rl") return "chatrl_checkpoints";
  NANOCHAT_FAIL("checkpoint source '", source, "' is unknown; use base, mid, sft or rl");
}

// The weights file for source/tag/step under base; tag "" and step < 0 pick the defaults.
inline std::filesystem::path find_checkpoint(const std::filesystem::path& base, const std::string& source,
                                             std::string tag, std::int64_t step) {
  namespace fs = std::filesystem;
  const fs::path root = base / checkpoint_dir_name(source);
  NANOCHAT_CHECK(fs::is_directory(root), "no ", source, " checkpoints: ", root, " is not a directory");
  if (tag.empty()) {
    int best = -1;
    for (const auto& e : fs::directory_iterator(root)) {
      const std::string name = e.path().filename().string();
      if (!e.is_directory() || name.size() < 2 || name[0] != 'd' ||
          name.find_first_not_of("0123456789", 1) != std::string::npos)
        continue;
      if (const int depth = std::stoi(name.substr(1)); depth > best) {
        best = depth;
        tag = name;
      }
    }
    NANOCHAT_CHECK(best >= 0, "no checkpoint tag (d<depth> directory) under ", root);
  }
  const fs::path dir = root / tag;
  NANOCHAT_CHECK(fs::is_directory(dir), "checkpoint tag ", tag, ": ", dir, " is not a directory");
  if (step < 0) {
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string name = e.path().filename().string();
      const std::string prefix = "model_", suffix = ".safetensors";
      if (name.size() <= prefix.size() + suffix.size() || !name.starts_with(prefix) || !name.ends_with(suffix)) continue;
      const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
      if (digits.find_first_not_of("0123456789") != std::string::npos) continue;
      step = std::max(step, static_cast<std::int64_t>(std::stoll(digits)));
    }
    NANOCHAT_CHECK(step >= 0, "no model_<step>.safetensors in ", dir);
  }
  std::string digits = std::to_string(step);
  if (digits.size() < 6) digits.insert(0, 6 - digits.size(), '0');
  const fs::path file = dir / ("model_" + digits + ".safetensors");
  NANOCHAT_CHECK(fs::is_regular_file(file), "checkpoint step ", step, ": ", file, " does not exist");
  return file;
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
  // The context is 10 x sequence_len positions of rotary tables (nanochat's); beyond this bound
  // the tables alone would not fit a machine's memory, so the file is taken as corrupt.
  constexpr std::int64_t max_sequence_len = std::int64_t{1} << 20;
  NANOCHAT_CHECK(sequence_len <= max_sequence_len, file.path(), ": sequence_len ", sequence_len,
                 " is more than the ", max_sequence_len, " a checkpoint may have");
  NANOCHAT_CHECK(n_layer > 0 && n_layer < 1000 && Depths::contains(static_cast<int>(n_layer)), file.path(),
                 ": n_layer ", n_layer, " matches no model compiled into this program; compiled depths: ",
                 Depths::str());
  return dispatch_depth<float>(static_cast<int>(n_layer), depths, [&]<Config C>() -> decltype(auto) {
    check_model_config<C>(file, vocab);
    return fn.template operator()<C>(file, vocab, sequence_len);
  });
}

}  // namespace nanochat::engine
