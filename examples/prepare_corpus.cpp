// Builds the offline default corpus (the King James Bible from Debian's bible-kjv package) as
// JSONL shards; the last shard is the validation split.
//   prepare_corpus [--dir DIR] [--per-shard N]
// --dir: default $NANOCHAT_BASE_DIR/offline_data; --per-shard: chapters per shard (default 128).
#include <cstdlib>
#include <iostream>
#include <string>

#include "nanochat/core/flags.hpp"
#include "nanochat/core/limits.hpp"
#include "nanochat/data/offline_corpus.hpp"
#include "nanochat/data/paths.hpp"

int main(int argc, char** argv) {
  using namespace nanochat::data;
  std::string dir_flag;
  std::size_t per_shard = 128;
  nanochat::Flags flags("prepare_corpus", "the offline default corpus (KJV from Debian) as JSONL shards");
  flags.add("--dir", dir_flag, "output directory (default $NANOCHAT_BASE_DIR/offline_data)")
      .add("--per-shard", per_shard, "chapters per shard", {1, static_cast<std::size_t>(nanochat::max_count)});
  try {
    if (!flags.parse(argc, argv)) return EXIT_SUCCESS;
    const std::filesystem::path dir = dir_flag.empty() ? offline_corpus_dir() : std::filesystem::path(dir_flag);
    auto shards = prepare_offline_corpus(dir, per_shard);
    std::size_t documents = 0;
    std::size_t bytes = 0;
    DocumentIterator it(shards);
    DocumentGroup group;
    while (it.next(group)) {
      documents += group.documents.size();
      for (const auto& doc : group.documents) bytes += doc.size();
    }
    std::cout << dir.string() << ": " << shards.size() << " shards (" << shards.size() - 1
              << " train, 1 val; val = " << shards.back().filename().string() << "), " << documents
              << " documents, " << bytes << " bytes of text\n";
    return EXIT_SUCCESS;
  } catch (const std::exception& e) {
    std::cerr << "prepare_corpus: " << e.what() << "\n";
    return EXIT_FAILURE;
  }
}
