#pragma once
// Training checkpoints, in nanochat's layout (spec §5.2) with our file formats: per step S,
// model_SSSSSS.safetensors (weights, nanochat's names), optim_SSSSSS_rank<r>.safetensors (rank
// r's shard of the AdamW moments and Muon momentum buffers, the step counts, and rank r's data
// loader position) and meta_SSSSSS.json (step, world_size, model_config, the run's flags and
// batch geometry, rank 0's loader position, the loop's state). Rank 0 writes model and meta,
// every rank its optimizer file; the directory must be one every rank sees (a shared file
// system across nodes). A checkpoint resumes on the world size it was saved with: the shards
// are cut for it (resharding is not implemented), and another size is refused.
//
// The files are one unit. A save first removes meta_S (from then on step S is no
// checkpoint), writes model and optim, then meta last, each atomically and durably
// (core/atomic_file.hpp); a fresh random save id goes into all three, and loading requires the
// ids to agree. So a save interrupted at any instant leaves either the previous checkpoint S,
// or no checkpoint S, never the new weights beside the old meta.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "nanochat/core/atomic_file.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/core/read_file.hpp"
#include "nanochat/core/safetensors.hpp"
#include "nanochat/core/step_names.hpp"
#include "nanochat/data/token_loader.hpp"
#include "nanochat/model/weights_file.hpp"
#include "nanochat/optim/nanochat_optimizers.hpp"

namespace nanochat {

// Which validation number a stage measures, and so which meta field holds it (nanochat's
// names): val_bpb (base_train, mid_train) or val_loss (chat_sft).
enum class ValidationMetric { bits_per_byte, loss };

// Everything besides weights and optimizer state that a resumed run needs to continue exactly.
struct TrainState {
  std::int64_t step = 0;
  double val_bpb = 0.0, min_val_bpb = 0.0, smooth_train_loss = 0.0, total_training_time = 0.0;
  double val_loss = 0.0;  // chat_sft's validation loss
  ValidationMetric validation = ValidationMetric::bits_per_byte;
  // chat_sft's multiple-choice accuracies under their meta names (mmlu_acc, arc_easy_acc), once measured.
  std::map<std::string, double> accuracies;
  data::LoaderState loader;
  // The batch geometry the run was saved with; the loader's position means nothing under another.
  std::int64_t max_seq_len = 0, device_batch_size = 0, total_batch_size = 0;
};

// A run's batch geometry: rows per forward, their length, and the step's total (tokens for the
// pretraining and mid stages, conversations for SFT).
struct BatchGeometry {
  std::int64_t max_seq_len, device_batch_size, total_batch_size;
};

// Puts this run's geometry into state for its saves. A resumed state (resumed_from >= 0) must
// have been saved with the same one: the loader's position means nothing under another.
// total_flag names the flag the total comes from.
inline void set_batch_geometry(TrainState& state, std::int64_t resumed_from, const std::filesystem::path& dir,
                               BatchGeometry now, const char* total_flag) {
  if (resumed_from >= 0) {
    const std::string meta = (dir / step_file_name("meta_", resumed_from, ".json")).string();
    const std::pair<const char*, std::pair<std::int64_t, std::int64_t>> fields[] = {
        {"--max-seq-len", {state.max_seq_len, now.max_seq_len}},
        {"--device-batch-size", {state.device_batch_size, now.device_batch_size}},
        {total_flag, {state.total_batch_size, now.total_batch_size}}};
    for (const auto& [flag, values] : fields) {
      NANOCHAT_CHECK(values.first == values.second, meta, ": the checkpoint was trained with ", flag, " ",
                     values.first, " but this run has ", flag, " ", values.second,
                     "; resuming would not continue the same batches");
    }
  }
  state.max_seq_len = now.max_seq_len;
  state.device_batch_size = now.device_batch_size;
  state.total_batch_size = now.total_batch_size;
}

// Removes the temporary files an interrupted save (or metrics rewrite) left in dir: ours only,
// and only regular files.
inline void remove_stale_temp_files(const std::filesystem::path& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const bool ours = name.starts_with("model_") || name.starts_with("optim_") || name.starts_with("meta_") ||
                      name.starts_with("metrics");
    if (ours && name.ends_with(".tmp") && entry.symlink_status().type() == std::filesystem::file_type::regular) {
      std::filesystem::remove(entry.path(), ec);
      NANOCHAT_CHECK(!ec, entry.path().string(), ": cannot remove this stale temporary file: ", ec.message());
    }
  }
}

