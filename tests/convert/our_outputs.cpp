// our_outputs: what our code computes, for tests/reference/hf_reference.py to compare with
// transformers.
//   our_outputs logits CHECKPOINT IDS OUT  the fp32 CPU forward's soft-capped logits [T, V] for
//                                          the whitespace-separated ids in IDS, as OUT (safetensors)
//   our_outputs chat TOKENIZER_DIR CONV    render_conversation's ids for the conversation JSON file
//   our_outputs encode TOKENIZER_DIR TEXT  the ids of the file's text (ordinary encoding)
// The checkpoint must have the shape of the reference's model (2 layers, 4 heads, 2 KV heads, head
// dim 16: GQA, so that transformers' KV-head handling is compared too).

#include <fstream>
#include <sstream>
#include <iostream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/model/gpt.hpp"
#include "nanochat/model/weights_file.hpp"
#include "nanochat/tokenizer/chat_template.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"

using namespace nanochat;
using nanochat::cpu::Cpu;

namespace {

using ReferenceConfig = GptConfig<2, 4, 2, 16>;

std::string read_text(const char* path) {
  std::ifstream in(path, std::ios::binary);
  NANOCHAT_CHECK(in.good(), path, ": cannot open");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

int logits(const char* checkpoint, const char* ids_path, const char* out) {
  const auto file = SafetensorsFile::load(checkpoint);
  std::vector<std::int32_t> ids;
  std::istringstream words(read_text(ids_path));
  for (std::int64_t id; words >> id;) ids.push_back(static_cast<std::int32_t>(id));
  NANOCHAT_CHECK(!ids.empty() && words.eof(), ids_path, ": expected whitespace-separated token ids");
  const std::int64_t vocab = metadata_integer(file, "vocab_size");
  const auto t = static_cast<std::int64_t>(ids.size());
  Cpu cpu;
  Gpt<ReferenceConfig, Cpu> model(cpu, vocab, 1, t);
  load_weights(cpu, model.weights(), file);
  Tensor<std::int32_t, Cpu> input(cpu, {1, t});
  for (std::size_t i = 0; i < ids.size(); ++i) {
    NANOCHAT_CHECK(ids[i] >= 0 && ids[i] < vocab, ids_path, ": id ", ids[i], " is outside the vocabulary of ", vocab);
    input.data()[i] = ids[i];
  }
  const auto result = model.forward(input.view());
  const std::vector<TensorToSave> tensors{{"logits", DType::f32, {t, vocab}, result.data()}};
  save_safetensors(out, tensors);
  return 0;
}

int print_ids(const std::vector<tokenizer::TokenId>& ids) {
  for (std::size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
  std::cout << "\n";
  return 0;
}

int chat(const char* tokenizer_dir, const char* conversation) {
  const auto tok = tokenizer::load_tokenizer(tokenizer_dir);
  return print_ids(tokenizer::render_conversation(tok, tokenizer::parse_conversation(read_text(conversation), conversation),
                                                  std::size_t{1} << 20)
                       .ids);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string_view mode = argc > 1 ? argv[1] : "";
    if (mode == "logits" && argc == 5) return logits(argv[2], argv[3], argv[4]);
    if (mode == "chat" && argc == 4) return chat(argv[2], argv[3]);
    if (mode == "encode" && argc == 4) return print_ids(tokenizer::load_tokenizer(argv[2]).encode(read_text(argv[3])));
    std::cerr << "usage: our_outputs logits CHECKPOINT IDS OUT | our_outputs chat|encode TOKENIZER_DIR FILE\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "our_outputs: " << e.what() << "\n";
    return 1;
  }
}
