// Builds the offline default corpus (the King James Bible from Debian's bible-kjv package) as
// JSONL shards; the last shard is the validation split.
//   prepare_corpus [--dir DIR] [--per-shard N]
// --dir: default $NANOCHAT_BASE_DIR/offline_data; --per-shard: chapters per shard (default 128).
#include <cstdlib>
#include <iostream>
#include <string>

#include "nanochat/data/offline_corpus.hpp"
#include "nanochat/data/paths.hpp"

int main(int argc, char** argv) {
  using namespace nanochat::data;
  std::filesystem::path dir;
  std::size_t per_shard = 128;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string flag = argv[i];
      NANOCHAT_CHECK(i + 1 < argc, "prepare_corpus: ", flag, " needs a value");
      std::string value = argv[++i];
      if (flag == "--dir") dir = value;
      else if (flag == "--per-shard") per_shard = std::stoul(value);
      else NANOCHAT_FAIL("prepare_corpus: unknown flag ", flag, " (use --dir, --per-shard)");
    }
    if (dir.empty()) dir = offline_corpus_dir();
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
    std::cerr << e.what() << "\n";
    return EXIT_FAILURE;
  }
}
