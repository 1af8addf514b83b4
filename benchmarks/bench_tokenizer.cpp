// Tokenizer speed: training (split + count + merges) and ordinary encoding, single-threaded and
// batched. benchmarks/compare_tokenizer.py runs this beside rustbpe and tiktoken on the same
// corpus and vocabulary and writes the comparison in docs/benchmarks.md. Inputs (environment):
//   NANOCHAT_TOKENIZER_CORPUS  documents separated by U+001E (default: the test fixture corpus)
//   NANOCHAT_TOKENIZER_DIR     tokenizer to encode with (default: fixture ranks_2048)
//   NANOCHAT_TOKENIZER_VOCAB   vocab size to train (specials excluded; default 2048)
//   NANOCHAT_TOKENIZER_TRAINED where to save the trained tokenizer, for a parity check (optional)

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nanochat/tokenizer/bpe_trainer.hpp"
#include "nanochat/tokenizer/tokenizer.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"

namespace tk = nanochat::tokenizer;
namespace fs = std::filesystem;

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

const fs::path kFixtures = fs::path(NANOCHAT_BENCH_FIXTURES) / "tokenizer";

const std::vector<std::string>& corpus() {
  static const std::vector<std::string> docs = [] {
    const std::string path = env_or("NANOCHAT_TOKENIZER_CORPUS", (kFixtures / "corpus.txt").string());
    std::ifstream in(path, std::ios::binary);
    NANOCHAT_CHECK(in.good(), "bench_tokenizer: cannot open corpus ", path);
    std::stringstream s;
    s << in.rdbuf();
    const std::string text = s.str();
    std::vector<std::string> out;
    for (std::size_t pos = 0; pos <= text.size();) {
      std::size_t end = text.find('\x1e', pos);
      if (end == std::string::npos) end = text.size();
      out.push_back(text.substr(pos, end - pos));
      pos = end + 1;
    }
    return out;
  }();
  return docs;
}

std::size_t corpus_bytes() {
  std::size_t n = 0;
  for (const std::string& d : corpus()) n += d.size();
  return n;
}

const tk::Tokenizer& tokenizer() {
  static const tk::Tokenizer tok = [] {
    const std::string dir = env_or("NANOCHAT_TOKENIZER_DIR", "");
    if (!dir.empty()) return tk::load_tokenizer(dir);
    std::ifstream in(kFixtures / "ranks_2048.tiktoken", std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return tk::Tokenizer(tk::parse_ranks(s.str(), "ranks_2048.tiktoken"),
                         {tk::kSpecialTokens.begin(), tk::kSpecialTokens.end()});
  }();
  return tok;
}

void BM_Train(benchmark::State& state) {
  const auto vocab = static_cast<std::size_t>(std::stoull(env_or("NANOCHAT_TOKENIZER_VOCAB", "2048")));
  const auto& docs = corpus();
  for (auto _ : state) {
    tk::BpeTrainer trainer;
    for (std::size_t i = 0; i < docs.size(); i += 8192) {
      trainer.add_documents(std::span(docs).subspan(i, std::min<std::size_t>(8192, docs.size() - i)));
    }
    auto tokens = trainer.train(vocab);
    benchmark::DoNotOptimize(tokens.data());
    if (const std::string out = env_or("NANOCHAT_TOKENIZER_TRAINED", ""); !out.empty()) {
      tk::save_tokenizer(tk::Tokenizer(std::move(tokens), {}), out);
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * corpus_bytes()));
  state.counters["threads"] = tk::max_threads();
  state.counters["vocab"] = static_cast<double>(vocab);
}

void BM_EncodeOrdinary(benchmark::State& state) {
  const auto& docs = corpus();
  const tk::Tokenizer& tok = tokenizer();
  std::size_t tokens = 0;
  for (auto _ : state) {
    tokens = 0;
    for (const std::string& d : docs) {  // a fresh vector per document, as tiktoken returns a list
      const std::vector<tk::TokenId> ids = tok.encode(d);
      benchmark::DoNotOptimize(ids.data());
      tokens += ids.size();
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * corpus_bytes()));
  state.counters["tokens"] = static_cast<double>(tokens);
}

void BM_EncodeBatch(benchmark::State& state) {
  const auto& docs = corpus();
  const tk::Tokenizer& tok = tokenizer();
  const int threads = static_cast<int>(state.range(0));
  for (auto _ : state) {
    auto rows = tok.encode_batch(docs, {.prepend = {}, .append = {}, .threads = threads});
    benchmark::DoNotOptimize(rows.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * corpus_bytes()));
}

void batch_threads(benchmark::internal::Benchmark* b) {
  for (int t = 1; t <= tk::max_threads(); t *= 2) b->Arg(t);
  if ((tk::max_threads() & (tk::max_threads() - 1)) != 0) b->Arg(tk::max_threads());
}

}  // namespace

BENCHMARK(BM_Train)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();
BENCHMARK(BM_EncodeOrdinary)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);  // wall time, as for tiktoken
BENCHMARK(BM_EncodeBatch)->Apply(batch_threads)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

BENCHMARK_MAIN();
