// Data pipeline throughput: parquet read + decompress + decode of a FineWeb-EDU-shaped shard
// (benchmarks/compare_parquet.py writes it and runs pyarrow on the same file), JSONL reading of
// the offline corpus (text_MB/s: decoded document bytes, file_MB/s: bytes on disk), and the
// tokenizing loader's tokens/s over the offline corpus with 1 and 2 tokenizing threads.
// Tokenizer: $NANOCHAT_TOKENIZER_DIR if set, else the 2048-token test fixture.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nanochat/data/document_source.hpp"
#include "nanochat/data/offline_corpus.hpp"
#include "nanochat/data/parquet_reader.hpp"
#include "nanochat/data/token_loader.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"

namespace {

namespace fs = std::filesystem;
using namespace nanochat::data;

fs::path parquet_path() {
  const char* path = std::getenv("NANOCHAT_BENCH_PARQUET");
  return path != nullptr ? fs::path(path) : fs::path("build/bench_data/fineweb_like.parquet");
}

void report(benchmark::State& state, double text_bytes, double file_bytes) {
  state.counters["text_MB/s"] =
      benchmark::Counter(text_bytes * static_cast<double>(state.iterations()) / 1e6, benchmark::Counter::kIsRate);
  state.counters["file_MB/s"] =
      benchmark::Counter(file_bytes * static_cast<double>(state.iterations()) / 1e6, benchmark::Counter::kIsRate);
}

// Every row group of the shard, one at a time, into std::strings (what the loader consumes).
void parquet_read(benchmark::State& state) {
  fs::path path = parquet_path();
  if (!fs::exists(path)) {
    state.SkipWithError("no shard: run `python3 benchmarks/compare_parquet.py` (or set NANOCHAT_BENCH_PARQUET)");
    return;
  }
  double text_bytes = 0;
  std::vector<std::string> texts;
  for (auto _ : state) {
    ParquetReader reader(path);
    std::size_t column = reader.column_index("text");
    text_bytes = 0;
    for (std::size_t g = 0; g < reader.num_row_groups(); ++g) {
      texts.clear();
      reader.read_strings(g, column, texts);
      for (const auto& text : texts) text_bytes += static_cast<double>(text.size());
    }
    benchmark::DoNotOptimize(texts.data());
  }
  report(state, text_bytes, static_cast<double>(fs::file_size(path)));
}
BENCHMARK(parquet_read)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();

// The offline corpus (KJV, JSONL shards) through the document iterator.
void jsonl_read(benchmark::State& state) {
  fs::path dir = fs::temp_directory_path() / "nanochat_bench_offline_corpus";
  std::vector<fs::path> shards;
  try {
    shards = prepare_offline_corpus(dir);
  } catch (const nanochat::Error& error) {
    state.SkipWithError(error.what());
    return;
  }
  double text_bytes = 0;
  double file_bytes = 0;
  for (const auto& shard : shards) file_bytes += static_cast<double>(fs::file_size(shard));
  for (auto _ : state) {
    DocumentIterator it(shards);
    DocumentGroup group;
    text_bytes = 0;
    while (it.next(group)) {
      for (const auto& doc : group.documents) text_bytes += static_cast<double>(doc.size());
    }
  }
  report(state, text_bytes, file_bytes);
}
BENCHMARK(jsonl_read)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();

const nanochat::tokenizer::Tokenizer& bench_tokenizer() {
  namespace tk = nanochat::tokenizer;
  static const tk::Tokenizer tok = [] {
    if (const char* dir = std::getenv("NANOCHAT_TOKENIZER_DIR"); dir != nullptr && *dir != '\0') {
      return tk::load_tokenizer(dir);
    }
    fs::path ranks = fs::path(__FILE__).parent_path().parent_path() / "tests" / "fixtures" / "tokenizer" /
                     "ranks_2048.tiktoken";
    std::ifstream in(ranks, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return tk::Tokenizer(tk::parse_ranks(text.str(), ranks.string()),
                         {tk::kSpecialTokens.begin(), tk::kSpecialTokens.end()});
  }();
  return tok;
}

// Batches of B=8, T=2048 from the offline corpus; argument: tokenizing threads. The loader runs
// across iterations (and epochs), so this is its steady-state rate.
void loader_tokens(benchmark::State& state) {
  std::vector<fs::path> shards;
  try {
    shards = prepare_offline_corpus(fs::temp_directory_path() / "nanochat_bench_offline_corpus");
  } catch (const nanochat::Error& error) {
    state.SkipWithError(error.what());
    return;
  }
  LoaderOptions options;
  options.batch_size = 8;
  options.seq_len = 2048;
  options.threads = static_cast<std::size_t>(state.range(0));
  options.prefetch = 4;
  TokenLoader loader(bench_tokenizer(), split_shards(shards, Split::train), options);
  std::vector<std::int32_t> inputs;
  std::vector<std::int32_t> targets;
  for (auto _ : state) {
    loader.next(inputs, targets);
    benchmark::DoNotOptimize(inputs.data());
  }
  state.counters["tokens/s"] = benchmark::Counter(
      static_cast<double>(options.batch_size * options.seq_len * state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(loader_tokens)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->MinTime(3.0)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