namespace checkpoint_detail {

// A safetensors file of the checkpoint must carry the save id its meta file names.
inline void check_save_id(const SafetensorsFile& file, const std::string& save_id,
                          const std::filesystem::path& meta_path) {
  const auto it = file.metadata().find("save_id");
  NANOCHAT_CHECK(it != file.metadata().end() && it->second == save_id, file.path(), " and ", meta_path.string(),
                 " are not from the same save (save ids ", it == file.metadata().end() ? "(none)" : it->second,
                 " and ", save_id, "): an interrupted save or a mix of two runs; not resuming from it");
}

// Every F32/BF16 value of the file is finite: a NaN or infinity would poison every later step.
inline void check_finite(const SafetensorsFile& file) {
  for (const SafetensorsTensor& t : file.tensors()) {
    const auto first_bad = [&](auto values) {
      for (std::size_t i = 0; i < values.size(); ++i) {
        if (!std::isfinite(static_cast<float>(values[i]))) return static_cast<std::int64_t>(i);
      }
      return std::int64_t{-1};
    };
    std::int64_t bad = -1;
    if (t.dtype == DType::f32) bad = first_bad(file.values<float>(t.name));
    if (t.dtype == DType::bf16) bad = first_bad(file.values<bf16>(t.name));
    NANOCHAT_CHECK(bad < 0, file.path(), ": tensor ", t.name, " holds a non-finite value at element ", bad,
                   "; not resuming from it");
  }
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

inline std::string optim_file_name(std::int64_t step, int rank) {
  return step_file_name("optim_", step, cat("_rank", rank, ".safetensors"));
}

// Saves step state.step. With several ranks every rank calls it (state.loader being its own
// loader's position); they meet at barriers so that meta is written after every shard.
template <Config C, Backend B>
void save_checkpoint(B& backend, const std::filesystem::path& dir, const GptWeights<C, B>& weights,
                     NanochatOptimizers<C, B>& optimizers, const TrainState& state,
                     const std::map<std::string, std::string>& user_config) {
  NANOCHAT_CHECK(state.max_seq_len > 0 && state.device_batch_size > 0 && state.total_batch_size > 0,
                 "save_checkpoint: the state has no batch geometry (max_seq_len ", state.max_seq_len,
                 ", device_batch_size ", state.device_batch_size, ", total_batch_size ", state.total_batch_size, ")");
  dist::Communicator& comm = optimizers.communicator();
  const bool leader = comm.rank() == 0;
  const std::string s = step_file_name("", state.step, "");
  std::string save_id(16, '\0');  // new_save_id's 16 hex digits, rank 0's for all
  if (leader) {
    std::filesystem::create_directories(dir);
    remove_stale_temp_files(dir);
    // Step S stops being a checkpoint before any of its files changes.
    remove_file_durably(dir / ("meta_" + s + ".json"));
    save_id = new_save_id();
  }
  comm.broadcast(std::span<char>(save_id), 0);
  if (leader) {
    save_weights(backend, weights, dir / ("model_" + s + ".safetensors"), state.max_seq_len,
                 {{"source_step", std::to_string(state.step)}, {"save_id", save_id}});
  }
  std::vector<std::pair<std::string, TensorView<float, B>>> optim;
  for (const auto& [name, view] : optimizers.adamw().state()) optim.emplace_back("adamw." + name, view);
  for (const auto& [name, view] : optimizers.muon().state()) optim.emplace_back("muon." + name, view);
  const auto& l = state.loader;
  checkpoint_detail::save_state(backend, dir / optim_file_name(state.step, comm.rank()), optim,
                                {{"adamw.steps", std::to_string(optimizers.adamw().steps())},
                                 {"muon.steps", std::to_string(optimizers.muon().steps())},
                                 {"world_size", std::to_string(comm.size())},
                                 {"loader.epoch", std::to_string(l.epoch)}, {"loader.shard", std::to_string(l.shard)},
                                 {"loader.group", std::to_string(l.group)}, {"loader.offset", std::to_string(l.offset)},
                                 {"save_id", save_id}});
  comm.barrier();  // every shard is on disk before meta says the step is complete
  if (!leader) return;

  using json::quote;
  using checkpoint_detail::number;
  std::string meta = "{\n  \"step\": " + std::to_string(state.step) + ",\n  \"save_id\": " + quote(save_id) +
                     ",\n  \"world_size\": " + std::to_string(comm.size()) +
                     (state.validation == ValidationMetric::bits_per_byte ? ",\n  \"val_bpb\": " + number(state.val_bpb)
                                                                           : ",\n  \"val_loss\": " + number(state.val_loss));
  for (const auto& [name, accuracy] : state.accuracies) meta += ",\n  " + quote(name) + ": " + number(accuracy);
  meta += ",\n  \"model_config\": {";
  bool first = true;
  for (const auto& [k, v] : model_config_metadata<C>(weights.vocab_size(), state.max_seq_len)) {
    meta += (first ? "" : ", ") + quote(k) + ": " + v;
    first = false;
  }
  meta += "},\n  \"user_config\": {";
  first = true;
  for (const auto& [k, v] : user_config) {
    meta += (first ? "" : ", ") + quote(k) + ": " + quote(v);
    first = false;
  }
  meta += "},\n  \"device_batch_size\": " + std::to_string(state.device_batch_size) +
          ",\n  \"total_batch_size\": " + std::to_string(state.total_batch_size) +
          ",\n  \"max_seq_len\": " + std::to_string(state.max_seq_len) +
          ",\n  \"dataloader_state_dict\": {\"epoch\": " + std::to_string(l.epoch) + ", \"shard\": " +
          std::to_string(l.shard) + ", \"group\": " + std::to_string(l.group) + ", \"offset\": " +
          std::to_string(l.offset) + "},\n  \"loop_state\": {\"min_val_bpb\": " + number(state.min_val_bpb) +
          ", \"smooth_train_loss\": " + number(state.smooth_train_loss) +
          ", \"total_training_time\": " + number(state.total_training_time) + "}\n}\n";
  write_file_atomically(dir / ("meta_" + s + ".json"), meta);
}

// Restores weights, this rank's optimizer shard and loader position, and the loop state of step
// `step` from dir. The files must be of one save and hold finite numbers, the model must be the
// Config's, and the checkpoint must have been saved by as many ranks as this run has.
template <Config C, Backend B>
TrainState load_checkpoint(B& backend, const std::filesystem::path& dir, std::int64_t step,
                           GptWeights<C, B>& weights, NanochatOptimizers<C, B>& optimizers) {
  const std::string s = step_file_name("", step, "");
  const std::filesystem::path meta_path = dir / ("meta_" + s + ".json");
  std::error_code missing;
  NANOCHAT_CHECK(std::filesystem::is_regular_file(meta_path, missing), meta_path.string(), ": no checkpoint for step ",
                 step, " in ", dir.string());
  const auto meta = json::parse(read_file(meta_path), meta_path.string());
  auto member = [&](const json::Value& obj, const char* key) -> const json::Value& {
    const auto* v = obj.find(key);
    NANOCHAT_CHECK(v != nullptr, meta_path.string(), ": missing field ", key);
    return *v;
  };
  // A loop-state number: finite and not negative (bits, a loss, seconds).
  auto field = [&](const json::Value& obj, const char* key) {
    const double v = member(obj, key).number(cat(meta_path.string(), ": ", key));
    NANOCHAT_CHECK(std::isfinite(v) && v >= 0, meta_path.string(), ": ", key, " is ", v,
                   ", not a finite non-negative number");
    return v;
  };
  auto count = [&](const json::Value& obj, const char* key) {
    return member(obj, key).whole_number(cat(meta_path.string(), ": ", key));
  };
  TrainState state;
  state.step = static_cast<std::int64_t>(count(meta, "step"));
  NANOCHAT_CHECK(state.step == step, meta_path.string(), ": says step ", state.step);
  NANOCHAT_CHECK(meta.find("save_id") != nullptr, meta_path.string(), ": has no save_id (written by an older "
                 "version?), so nothing tells whether the model and optimizer files beside it are of the same save");
  const std::string& save_id = member(meta, "save_id").string(cat(meta_path.string(), ": save_id"));
  dist::Communicator& comm = optimizers.communicator();
  // Checkpoints from before distributed training have no world_size: they are one process's.
  const auto saved_world = meta.find("world_size") ? count(meta, "world_size") : std::uint64_t{1};
  NANOCHAT_CHECK(saved_world == static_cast<std::uint64_t>(comm.size()), meta_path.string(), ": the checkpoint was saved by ", saved_world,
                 " rank", saved_world == 1 ? "" : "s", " but this run has ", comm.size(),
                 "; the optimizer state is sharded per rank and resharding is not supported: resume with ",
                 saved_world == 1 ? std::string("one process") : cat("mpirun -np ", saved_world));
  // The stage's validation metric (older chat_sft checkpoints have both fields, val_bpb 0).
  NANOCHAT_CHECK(meta.find("val_bpb") != nullptr || meta.find("val_loss") != nullptr, meta_path.string(),
                 ": missing field val_bpb (or chat_sft's val_loss)");
  if (meta.find("val_bpb") != nullptr) state.val_bpb = field(meta, "val_bpb");
  if (meta.find("val_loss") != nullptr) state.val_loss = field(meta, "val_loss");
  state.validation = meta.find("val_bpb") != nullptr ? ValidationMetric::bits_per_byte : ValidationMetric::loss;
  for (const auto& [key, value] : meta.object(meta_path.string())) {
    if (!key.ends_with("_acc")) continue;
    const double accuracy = value.number(cat(meta_path.string(), ": ", key));
    NANOCHAT_CHECK(accuracy >= 0 && accuracy <= 1, meta_path.string(), ": ", key, " is ", accuracy,
                   ", not an accuracy from 0 to 1");
    state.accuracies[key] = accuracy;
  }
  state.max_seq_len = static_cast<std::int64_t>(count(meta, "max_seq_len"));
  state.device_batch_size = static_cast<std::int64_t>(count(meta, "device_batch_size"));
  state.total_batch_size = static_cast<std::int64_t>(count(meta, "total_batch_size"));
  NANOCHAT_CHECK(state.max_seq_len > 0 && state.device_batch_size > 0 && state.total_batch_size > 0, meta_path.string(),
                 ": max_seq_len ", state.max_seq_len, ", device_batch_size ", state.device_batch_size,
                 " and total_batch_size ", state.total_batch_size, " must be positive (no save writes otherwise)");
  const auto* loop = meta.find("loop_state");
  const auto* loader = meta.find("dataloader_state_dict");
  NANOCHAT_CHECK(loop && loader, meta_path.string(), ": missing loop_state or dataloader_state_dict");
  state.min_val_bpb = field(*loop, "min_val_bpb");
  state.smooth_train_loss = field(*loop, "smooth_train_loss");
  state.total_training_time = field(*loop, "total_training_time");
  state.loader = {count(*loader, "epoch"), static_cast<std::size_t>(count(*loader, "shard")),
                  static_cast<std::size_t>(count(*loader, "group")), static_cast<std::size_t>(count(*loader, "offset"))};
  // The model shape first, so that another depth is named as such rather than as a tensor shape.
  const auto& saved_config = member(meta, "model_config");
  for (const auto& [key, expected] : model_config_metadata<C>(weights.vocab_size(), 0)) {
    if (key == "sequence_len") continue;  // the run's --max-seq-len, compared by the trainer
    const auto saved = member(saved_config, key.c_str()).whole_number(cat(meta_path.string(), ": model_config.", key));
    NANOCHAT_CHECK(std::to_string(saved) == expected, meta_path.string(), ": the checkpoint's model has ", key, " ",
                   saved, " but this run's (", C::name(), ", vocab ", weights.vocab_size(), ") has ", expected,
                   key == "vocab_size" ? " (another tokenizer?)" : " (another --depth?)");
  }

  // One file in memory at a time. On an error the weights may be restored and the optimizer not:
  // the caller discards both.
  {
    const auto model = SafetensorsFile::load(dir / ("model_" + s + ".safetensors"));
    checkpoint_detail::check_save_id(model, save_id, meta_path);
    checkpoint_detail::check_finite(model);
    load_weights(backend, weights, model);
  }
  const auto optim = SafetensorsFile::load(dir / optim_file_name(step, comm.rank()));
  checkpoint_detail::check_save_id(optim, save_id, meta_path);
  // This rank's loader position (rank 0's is meta's too; files from before ranks have only meta's).
  if (optim.metadata().contains("loader.epoch")) {
    auto at = [&](const char* key) { return static_cast<std::size_t>(metadata_integer(optim, key)); };
    const data::LoaderState own{static_cast<std::uint64_t>(metadata_integer(optim, "loader.epoch")), at("loader.shard"),
                                at("loader.group"), at("loader.offset")};
    // Rank 0 wrote both: a disagreement is a file edited or mixed from two saves, not a position.
    NANOCHAT_CHECK(comm.rank() != 0 || own == state.loader, optim.path(), ": its loader position differs from ",
                   meta_path.string(), "'s dataloader_state_dict (both are rank 0's)");
    state.loader = own;
  }
  checkpoint_detail::check_finite(optim);
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
