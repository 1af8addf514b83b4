#pragma once
// What the training tests share: scratch directories, a tiny corpus with its tokenizer, and the
// options of a six-step run of a tiny model that checkpoints every three steps.

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nanochat/data/document_source.hpp"
#include "nanochat/tokenizer/bpe_trainer.hpp"
#include "nanochat/train/base_trainer.hpp"

namespace nanochat_train_test {

using namespace nanochat;
namespace fs = std::filesystem;

using Tiny = GptConfig<2, 2, 1, 16>;

// A scratch directory removed at the end of the test.
struct ScratchDir {
  // The process id in the name: ctest -j runs test cases (and other checkouts their suites) side
  // by side, and two cases with one name would share a directory.
  explicit ScratchDir(const std::string& name)
      : path(fs::temp_directory_path() / ("nanochat_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ScratchDir() { fs::remove_all(path); }
  fs::path path;
};

// Three JSONL shards of made-up sentences (the last is validation) and a BPE tokenizer on them.
// Data-parallel tests ask for several loader groups (1024 documents) per shard, one per rank.
inline std::vector<fs::path> write_corpus(const fs::path& dir, std::vector<std::string>& all_docs,
                                          int docs_per_shard = 40) {
  const char* words[] = {"the", "model", "reads", "tokens", "and", "learns", "to", "predict", "next",
                         "word", "in", "a", "small", "corpus", "of", "text"};
  std::vector<fs::path> shards;
  std::uint64_t state = 7;
  for (int s = 0; s < 3; ++s) {
    shards.push_back(dir / ("shard_0000" + std::to_string(s) + ".jsonl"));
    std::ofstream out(shards.back());
    for (int d = 0; d < docs_per_shard; ++d) {
      std::string doc;
      for (int w = 0; w < 30; ++w) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        doc += std::string(w ? " " : "") + words[(state >> 33) % 16];
      }
      out << "{\"text\": \"" << doc << "\"}\n";
      all_docs.push_back(doc);
    }
  }
  return shards;
}

inline tokenizer::Tokenizer train_tokenizer(const std::vector<std::string>& docs) {
  tokenizer::BpeTrainer trainer(1);
  trainer.add_documents(docs);
  std::vector<std::string> specials(tokenizer::kSpecialTokens.begin(), tokenizer::kSpecialTokens.end());
  return tokenizer::Tokenizer(trainer.train(300 - specials.size()), specials);
}

// The corpus, tokenizer and shard split every training test starts from; a log sink for the
// trainers' progress lines.
struct TinySetup {
  explicit TinySetup(const std::string& name) : corpus(name) {
    std::vector<std::string> docs;
    const auto shards = write_corpus(corpus.path, docs);
    tok = train_tokenizer(docs);
    train_shards = data::split_shards(shards, data::Split::train);
    val_shards = data::split_shards(shards, data::Split::val);
  }
  ~TinySetup() { std::fclose(quiet); }
  ScratchDir corpus;
  tokenizer::Tokenizer tok;
  std::vector<fs::path> train_shards, val_shards;
  std::FILE* quiet = std::fopen("/dev/null", "w");
};

inline BaseTrainOptions tiny_options(const fs::path& dir) {
  BaseTrainOptions o;
  o.max_seq_len = 16;
  o.device_batch_size = 2;
  o.total_batch_size = 64;  // two micro-batches per step
  o.num_iterations = 6;
  o.eval_every = 3;
  o.eval_tokens = 64;
  o.sample_every = 0;
  o.save_every = 3;
  o.loader_threads = 1;
  o.checkpoint_dir = dir;
  return o;
}


}  // namespace nanochat_train_test
