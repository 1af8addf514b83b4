#pragma once
// Training checkpoints, in nanochat's layout (spec §5.2) with our file formats: per step S,
// model_SSSSSS.safetensors (weights, nanochat's names), optim_SSSSSS_rank0.safetensors (AdamW
// moments, Muon momentum buffers, step counts) and meta_SSSSSS.json (step, model_config, the
// run's flags, the data loader's exact position, the loop's state). Each file is written to a
// temporary name and renamed; meta goes last, so a checkpoint without its meta is incomplete and
// is never picked up.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "nanochat/core/json.hpp"
#include "nanochat/core/safetensors.hpp"
#include "nanochat/data/token_loader.hpp"
#include "nanochat/model/weights_file.hpp"
#include "nanochat/optim/nanochat_optimizers.hpp"

namespace nanochat {

// Everything besides weights and optimizer state that a resumed run needs to continue exactly.
struct TrainState {
  std::int64_t step = 0;
  double val_bpb = 0.0, min_val_bpb = 0.0, smooth_train_loss = 0.0, total_training_time = 0.0;
  data::LoaderState loader;
};

inline std::string step_name(std::int64_t step) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%06lld", static_cast<long long>(step));
  return buf;
}

// The largest step with a complete checkpoint (its meta file present) in dir; -1 if none.
inline std::int64_t latest_checkpoint_step(const std::filesystem::path& dir) {
  std::int64_t best = -1;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() == 16 && name.starts_with("meta_") && name.ends_with(".json")) {
      best = std::max(best, static_cast<std::int64_t>(std::stoll(name.substr(5, 6))));
    }
  }
  return best;
}

namespace checkpoint_detail {

inline void write_text_atomically(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    NANOCHAT_CHECK(out.good(), path.string(), ": cannot open for writing");
    out << text;
    out.flush();
    NANOCHAT_CHECK(out.good(), path.string(), ": write failed");
  }
  std::filesystem::rename(tmp, path);
}

inline std::string number(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

template <Backend B>
void save_state(B& backend, const std::filesystem::path& path,
                const std::vector<std::pair<std::string, TensorView<float, B>>>& state,
                std::map<std::string, std::string> metadata) {
  std::vector<std::vector<float>> host;
  std::vector<TensorToSave> tensors;
  for (const auto& [name, view] : state) host.push_back(to_host(backend, view));
  for (std::size_t i = 0; i < state.size(); ++i) {
    tensors.push_back({state[i].first, DType::f32, state[i].second.shape(), host[i].data()});
  }
  save_safetensors(path, tensors, metadata);
}

}  // namespace checkpoint_detail

template <Config C, Backend B>
void save_checkpoint(B& backend, const std::filesystem::path& dir, const GptWeights<C, B>& weights,
                     NanochatOptimizers<C, B>& optimizers, const TrainState& state, std::int64_t sequence_len,
                     const std::map<std::string, std::string>& user_config) {
  std::filesystem::create_directories(dir);
  const std::string s = step_name(state.step);
  save_weights(backend, weights, dir / ("model_" + s + ".safetensors"), sequence_len,
               {{"source_step", std::to_string(state.step)}});

  std::vector<std::pair<std::string, TensorView<float, B>>> optim;
  for (const auto& [name, view] : optimizers.adamw().state()) optim.emplace_back("adamw." + name, view);
  for (const auto& [name, view] : optimizers.muon().state()) optim.emplace_back("muon." + name, view);
  checkpoint_detail::save_state(backend, dir / ("optim_" + s + "_rank0.safetensors"), optim,
                                {{"adamw.steps", std::to_string(optimizers.adamw().steps())},
                                 {"muon.steps", std::to_string(optimizers.muon().steps())}});

  using json::quote;
  using checkpoint_detail::number;
  std::string meta = "{\n  \"step\": " + std::to_string(state.step) + ",\n  \"val_bpb\": " + number(state.val_bpb) +
                     ",\n  \"model_config\": {";
  bool first = true;
  for (const auto& [k, v] : model_config_metadata<C>(weights.vocab_size(), sequence_len)) {
    meta += (first ? "" : ", ") + quote(k) + ": " + v;
    first = false;
  }
  meta += "},\n  \"user_config\": {";
  first = true;
  for (const auto& [k, v] : user_config) {
    meta += (first ? "" : ", ") + quote(k) + ": " + quote(v);
    first = false;
  }
  const auto& l = state.loader;
  meta += "},\n  \"dataloader_state_dict\": {\"epoch\": " + std::to_string(l.epoch) + ", \"shard\": " +
          std::to_string(l.shard) + ", \"group\": " + std::to_string(l.group) + ", \"offset\": " +
          std::to_string(l.offset) + "},\n  \"loop_state\": {\"min_val_bpb\": " + number(state.min_val_bpb) +
          ", \"smooth_train_loss\": " + number(state.smooth_train_loss) +
          ", \"total_training_time\": " + number(state.total_training_time) + "}\n}\n";
  checkpoint_detail::write_text_atomically(dir / ("meta_" + s + ".json"), meta);
}

