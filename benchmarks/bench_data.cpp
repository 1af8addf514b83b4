// Data pipeline throughput: parquet read + decompress + decode of a FineWeb-EDU-shaped shard
// (benchmarks/compare_parquet.py writes it and runs pyarrow on the same file), and JSONL reading
// of the offline corpus. Counters: text_MB/s (decoded document bytes) and file_MB/s (bytes on disk).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "nanochat/data/document_source.hpp"
#include "nanochat/data/offline_corpus.hpp"
#include "nanochat/data/parquet_reader.hpp"

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

}  // namespace

BENCHMARK_MAIN();
