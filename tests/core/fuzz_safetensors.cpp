// libFuzzer target: safetensors files (core/safetensors.hpp) and GPT weights read from them
// (model/weights_file.hpp, engine/checkpoint.hpp), under ASan and UBSan. The input is a whole
// file, or, when it starts with '{', a header up to the first NUL and the data section after it
// (the 8-byte length is then computed, so mutations of the header stay well-formed files).
// What must hold:
//   - load() either succeeds or raises a nanochat::Error naming the file;
//   - a loaded file's tensors tile its data section, each has numel * size of dtype bytes, aligned
//     for its dtype; values<T>() of the stored type reads every element, of another type is an
//     Error; the header's names and metadata are UTF-8;
//   - saving what was loaded and loading that again gives the same tensors and metadata;
//   - load_weights into a tiny compiled Config (f32 and bf16) either fails with an Error or holds
//     exactly the file's values (converted), and save_weights then load_weights gives them back;
//   - with_checkpoint_config either fails with an Error naming the file or calls the depth-1
//     model with the file's own vocab_size and sequence_len, whose weights then load or fail so.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/core/depth_dispatch.hpp"
#include "nanochat/core/safetensors.hpp"
#include "nanochat/core/utf8.hpp"
#include "nanochat/engine/checkpoint.hpp"
#include "nanochat/model/weights_file.hpp"

using namespace nanochat;
using cpu::Cpu;
using fuzz::check;