// Restores weights, optimizer state and the loop/loader state of step `step` from dir.
template <Config C, Backend B>
TrainState load_checkpoint(B& backend, const std::filesystem::path& dir, std::int64_t step,
                           GptWeights<C, B>& weights, NanochatOptimizers<C, B>& optimizers) {
  const std::string s = step_name(step);
  const std::filesystem::path meta_path = dir / ("meta_" + s + ".json");
  std::ifstream in(meta_path, std::ios::binary);
  NANOCHAT_CHECK(in.good(), meta_path.string(), ": no checkpoint for step ", step, " in ", dir.string());
  std::stringstream text;
  text << in.rdbuf();
  const auto meta = json::parse(text.str(), meta_path.string());
  auto member = [&](const json::Value& obj, const char* key) -> const json::Value& {
    const auto* v = obj.find(key);
    NANOCHAT_CHECK(v != nullptr, meta_path.string(), ": missing field ", key);
    return *v;
  };
  auto field = [&](const json::Value& obj, const char* key) {
    return member(obj, key).number(cat(meta_path.string(), ": ", key));
  };
  auto count = [&](const json::Value& obj, const char* key) {
    return member(obj, key).whole_number(cat(meta_path.string(), ": ", key));
  };
  TrainState state;
  state.step = static_cast<std::int64_t>(count(meta, "step"));
  NANOCHAT_CHECK(state.step == step, meta_path.string(), ": says step ", state.step);
  state.val_bpb = field(meta, "val_bpb");
  const auto* loop = meta.find("loop_state");
  const auto* loader = meta.find("dataloader_state_dict");
  NANOCHAT_CHECK(loop && loader, meta_path.string(), ": missing loop_state or dataloader_state_dict");
  state.min_val_bpb = field(*loop, "min_val_bpb");
  state.smooth_train_loss = field(*loop, "smooth_train_loss");
  state.total_training_time = field(*loop, "total_training_time");
  state.loader = {count(*loader, "epoch"), static_cast<std::size_t>(count(*loader, "shard")),
                  static_cast<std::size_t>(count(*loader, "group")), static_cast<std::size_t>(count(*loader, "offset"))};

  load_weights(backend, weights, SafetensorsFile::load(dir / ("model_" + s + ".safetensors")));
  const auto optim = SafetensorsFile::load(dir / ("optim_" + s + "_rank0.safetensors"));
  auto restore = [&](const std::string& prefix, const auto& named) {
    for (const auto& [name, view] : named) {
      check_shape(optim.at(prefix + name).shape, view.shape(), cat(optim.path(), ": ", prefix, name));
      copy_from_host(backend, view, optim.values<float>(prefix + name));
    }
  };
  restore("adamw.", optimizers.adamw().state());
  restore("muon.", optimizers.muon().state());
  optimizers.adamw().set_steps(metadata_integer(optim, "adamw.steps"));
  optimizers.muon().set_steps(metadata_integer(optim, "muon.steps"));
  return state;
}

}  // namespace nanochat
