// libFuzzer target: a training checkpoint's meta file as load_checkpoint reads it
// (train/checkpoint.hpp), under ASan and UBSan. A tiny model's checkpoint is saved once at start
// (its meta file is also the seed); each input replaces meta_000007.json and is loaded through
// load_checkpoint's public signature. The save id is new in every process, so inputs kept from an
// earlier run reach the id check at most; the success path starts from this run's seed.
// What must hold:
//   - loading either succeeds or raises a nanochat::Error naming the checkpoint directory;
//   - a loaded state is what the meta file says (step 7, the numbers, the batch geometry, the
//     loader's position), and the weights and optimizer state are the saved ones, bit for bit;
//   - saving the loaded checkpoint again and loading that gives the same state.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/train/checkpoint.hpp"

using namespace nanochat;
using cpu::Cpu;
using fuzz::check;

namespace {

using Tiny = GptConfig<1, 1, 1, 2>;
constexpr std::int64_t kVocab = 3, kStep = 7;

// Weights, their gradients and the optimizers over them: what a trainer holds.
struct Model {
  Cpu cpu;
  GptWeights<Tiny, Cpu> weights{cpu, kVocab}, grads{cpu, kVocab};
  NanochatOptimizers<Tiny, Cpu> optimizers{cpu, weights, grads};
};

template <class Views>
void fill(const Views& views, float scale) {
  for (const auto& [name, view] : views)
    for (std::int64_t i = 0; i < view.numel(); ++i) view.data()[i] = scale * static_cast<float>(i + 1);
}

bool same_floats(TensorView<float, Cpu> a, TensorView<float, Cpu> b) {
  return a.numel() == b.numel() && std::memcmp(a.data(), b.data(), a.bytes()) == 0;
}

bool same_model(Model& a, Model& b) {
  bool same = same_floats(a.weights.flat(), b.weights.flat()) &&
              a.optimizers.adamw().steps() == b.optimizers.adamw().steps() &&
              a.optimizers.muon().steps() == b.optimizers.muon().steps();
  const auto adam_a = a.optimizers.adamw().state(), adam_b = b.optimizers.adamw().state();
  for (std::size_t i = 0; i < adam_a.size(); ++i) same = same && same_floats(adam_a[i].second, adam_b[i].second);
  const auto muon_a = a.optimizers.muon().state(), muon_b = b.optimizers.muon().state();
  for (std::size_t i = 0; i < muon_a.size(); ++i) same = same && same_floats(muon_a[i].second, muon_b[i].second);
  return same;
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

bool same_state(const TrainState& a, const TrainState& b) {
  return a.step == b.step && same_bits(a.val_bpb, b.val_bpb) && same_bits(a.val_loss, b.val_loss) &&
         a.validation == b.validation && a.accuracies == b.accuracies && same_bits(a.min_val_bpb, b.min_val_bpb) &&
         same_bits(a.smooth_train_loss, b.smooth_train_loss) &&
         same_bits(a.total_training_time, b.total_training_time) && a.loader == b.loader &&
         a.max_seq_len == b.max_seq_len && a.device_batch_size == b.device_batch_size &&
         a.total_batch_size == b.total_batch_size;
}

// The state the meta text states, read with the JSON tree on its own.
void check_state_matches_meta(const TrainState& s, std::string_view meta) {
  const json::Value v = json::parse(meta, "meta");
  const auto number = [&](const json::Value& obj, const char* key) { return obj.find(key)->number(key); };
  const json::Value& loop = *v.find("loop_state");
  const json::Value& loader = *v.find("dataloader_state_dict");
  check(s.step == kStep && number(v, "step") == kStep, "step");
  // The stage's validation field: val_bpb, or chat_sft's val_loss; chat_sft's accuracies.
  const json::Value* bpb = v.find("val_bpb");
  const json::Value* loss = v.find("val_loss");
  check(bpb != nullptr ? s.validation == ValidationMetric::bits_per_byte && s.val_bpb == bpb->number("val_bpb")
                       : s.validation == ValidationMetric::loss && s.val_bpb == 0.0 && loss != nullptr,
        "validation metric");
  check(loss == nullptr ? s.val_loss == 0.0 : s.val_loss == loss->number("val_loss"), "val_loss");
  std::size_t accuracies = 0;
  for (const auto& [key, value] : v.object("meta")) {
    if (!key.ends_with("_acc")) continue;
    ++accuracies;
    check(s.accuracies.count(key) == 1 && s.accuracies.at(key) == value.number(key), "accuracy");
  }
  check(accuracies == s.accuracies.size(), "accuracies");
  check(s.min_val_bpb == number(loop, "min_val_bpb") &&
            s.smooth_train_loss == number(loop, "smooth_train_loss") &&
            s.total_training_time == number(loop, "total_training_time"),
        "loop state");
  check(static_cast<double>(s.max_seq_len) == number(v, "max_seq_len") &&
            static_cast<double>(s.device_batch_size) == number(v, "device_batch_size") &&
            static_cast<double>(s.total_batch_size) == number(v, "total_batch_size"),
        "batch geometry");
  check(static_cast<double>(s.loader.epoch) == number(loader, "epoch") &&
            static_cast<double>(s.loader.shard) == number(loader, "shard") &&
            static_cast<double>(s.loader.group) == number(loader, "group") &&
            static_cast<double>(s.loader.offset) == number(loader, "offset"),
        "loader state");
}

Model& saved() {
  static Model m;
  static const bool filled = [] {
    fill(std::map<std::string, TensorView<float, Cpu>>{{"weights", m.weights.flat()}}, 0.25f);
    fill(m.optimizers.adamw().state(), -0.5f);
    fill(m.optimizers.muon().state(), 0.125f);
    m.optimizers.adamw().set_steps(kStep);
    m.optimizers.muon().set_steps(kStep);
    return true;
  }();
  (void)filled;
  return m;
}

const std::filesystem::path& checkpoint_dir() {
  static const std::filesystem::path dir = [] {
    const auto d = fuzz::scratch().path() / "checkpoint";
    TrainState state;
    state.step = kStep;
    state.val_bpb = 1.25;
    state.min_val_bpb = 1.125;
    state.smooth_train_loss = 3.5;
    state.total_training_time = 12.0;
    state.loader = {1, 2, 3, 4};
    state.max_seq_len = 16;
    state.device_batch_size = 2;
    state.total_batch_size = 64;
    Model& m = saved();
    save_checkpoint(m.cpu, d, m.weights, m.optimizers, state, {{"depth", "1"}, {"run", "fuzz"}});
    return d;
  }();
  return dir;
}

const std::filesystem::path meta_path() { return checkpoint_dir() / step_file_name("meta_", kStep, ".json"); }

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  fuzz::write_seed(*argc, *argv, "meta_saved.json", fuzz::read_file(meta_path()));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view meta = fuzz::as_text(data, size);
  fuzz::write_file(meta_path(), meta);
  Model loaded;
  TrainState state;
  try {
    state = load_checkpoint(loaded.cpu, checkpoint_dir(), kStep, loaded.weights, loaded.optimizers);
  } catch (const Error& e) {
    fuzz::check_names(e, checkpoint_dir().string());
    return 0;
  }
  check_state_matches_meta(state, meta);
  check(same_model(loaded, saved()), "loaded weights or optimizer state differ from the saved ones");

  const auto again_dir = fuzz::scratch().path() / "again";
  // Whatever loads can be saved again: the loader takes nothing a save refuses to write.
  save_checkpoint(loaded.cpu, again_dir, loaded.weights, loaded.optimizers, state, {});
  Model reloaded;
  const TrainState again = load_checkpoint(reloaded.cpu, again_dir, kStep, reloaded.weights, reloaded.optimizers);
  check(same_state(state, again), "save then load changed the state");
  check(same_model(reloaded, loaded), "save then load changed the model");
  return 0;
}