namespace {

using Tiny = GptConfig<1, 1, 1, 2>;  // 2-dim model: a whole weights file is a few hundred bytes
constexpr std::int64_t kTinyVocab = 3;

std::string le64(std::uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>(n >> (8 * i));
  return out;
}

std::string file_bytes(std::string_view input) {
  if (input.empty() || input[0] != '{') return std::string(input);
  const std::size_t nul = input.find('\0');
  const std::string_view header = input.substr(0, nul);
  const std::string_view data = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
  return le64(header.size()) + std::string(header) + std::string(data);
}

// The header form of a whole file: what a '{' input stands for.
std::string header_form(const std::string& file) {
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(file[static_cast<std::size_t>(i)]);
  return file.substr(8, n) + '\0' + file.substr(8 + n);
}

template <class T>
double sum_of(std::span<const T> values) {
  double s = 0;
  for (const T& v : values) s += static_cast<double>(static_cast<float>(v));
  return s;
}

void check_file(const SafetensorsFile& f, std::uint64_t data_size) {
  std::uint64_t covered = 0;
  for (const SafetensorsTensor& t : f.tensors()) {
    check(is_valid_utf8(t.name) && f.contains(t.name) && &f.at(t.name) == &t, "tensor index");
    check(t.bytes.size() == static_cast<std::size_t>(t.shape.numel()) * size_of(t.dtype), "tensor byte count");
    check(reinterpret_cast<std::uintptr_t>(t.bytes.data()) % size_of(t.dtype) == 0, "tensor alignment");
    covered += t.bytes.size();
    volatile double sink = 0;  // reads every element: ASan checks the spans lie in the file
    switch (t.dtype) {
      case DType::f32: sink = sum_of(f.values<float>(t.name)); break;
      case DType::bf16: sink = sum_of(f.values<bf16>(t.name)); break;
      case DType::i32: sink = sum_of(f.values<std::int32_t>(t.name)); break;
      case DType::i64: sink = sum_of(f.values<std::int64_t>(t.name)); break;
      case DType::u8: sink = sum_of(f.values<std::uint8_t>(t.name)); break;
    }
    (void)sink;
    try {
      if (t.dtype == DType::f32) (void)f.values<std::int32_t>(t.name);
      else (void)f.values<float>(t.name);
      check(false, "values<T> of the wrong type succeeded");
    } catch (const Error& e) {
      fuzz::check_names(e, f.path());
    }
  }
  check(covered == data_size, "tensors do not tile the data section");
  for (const auto& [k, v] : f.metadata()) check(is_valid_utf8(k) && is_valid_utf8(v), "metadata not UTF-8");
}

void check_round_trip(const SafetensorsFile& f) {
  std::vector<TensorToSave> tensors;
  for (const SafetensorsTensor& t : f.tensors()) tensors.push_back({t.name, t.dtype, t.shape, t.bytes.data()});
  const auto path = fuzz::scratch().path() / "again.safetensors";
  save_safetensors(path, tensors, f.metadata());
  const SafetensorsFile g = SafetensorsFile::load(path);
  check(g.tensors().size() == f.tensors().size() && g.metadata() == f.metadata(), "round trip: index");
  for (std::size_t i = 0; i < f.tensors().size(); ++i) {
    const SafetensorsTensor &a = f.tensors()[i], &b = g.tensors()[i];
    check(a.name == b.name && a.dtype == b.dtype && a.shape == b.shape && a.bytes.size() == b.bytes.size() &&
              std::memcmp(a.bytes.data(), b.bytes.data(), a.bytes.size()) == 0,
          "round trip: tensor");
  }
}

template <class W>
bool same_bits(W a, W b) {
  return std::memcmp(&a, &b, sizeof(W)) == 0;
}

// The weights hold the file's values, converted to W as load_weights documents.
template <Config C, class W>
void check_weights_match(const GptWeights<C, Cpu, W>& w, const SafetensorsFile& f) {
  w.for_each([&](const std::string& name, TensorView<W, Cpu> view) {
    const SafetensorsTensor& t = f.at(name);
    for (std::int64_t i = 0; i < view.numel(); ++i) {
      const auto k = static_cast<std::size_t>(i);
      const W expected = t.dtype == DType::bf16 ? static_cast<W>(static_cast<float>(f.values<bf16>(name)[k]))
                                                : static_cast<W>(f.values<float>(name)[k]);
      check(same_bits(view.data()[i], expected), "load_weights: a value differs from the file");
    }
  });
}

template <Config C, class W>
void load_into(const SafetensorsFile& f, std::int64_t vocab) {
  Cpu cpu;
  GptWeights<C, Cpu, W> w(cpu, vocab);
  try {
    load_weights(cpu, w, f);
  } catch (const Error& e) {
    fuzz::check_names(e, f.path());
    return;
  }
  check_weights_match(w, f);
  if constexpr (std::is_same_v<W, float>) {
    const auto path = fuzz::scratch().path() / "weights.safetensors";
    save_weights(cpu, w, path, 16);
    GptWeights<C, Cpu, W> again(cpu, vocab);
    load_weights(cpu, again, SafetensorsFile::load(path));
    check(std::memcmp(again.flat().data(), w.flat().data(), w.flat().bytes()) == 0, "save_weights round trip");
  }
}

void check_checkpoint_config(const SafetensorsFile& f) {
  try {
    engine::with_checkpoint_config(f, DepthList<1>{},
                                   [&]<Config C>(const SafetensorsFile& file, std::int64_t vocab, std::int64_t seq) {
                                     check(&file == &f, "with_checkpoint_config: another file");
                                     check(metadata_integer(f, "n_layer") == C::depth, "dispatched depth");
                                     check(vocab == metadata_integer(f, "vocab_size") && vocab > 0, "vocab");
                                     check(seq == metadata_integer(f, "sequence_len") && seq > 0, "sequence_len");
                                     // As chat_cli after its tokenizer check: a vocabulary a model is built for.
                                     if (vocab <= 64) load_into<C, bf16>(f, vocab);
                                     return 0;
                                   });
  } catch (const Error& e) {
    fuzz::check_names(e, f.path());
  }
}

// A tiny model's weights file, as save_weights writes it (values vary so conversions show).
std::string tiny_weights_file() {
  Cpu cpu;
  GptWeights<Tiny, Cpu> w(cpu, kTinyVocab);
  for (std::int64_t i = 0; i < w.flat().numel(); ++i) w.flat().data()[i] = 0.37f * static_cast<float>(i) - 5.0f;
  const auto path = fuzz::scratch().path() / "seed.safetensors";
  save_weights(cpu, w, path, 16);
  return fuzz::read_file(path);
}

// Only the model_config of a depth-1 nanochat model: with_checkpoint_config's checks.
std::string depth1_config_file() {
  const auto path = fuzz::scratch().path() / "seed.safetensors";
  save_safetensors(path, {}, model_config_metadata<NanochatConfig<1>>(8, 32));
  return fuzz::read_file(path);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  const std::string tiny = tiny_weights_file(), config = depth1_config_file();
  fuzz::write_seed(*argc, *argv, "tiny_weights", tiny);
  fuzz::write_seed(*argc, *argv, "tiny_weights_header", header_form(tiny));
  fuzz::write_seed(*argc, *argv, "depth1_config_header", header_form(config));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes = file_bytes(fuzz::as_text(data, size));
  const auto path = fuzz::write_file(fuzz::scratch().path() / "fuzz.safetensors", bytes);
  std::optional<SafetensorsFile> file;
  try {
    file.emplace(SafetensorsFile::load(path));
  } catch (const Error& e) {
    fuzz::check_names(e, path.string());
    return 0;
  }
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  check_file(*file, bytes.size() - 8 - header_len);
  bool named = true;
  for (const SafetensorsTensor& t : file->tensors()) named = named && !t.name.empty();
  try {
    check_round_trip(*file);
  } catch (const Error&) {
    check(!named, "a loaded file cannot be saved again");  // the writer refuses empty names
  }
  load_into<Tiny, float>(*file, kTinyVocab);
  load_into<Tiny, bf16>(*file, kTinyVocab);
  check_checkpoint_config(*file);
  return 0;
}
