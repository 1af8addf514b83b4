#pragma once
// Our GPT in Hugging Face's layout, the one transformers' NanoChatForCausalLM loads: config.json
// and model.safetensors (fp32 or bf16) under transformers' parameter names; and such a directory
// back into a weights file of ours (nanochat's names, model_config metadata).
// Same model, with these settings: rms_norm_eps = fp32 machine epsilon (nanochat's F.rms_norm with
// eps=None in fp32), relu2, softcap 15, rope theta 10000, no biases, untied embeddings. What our
// model cannot be (other activation, eps, softcap, rope, biases, shapes) is refused on import,
// named. Two differences no setting covers: transformers computes cos/sin in fp32 where nanochat
// rounds them to bf16, and its rotary has no table length (ours: 10 x sequence_len positions).

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <ios>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

#include "nanochat/core/atomic_file.hpp"
#include "nanochat/core/bf16.hpp"
#include "nanochat/core/dtype.hpp"
#include "nanochat/core/error.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/core/limits.hpp"
#include "nanochat/core/read_file.hpp"
#include "nanochat/core/safetensors.hpp"
#include "nanochat/core/shape.hpp"
#include "nanochat/model/weights_file.hpp"

namespace nanochat {

// The model_config fields at run time (a converter handles any shape, not only compiled ones).

// The shape rules our model (GptConfig) has; `source` names the file in the error. The sizes come
// from a user's file, so they are bounded (core/limits.hpp; fewer than 1000 layers, as
// engine::with_checkpoint_config takes) before any list of names or tensor size is built from them.
inline void check_model_shape(const ModelShape& s, std::string_view source) {
  const auto check_range = [&](std::int64_t v, std::string_view field, std::int64_t max) {
    NANOCHAT_CHECK(v >= 1 && v <= max, source, ": ", field, " ", v, " is outside 1..", max);
  };
  check_range(s.n_layer, "n_layer", max_layers);
  check_range(s.vocab_size, "vocab_size", max_vocab_size);
  check_range(s.sequence_len, "sequence_len", max_sequence_len);
  NANOCHAT_CHECK(s.n_head >= 1 && s.n_kv_head >= 1 && s.n_embd >= 1, source,
                 ": heads, KV heads and width must all be positive");
  NANOCHAT_CHECK(s.n_embd % s.n_head == 0, source, ": width ", s.n_embd, " does not divide into ", s.n_head, " heads");
  NANOCHAT_CHECK(s.head_dim() % 2 == 0, source, ": head dim ", s.head_dim(), " must be even (rotary pairs)");
  NANOCHAT_CHECK(s.n_kv_head <= s.n_head && s.n_head % s.n_kv_head == 0, source, ": ", s.n_head,
                 " heads are not a multiple of ", s.n_kv_head, " KV heads");
  // The largest tensors' element counts (K/V are at most n_embd rows: n_kv_head <= n_head).
  checked_mul(checked_mul(s.n_embd, std::int64_t{4}, cat(source, ": 4 x width")), s.n_embd,
              cat(source, ": the MLP's 4 x width x width"));
  checked_mul(s.vocab_size, s.n_embd, cat(source, ": vocab_size x width"));
}

inline ModelShape model_shape_of(const SafetensorsFile& file) {
  ModelShape s{metadata_integer(file, "n_layer"),    metadata_integer(file, "n_head"),
               metadata_integer(file, "n_kv_head"),  metadata_integer(file, "n_embd"),
               metadata_integer(file, "vocab_size"), metadata_integer(file, "sequence_len")};
  check_model_shape(s, file.path());
  return s;
}

// One parameter under both names, in nanochat's state_dict order.
struct HfTensorName {
  std::string ours, hf;
  Shape shape;
};

inline std::vector<HfTensorName> hf_tensor_names(const ModelShape& s) {
  const std::int64_t c = s.n_embd, kv = s.n_kv_head * s.head_dim();
  std::vector<HfTensorName> names{{"transformer.wte.weight", "model.embed_tokens.weight", {s.vocab_size, c}}};
  for (std::int64_t i = 0; i < s.n_layer; ++i) {
    const std::string p = cat("transformer.h.", i, "."), q = cat("model.layers.", i, ".");
    names.push_back({p + "attn.c_q.weight", q + "self_attn.q_proj.weight", {c, c}});
    names.push_back({p + "attn.c_k.weight", q + "self_attn.k_proj.weight", {kv, c}});
    names.push_back({p + "attn.c_v.weight", q + "self_attn.v_proj.weight", {kv, c}});
    names.push_back({p + "attn.c_proj.weight", q + "self_attn.o_proj.weight", {c, c}});
    names.push_back({p + "mlp.c_fc.weight", q + "mlp.fc1.weight", {4 * c, c}});
    names.push_back({p + "mlp.c_proj.weight", q + "mlp.fc2.weight", {c, 4 * c}});
  }
  names.push_back({"lm_head.weight", "lm_head.weight", {s.vocab_size, c}});
  return names;
}

// nanochat's RMSNorm epsilon in fp32 (PyTorch's default: the dtype's machine epsilon).
inline constexpr double kNanochatNormEps = std::numeric_limits<float>::epsilon();
inline constexpr double kRopeTheta = 10000.0;
inline constexpr double kLogitSoftcap = 15.0;

// The shortest text that reads back exactly, always with a fraction or exponent: transformers'
// config fields are typed, and 15 is an int where 15.0 is the float it wants.
inline std::string json_number(double v) {
  char buf[32];
  std::string text(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

// config.json for NanoChatForCausalLM; token ids from our tokenizer. No pad_token_id: transformers
// would make it the embedding's padding_idx, whose row fine-tuning there then never updates
// (nanochat's embedding has none); the tokenizer and generation_config.json name the pad token.
inline std::string hf_config_json(const ModelShape& s, std::int64_t bos_id, std::int64_t eos_id,
                                  DType dtype = DType::f32) {
  return cat("{\n  \"architectures\": [\"NanoChatForCausalLM\"],\n  \"model_type\": \"nanochat\",\n",
             "  \"vocab_size\": ", s.vocab_size, ",\n  \"hidden_size\": ", s.n_embd, ",\n  \"intermediate_size\": ",
             4 * s.n_embd, ",\n  \"num_hidden_layers\": ", s.n_layer, ",\n  \"num_attention_heads\": ", s.n_head,
             ",\n  \"num_key_value_heads\": ", s.n_kv_head, ",\n  \"max_position_embeddings\": ", s.sequence_len,
             ",\n  \"hidden_act\": \"relu2\",\n  \"rms_norm_eps\": ", json_number(kNanochatNormEps),
             ",\n  \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": ", json_number(kRopeTheta),
             "},\n  \"final_logit_softcapping\": ", json_number(kLogitSoftcap),
             ",\n  \"attention_bias\": false,\n  \"attention_dropout\": 0.0,\n  \"tie_word_embeddings\": false,\n",
             "  \"bos_token_id\": ", bos_id, ",\n  \"eos_token_id\": ", eos_id, ",\n  \"pad_token_id\": null",
             ",\n  \"dtype\": \"", dtype == DType::bf16 ? "bfloat16" : "float32", "\",\n  \"use_cache\": true\n}\n");
}

// Makes the directory a file is about to be written to: only then, so that a refused conversion
// leaves no empty directory behind.
inline void create_parent_directories(const std::filesystem::path& file) {
  if (!file.has_parent_path()) return;
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
  NANOCHAT_CHECK(!ec, "cannot create ", file.parent_path().string(), ": ", ec.message());
}

// Writes model.safetensors: our parameters under transformers' names, checked against the file's
// model_config, as f32 (bf16 input widened exactly) or bf16 (rounded to nearest even: half the
// bytes, as hub conversions store nanochat's models).
inline void export_hf_weights(const SafetensorsFile& ours, const ModelShape& s, const std::filesystem::path& out,
                              DType dtype = DType::f32) {
  NANOCHAT_CHECK(dtype == DType::f32 || dtype == DType::bf16, "export_hf_weights: the HF weights are f32 or bf16, not ",
                 name_of(dtype));
  const auto names = hf_tensor_names(s);
  NANOCHAT_CHECK(ours.tensors().size() == names.size(), ours.path(), ": has ", ours.tensors().size(),
                 " tensors but a model of this shape has ", names.size(), " (what are the others?)");
  std::vector<std::vector<float>> widened(names.size());  // bf16 input as f32
  std::vector<std::vector<bf16>> rounded(names.size());   // f32 values as bf16
  std::vector<TensorToSave> tensors;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const HfTensorName& n = names[i];
    NANOCHAT_CHECK(ours.contains(n.ours), ours.path(), ": has no tensor ", n.ours);
    check_shape(ours.at(n.ours).shape, n.shape, cat(ours.path(), ": ", n.ours));
    const DType stored = ours.at(n.ours).dtype;
    const void* data;
    if (stored == dtype) {
      data = ours.at(n.ours).bytes.data();
    } else if (stored == DType::bf16) {
      for (const bf16 v : ours.values<bf16>(n.ours)) widened[i].push_back(static_cast<float>(v));
      data = widened[i].data();
    } else {
      for (const float v : ours.values<float>(n.ours)) rounded[i].push_back(bf16(v));  // any other dtype: an error naming it
      data = rounded[i].data();
    }
    tensors.push_back({n.hf, dtype, n.shape, data});
  }
  create_parent_directories(out);
  save_safetensors(out, tensors, {{"format", "pt"}});  // transformers checks the format field
}

struct HfImportOptions {
  bool allow_norm_eps = false;  // take a model whose rms_norm_eps is not nanochat's (ours uses its own)
};

namespace detail {

inline double config_number(const json::Value& config, std::string_view key, double fallback, std::string_view source) {
  const json::Value* v = config.find(key);
  return v == nullptr ? fallback : v->number(cat(source, ": ", key));
}

inline std::int64_t config_count(const json::Value& config, std::string_view key, std::string_view source) {
  const json::Value* v = config.find(key);
  NANOCHAT_CHECK(v != nullptr, source, ": has no ", key);
  return static_cast<std::int64_t>(v->whole_number(cat(source, ": ", key)));
}

inline void check_rope(const json::Value& config, std::string_view source) {
  double theta = config_number(config, "rope_theta", kRopeTheta, source);  // older configs
  for (const char* key : {"rope_parameters", "rope_scaling"}) {
    const json::Value* rope = config.find(key);
    if (rope == nullptr || rope->is_null()) continue;
    const std::string what = cat(source, ": ", key);
    rope->object(what);
    if (const json::Value* type = rope->find("rope_type"); type != nullptr)
      NANOCHAT_CHECK(type->string(what + " rope_type") == "default", what, " rope_type is ", type->string(what),
                     ": nanochat's rotary embedding is the default one (no scaling)");
    theta = config_number(*rope, "rope_theta", theta, what);
  }
  NANOCHAT_CHECK(theta == kRopeTheta, source, ": rope_theta is ", theta, " but nanochat's is ", kRopeTheta);
}

}  // namespace detail

// The model shape a config.json stands for, after refusing what nanochat's model is not.
inline ModelShape model_shape_from_hf_config(const json::Value& config, std::string_view source,
                                             const HfImportOptions& options = {}) {
  config.object(source);
  const json::Value* type = config.find("model_type");
  NANOCHAT_CHECK(type != nullptr && type->is_string() && type->string(source) == "nanochat", source,
                 ": model_type must be \"nanochat\" (transformers' NanoChat architecture)");
  ModelShape s;
  s.n_layer = detail::config_count(config, "num_hidden_layers", source);
  s.n_head = detail::config_count(config, "num_attention_heads", source);
  s.n_kv_head = config.find("num_key_value_heads") && !config.find("num_key_value_heads")->is_null()
                    ? detail::config_count(config, "num_key_value_heads", source)
                    : s.n_head;
  s.n_embd = detail::config_count(config, "hidden_size", source);
  s.vocab_size = detail::config_count(config, "vocab_size", source);
  s.sequence_len = detail::config_count(config, "max_position_embeddings", source);
  check_model_shape(s, source);
  if (const json::Value* hd = config.find("head_dim"); hd != nullptr && !hd->is_null())
    NANOCHAT_CHECK(static_cast<std::int64_t>(hd->whole_number(cat(source, ": head_dim"))) == s.head_dim(), source,
                   ": head_dim must be hidden_size / num_attention_heads = ", s.head_dim(), " in nanochat's model");
  const std::int64_t mlp = config.find("intermediate_size") ? detail::config_count(config, "intermediate_size", source)
                                                            : 4 * s.n_embd;
  NANOCHAT_CHECK(mlp == 4 * s.n_embd, source, ": intermediate_size is ", mlp, " but nanochat's MLP is 4 x ",
                 s.n_embd, " = ", 4 * s.n_embd);
  if (const json::Value* act = config.find("hidden_act"); act != nullptr)
    NANOCHAT_CHECK(act->string(cat(source, ": hidden_act")) == "relu2", source, ": hidden_act is ",
                   act->string(source), " but nanochat's MLP uses relu2 (ReLU squared)");
  for (const char* key : {"attention_bias", "mlp_bias"}) {
    const json::Value* bias = config.find(key);
    NANOCHAT_CHECK(bias == nullptr || (std::holds_alternative<bool>(bias->data) && !std::get<bool>(bias->data)),
                   source, ": ", key, " must be false: nanochat's linear layers have no biases");
  }
  const json::Value* cap = config.find("final_logit_softcapping");
  NANOCHAT_CHECK(cap == nullptr || (!cap->is_null() && cap->number(source) == kLogitSoftcap), source,
                 ": final_logit_softcapping must be ", kLogitSoftcap, " (nanochat caps the logits at 15)");
  detail::check_rope(config, source);
  const double eps = detail::config_number(config, "rms_norm_eps", 1e-6, source);
  NANOCHAT_CHECK(static_cast<float>(eps) == static_cast<float>(kNanochatNormEps) || options.allow_norm_eps, source,
                 ": rms_norm_eps is ", json_number(eps), " but nanochat's is ", json_number(kNanochatNormEps),
                 " (fp32 machine epsilon); --allow-norm-eps imports it anyway, and the model then normalizes "
                 "with nanochat's epsilon");
  return s;
}

namespace detail {

// The safetensors files of an HF model directory: model.safetensors, or the shards that
// model.safetensors.index.json names.
inline std::vector<SafetensorsFile> load_hf_weight_files(const std::filesystem::path& dir) {
  std::vector<SafetensorsFile> files;
  if (std::filesystem::is_regular_file(dir / "model.safetensors")) {
    files.push_back(SafetensorsFile::load(dir / "model.safetensors"));
    return files;
  }
  const std::filesystem::path index_path = dir / "model.safetensors.index.json";
  NANOCHAT_CHECK(std::filesystem::is_regular_file(index_path), dir.string(),
                 ": has neither model.safetensors nor model.safetensors.index.json");
  const json::Value index = json::parse(read_file(index_path), index_path.string());
  const json::Value* map = index.find("weight_map");
  NANOCHAT_CHECK(map != nullptr, index_path.string(), ": has no weight_map");
  std::vector<std::string> shards;
  for (const auto& [name, file] : map->object(index_path.string() + ": weight_map")) {
    const std::string& shard = file.string(cat(index_path.string(), ": shard of ", name));
    NANOCHAT_CHECK(std::filesystem::path(shard).filename() == shard, index_path.string(), ": shard ", shard,
                   " must be a file name in the model directory");
    if (std::find(shards.begin(), shards.end(), shard) == shards.end()) shards.push_back(shard);
  }
  for (const std::string& shard : shards) files.push_back(SafetensorsFile::load(dir / shard));
  return files;
}

}  // namespace detail

// Writes our weights file (f32, nanochat's names and order, model_config and `metadata`) from an
// HF model directory whose config gave `s`. Tied embeddings without an lm_head tensor take wte's
// values; a tensor nanochat has no place for (a bias, a norm weight) is refused. Once all is
// checked, and only then, the files in `remove_first` (the rest of a checkpoint step being
// replaced) are removed durably, before out is written.
inline void import_hf_weights(const std::filesystem::path& dir, const ModelShape& s, bool tied,
                              const std::filesystem::path& out, const std::map<std::string, std::string>& metadata = {},
                              const std::vector<std::filesystem::path>& remove_first = {}) {
  const std::vector<SafetensorsFile> files = detail::load_hf_weight_files(dir);
  const auto find = [&](const std::string& name) -> const SafetensorsFile* {
    for (const SafetensorsFile& f : files)
      if (f.contains(name)) return &f;
    return nullptr;
  };
  const std::vector<HfTensorName> names = hf_tensor_names(s);
  for (const SafetensorsFile& f : files) {
    for (const SafetensorsTensor& t : f.tensors()) {
      const bool ours = std::any_of(names.begin(), names.end(), [&](const HfTensorName& n) { return n.hf == t.name; });
      NANOCHAT_CHECK(ours, f.path(), ": tensor ", t.name, " has no place in nanochat's model (",
                     s.n_layer, " layers, no biases, no norm weights)");
    }
  }
  std::vector<std::vector<float>> widened(names.size());  // bf16 tensors as f32; f32 ones are written from the file
  std::vector<TensorToSave> tensors;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const HfTensorName& n = names[i];
    std::string name = n.hf;
    if (name == "lm_head.weight" && tied && find(name) == nullptr) name = "model.embed_tokens.weight";
    const SafetensorsFile* f = find(name);
    NANOCHAT_CHECK(f != nullptr, dir.string(), ": has no tensor ", name);
    check_shape(f->at(name).shape, n.shape, cat(f->path(), ": ", name));
    const float* data;
    if (f->at(name).dtype == DType::bf16) {
      for (const bf16 v : f->values<bf16>(name)) widened[i].push_back(static_cast<float>(v));
      data = widened[i].data();
    } else {
      data = f->values<float>(name).data();  // any other dtype is an error naming it
    }
    tensors.push_back({n.ours, DType::f32, n.shape, data});
  }
  for (const std::filesystem::path& stale : remove_first) remove_file_durably(stale);
  create_parent_directories(out);
  std::map<std::string, std::string> all_metadata = model_config_metadata(s);
  all_metadata.insert(metadata.begin(), metadata.end());
  save_safetensors(out, tensors, all_metadata);
}

}  // namespace nanochat
