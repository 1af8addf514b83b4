// libFuzzer target: the files of a Hugging Face model directory that `hf_convert import` reads
// (model/hf_checkpoint.hpp, tokenizer/hf_tokenizer.hpp), under ASan and UBSan. The first byte
// picks the reader (and, for the weights, whether the embeddings are tied); the rest is:
//   0: config.json, read by model_shape_from_hf_config;
//   1: tokenizer.json, read by tokenizer_from_hf_json;
//   2: model.safetensors.index.json up to the first NUL, then the one shard file it may name
//      (kShard), imported by import_hf_weights for a tiny model shape.
// What must hold:
//   - each reader either succeeds or raises a nanochat::Error naming its file (the directory for
//     the weights, whose errors name the index, a shard or the directory);
//   - a config that reads has a shape within check_model_shape's bounds, and the config.json we
//     write for that shape reads back as the same shape;
//   - a tokenizer that reads has each special after the ranks, and exporting it (hf_tokenizer_json)
//     then importing that gives the same ranks and specials with no merge missing;
//   - imported weights are a file of ours with the tiny shape's model_config and every tensor.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/core/safetensors.hpp"
#include "nanochat/model/hf_checkpoint.hpp"
#include "nanochat/tokenizer/hf_tokenizer.hpp"

using namespace nanochat;
namespace tk = nanochat::tokenizer;
using fuzz::check;

namespace {

constexpr ModelShape kTiny{1, 1, 1, 2, 3, 4};  // 2-dim model: its whole weights file is a few hundred bytes
constexpr std::string_view kShard = "model-00001-of-00001.safetensors";

bool same_shape(const ModelShape& a, const ModelShape& b) {
  return a.n_layer == b.n_layer && a.n_head == b.n_head && a.n_kv_head == b.n_kv_head && a.n_embd == b.n_embd &&
         a.vocab_size == b.vocab_size && a.sequence_len == b.sequence_len;
}

void fuzz_config(std::string_view text) {
  const std::string path = fuzz::write_file(fuzz::scratch().path() / "config.json", text).string();
  ModelShape s;
  try {
    s = model_shape_from_hf_config(json::parse(read_file(path), path), path);
  } catch (const Error& e) {
    fuzz::check_names(e, path);
    return;
  }
  check_model_shape(s, path);  // an Error here escapes, and libFuzzer saves the input
  const ModelShape again = model_shape_from_hf_config(json::parse(hf_config_json(s, 0, 1), "ours"), "ours");
  check(same_shape(s, again), "config.json: our export of the shape reads back as another shape");
}

void fuzz_tokenizer(std::string_view text) {
  const std::string path = fuzz::write_file(fuzz::scratch().path() / "tokenizer.json", text).string();
  std::optional<tk::HfTokenizerImport> imported;
  try {
    imported.emplace(tk::tokenizer_from_hf_json(read_file(path), path));
  } catch (const Error& e) {
    fuzz::check_names(e, path);
    return;
  }
  const tk::Tokenizer& tok = imported->tokenizer;
  check(tok.num_ranks() == tok.encoder().tokens().size() && tok.num_ranks() > 0, "tokenizer.json: rank count");
  for (std::size_t i = 0; i < tok.special_tokens().size(); ++i)
    check(tok.encode_special(tok.special_tokens()[i]) == static_cast<tk::TokenId>(tok.num_ranks() + i),
          "tokenizer.json: a special's id");
  const tk::HfTokenizerImport again = tk::tokenizer_from_hf_json(tk::hf_tokenizer_json(tok), "ours");
  check(again.tokenizer.encoder().tokens() == tok.encoder().tokens(), "tokenizer.json round trip: other ranks");
  check(again.tokenizer.special_tokens() == tok.special_tokens(), "tokenizer.json round trip: other specials");
  check(again.missing_merges == 0, "tokenizer.json round trip: our export lacks merges");
}

void fuzz_weights(std::string_view input, bool tied) {
  const std::vector<std::string_view> files = fuzz::split_at_nul(input, 2);
  const auto dir = fuzz::scratch().path() / "hf";
  std::filesystem::create_directories(dir);
  fuzz::write_file(dir / "model.safetensors.index.json", files[0]);
  fuzz::write_file(dir / kShard, files[1]);
  const auto out = fuzz::scratch().path() / "imported.safetensors";
  try {
    import_hf_weights(dir, kTiny, tied, out);
  } catch (const Error& e) {
    fuzz::check_names(e, dir.string());
    return;
  }
  const SafetensorsFile ours = SafetensorsFile::load(out);
  check(same_shape(model_shape_of(ours), kTiny), "imported weights: another model_config");
  for (const HfTensorName& n : hf_tensor_names(kTiny))
    check(ours.contains(n.ours) && ours.at(n.ours).shape == n.shape && ours.at(n.ours).dtype == DType::f32,
          "imported weights: a tensor is missing or misshapen");
}

// A tokenizer of every byte, two merges and two specials, as our export writes it.
std::string tiny_tokenizer_json() {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.emplace_back(1, static_cast<char>(b));
  tokens.push_back("ab");
  tokens.push_back("abc");
  return tk::hf_tokenizer_json(tk::Tokenizer(std::move(tokens), {"<|bos|>", "<|user_start|>"}));
}

// The tiny shape's weights in HF names as one shard, behind an index naming it for each tensor;
// tied embeddings leave out lm_head (the importer then takes the embedding's values).
std::string tiny_weights_input(bool tied) {
  std::vector<HfTensorName> names = hf_tensor_names(kTiny);
  if (tied) names.pop_back();  // lm_head.weight is the last
  std::vector<std::vector<float>> values;
  values.reserve(names.size());  // the tensors point into values: no reallocation
  std::vector<TensorToSave> tensors;
  std::string index = "{\"metadata\": {}, \"weight_map\": {";
  for (const HfTensorName& n : names) {
    values.emplace_back(static_cast<std::size_t>(n.shape.numel()), 0.25f * static_cast<float>(values.size()));
    tensors.push_back({n.hf, DType::f32, n.shape, values.back().data()});
    index += cat(tensors.size() > 1 ? ", " : "", json::quote(n.hf), ": ", json::quote(kShard));
  }
  index += "}}";
  const auto path = fuzz::scratch().path() / "seed.safetensors";
  save_safetensors(path, tensors, {{"format", "pt"}});
  return index + '\0' + fuzz::read_file(path);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  fuzz::write_seed(*argc, *argv, "config", '\0' + hf_config_json(kTiny, 0, 1));
  fuzz::write_seed(*argc, *argv, "config_gqa", '\0' + hf_config_json({2, 4, 2, 16, 300, 64}, 256, 257));
  fuzz::write_seed(*argc, *argv, "tokenizer", '\1' + tiny_tokenizer_json());
  fuzz::write_seed(*argc, *argv, "weights", '\2' + tiny_weights_input(false));
  fuzz::write_seed(*argc, *argv, "weights_tied", '\5' + tiny_weights_input(true));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest = fuzz::as_text(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0: fuzz_config(rest); break;
    case 1: fuzz_tokenizer(rest); break;
    default: fuzz_weights(rest, (data[0] & 4) != 0); break;
  }
  return 0;
}
