#pragma once
// GPT weights in safetensors files, under nanochat's state_dict names, with nanochat's
// model_config as metadata (n_layer, n_head, n_kv_head, n_embd, vocab_size, sequence_len). A
// file whose shape does not match the compiled Config is refused with what differs.

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "nanochat/core/safetensors.hpp"
#include "nanochat/model/weights.hpp"

namespace nanochat {

// A model's shape as a checkpoint's model_config states it (runtime values: what a file says,
// before a compiled Config is chosen for it).
struct ModelShape {
  std::int64_t n_layer = 0, n_head = 0, n_kv_head = 0, n_embd = 0, vocab_size = 0, sequence_len = 0;
  std::int64_t head_dim() const { return n_embd / n_head; }
};

// The model_config of a shape, as safetensors metadata.
inline std::map<std::string, std::string> model_config_metadata(const ModelShape& s) {
  return {{"n_layer", std::to_string(s.n_layer)},       {"n_head", std::to_string(s.n_head)},
          {"n_kv_head", std::to_string(s.n_kv_head)}, {"n_embd", std::to_string(s.n_embd)},
          {"vocab_size", std::to_string(s.vocab_size)},  {"sequence_len", std::to_string(s.sequence_len)}};
}

// The model_config a Config and vocabulary stand for.
template <Config C>
std::map<std::string, std::string> model_config_metadata(std::int64_t vocab_size, std::int64_t sequence_len) {
  return model_config_metadata(ModelShape{C::depth, C::n_head, C::n_kv_head, C::model_dim, vocab_size, sequence_len});
}

// A non-negative integer metadata field of a weights or checkpoint file (decimal digits only, as
// written); a missing, malformed or negative one is an error naming the file and the field.
inline std::int64_t metadata_integer(const SafetensorsFile& file, const std::string& key) {
  const auto it = file.metadata().find(key);
  NANOCHAT_CHECK(it != file.metadata().end(), file.path(), ": metadata has no ", key);
  const std::string& text = it->second;
  const bool digits = !text.empty() && text.size() <= 18 &&
                      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  NANOCHAT_CHECK(digits, file.path(), ": metadata ", key, " is '", text, "', not a non-negative integer below 10^18");
  return std::stoll(text);
}

// Checks that the file's model_config matches the Config and vocabulary; names the first field
// that differs. Fields the file does not carry are checked through the tensor shapes instead.
template <Config C>
void check_model_config(const SafetensorsFile& file, std::int64_t vocab_size) {
  const auto expected = model_config_metadata<C>(vocab_size, 0);
  for (const char* key : {"n_layer", "n_head", "n_kv_head", "n_embd", "vocab_size"}) {
    const auto it = file.metadata().find(key);
    if (it == file.metadata().end()) continue;
    NANOCHAT_CHECK(it->second == expected.at(key), file.path(), ": ", key, " is ", it->second,
                   " but the model (", C::name(), ", vocab ", vocab_size, ") has ", expected.at(key));
  }
}

// Copies host elements into dst, converting: float to bf16 rounds to nearest even, bf16 to float
// is exact, the same type is a plain copy.
template <class T, Backend B, class S>
void copy_converted(B& backend, TensorView<T, B> dst, std::span<const S> src) {
  if constexpr (std::is_same_v<T, S>) {
    copy_from_host(backend, dst, src);
  } else {
    std::vector<T> converted(src.size());
    for (std::size_t i = 0; i < src.size(); ++i) converted[i] = static_cast<T>(static_cast<float>(src[i]));
    copy_from_host(backend, dst, std::span<const T>(converted));
  }
}

// Copies every parameter from the file (F32 or BF16) into w, converting to w's element type;
// every name must be present with its shape.
template <Config C, Backend B, class W>
void load_weights(B& backend, GptWeights<C, B, W>& w, const SafetensorsFile& file) {
  check_model_config<C>(file, w.vocab_size());
  w.for_each([&](const std::string& name, TensorView<W, B> view) {
    NANOCHAT_CHECK(file.contains(name), file.path(), ": has no tensor ", name);
    check_shape(file.at(name).shape, view.shape(), cat(file.path(), ": ", name));
    if (file.at(name).dtype == DType::bf16) {
      copy_converted(backend, view, file.values<bf16>(name));
    } else {
      copy_converted(backend, view, file.values<float>(name));  // any other dtype is an error naming it
    }
  });
}

// dst <- src in dst's element type (fp32 weights to bf16 for inference: rounded once, here).
template <Config C, Backend B, class W, class S>
void convert_weights(B& backend, GptWeights<C, B, W>& dst, const GptWeights<C, B, S>& src) {
  NANOCHAT_CHECK(dst.vocab_size() == src.vocab_size(), "convert_weights: vocab sizes differ: ", dst.vocab_size(),
                 " and ", src.vocab_size());
  const auto host = to_host(backend, src.flat());
  copy_converted(backend, dst.flat(), std::span<const S>(host));
}

// Writes every parameter as F32 with the model_config metadata (temp file, then rename).
template <Config C, Backend B>
void save_weights(B& backend, const GptWeights<C, B>& w, const std::filesystem::path& path,
                  std::int64_t sequence_len, std::map<std::string, std::string> extra_metadata = {}) {
  const std::vector<float> host = to_host(backend, w.flat());
  std::vector<TensorToSave> tensors;
  const float* base = w.flat().data();
  w.for_each([&](const std::string& name, TensorView<float, B> view) {
    tensors.push_back({name, DType::f32, view.shape(), host.data() + (view.data() - base)});
  });
  auto metadata = model_config_metadata<C>(w.vocab_size(), sequence_len);
  metadata.merge(extra_metadata);
  save_safetensors(path, tensors, metadata);
}

}  // namespace nanochat
