// Plain text, JSONL and parquet shards behind one document iterator.
#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "nanochat/data/document_source.hpp"
#include "temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using namespace nanochat::data;
using nanochat::data::testing::TempDir;

std::vector<std::string> all_documents(const fs::path& path, const CorpusOptions& options) {
  auto shard = open_shard(path, options);
  std::vector<std::string> out;
  std::vector<std::string> group;
  for (std::size_t g = 0; g < shard->num_groups(); ++g) {
    shard->read_group(g, group);
    out.insert(out.end(), group.begin(), group.end());
  }
  return out;
}

CorpusOptions text_options(TextSplit split) {
  CorpusOptions options;
  options.text_split = split;
  return options;
}

}  // namespace

TEST_CASE("data.text: lines, paragraphs and whole files are documents") {
  TempDir dir;
  auto path = dir.write("a.txt", "first line\r\nsecond line\n \t\n\nthird para\nstill third\n\nlast, no newline");
  CHECK(all_documents(path, text_options(TextSplit::line)) ==
        std::vector<std::string>{"first line", "second line", "third para", "still third", "last, no newline"});
  CHECK(all_documents(path, text_options(TextSplit::paragraph)) ==
        std::vector<std::string>{"first line\nsecond line", "third para\nstill third", "last, no newline"});
  CHECK(all_documents(path, text_options(TextSplit::file)) ==
        std::vector<std::string>{"first line\nsecond line\n \t\n\nthird para\nstill third\n\nlast, no newline"});
  CHECK(all_documents(dir.write("empty.txt", ""), text_options(TextSplit::file)).empty());
}

TEST_CASE("data.text: a last line without a newline loses its trailing CR like every other line") {
  // Found by fuzz_corpus: "b\r" at the end of the file was kept as "b\r".
  TempDir dir;
  auto path = dir.write("cr.txt", "a\r\nb\r");
  CHECK(all_documents(path, text_options(TextSplit::line)) == std::vector<std::string>{"a", "b"});
  CHECK(all_documents(path, text_options(TextSplit::paragraph)) == std::vector<std::string>{"a\nb"});
  CHECK(all_documents(dir.write("only_cr.txt", "\r"), text_options(TextSplit::line)).empty());
}

TEST_CASE("data.jsonl: the named field is decoded, other fields are skipped") {
  TempDir dir;
  auto path = dir.write("a.jsonl",
                        "{\"id\": 1, \"meta\": {\"x\": [1, 2, {\"text\": \"no\"}]}, \"text\": \"plain\"}\n"
                        "\n"
                        "{\"text\": \"esc \\\"q\\\" \\\\ \\n \\t \\u00e9 \\u6771 \\ud83d\\ude42\", \"score\": -1.5e3}\r\n"
                        "{\"body\": \"b\", \"text\": \"\", \"ok\": true, \"none\": null}\n"
                        "{\"text\": \"first\", \"text\": \"lone \\ud800\"}");
  // A repeated field gives its last value and a lone surrogate stays as its 3 bytes: what
  // Python's json.loads returns.
  CHECK(all_documents(path, {}) ==
        std::vector<std::string>{"plain", "esc \"q\" \\ \n \t é 東 🙂", "", "lone \xED\xA0\x80"});
  CorpusOptions body;
  body.jsonl_field = "body";
  CHECK_THROWS_WITH_AS(all_documents(path, body), doctest::Contains("a.jsonl: document 0: has no field 'body'"),
                       nanochat::Error);
}

TEST_CASE("data.jsonl: a null text is no document and is counted as parquet nulls are") {
  TempDir dir;
  // The repeated field's last value counts (json.loads): the last line is a null document.
  auto path = dir.write("n.jsonl", "{\"text\": \"a\"}\n{\"text\": null}\n{\"text\": \"\"}\n"
                                   "{\"text\": \"b\", \"text\": null}\n");
  CorpusOptions options;
  options.group_size = 4;
  const auto shard = open_shard(path, options);
  std::vector<std::string> docs;
  CHECK(shard->read_group(0, docs) == 2);
  CHECK(docs == std::vector<std::string>{"a", ""});
}

TEST_CASE("data.jsonl: malformed lines are errors naming file and document") {
  TempDir dir;
  for (const char* line : {"{\"text\": \"unterminated}", "[\"text\"]", "{\"text\": 3}", "{\"text\": \"\\x\"}",
                           "{\"text\": \"\\u12\"}", "{\"text\": \"a\"} x", "{\"text\": \"a\", \"n\": 01}",
                           "{\"text\": nul}", "{\"text\": \"a\tb\"}", "{\"text\": \"a\", \"x\": nul}"}) {
    CAPTURE(line);
    auto path = dir.write("bad.jsonl", std::string("{\"text\": \"fine\"}\n") + line + "\n");
    CHECK_THROWS_WITH_AS(all_documents(path, {}), doctest::Contains("bad.jsonl: document 1"), nanochat::Error);
  }
}

TEST_CASE("data.corpus: documents come in groups of group_size, across read-block boundaries") {
  TempDir dir;
  // ~1.5 MB so indexing crosses the 1 MiB read block inside a line.
  std::string jsonl;
  std::string text;
  std::vector<std::string> expected;
  for (int i = 0; i < 2500; ++i) {
    std::string doc = "document " + std::to_string(i) + " " + std::string(static_cast<std::size_t>(300 + i % 200), 'x');
    expected.push_back(doc);
    jsonl += "{\"text\": \"" + doc + "\"}\n";
    text += doc + "\r\n";
  }
  CorpusOptions options;
  options.text_split = TextSplit::line;
  for (const auto& path : {dir.write("big.jsonl", jsonl), dir.write("big.txt", text)}) {
    CAPTURE(path);
    auto shard = open_shard(path, options);
    REQUIRE(shard->num_groups() == 3);
    std::vector<std::string> group;
    shard->read_group(2, group);
    CHECK(group.size() == 2500 - 2048);
    CHECK(group.front() == expected[2048]);
    CHECK(all_documents(path, options) == expected);
    CHECK_THROWS_WITH_AS(shard->read_group(3, group), doctest::Contains("group 3 out of range"), nanochat::Error);
  }
}

TEST_CASE("data.corpus: shards are listed in name order and the last one is validation") {
  TempDir dir;
  dir.write("shard_00002.jsonl", "{\"text\": \"c\"}\n");
  dir.write("shard_00000.parquet.tmp", "partial download");
  dir.write("shard_00000.txt", "a\n");
  dir.write("shard_00001.jsonl", "{\"text\": \"b\"}\n");
  dir.write("notes.md", "not a shard");
  auto shards = list_shards(dir.path());
  REQUIRE(shards.size() == 3);
  CHECK(shards[0].filename() == "shard_00000.txt");
  CHECK(shards[2].filename() == "shard_00002.jsonl");
  CHECK(split_shards(shards, Split::train) == std::vector<fs::path>{shards[0], shards[1]});
  CHECK(split_shards(shards, Split::val) == std::vector<fs::path>{shards[2]});
  CHECK_THROWS_WITH_AS(split_shards({shards[0]}, Split::train), doctest::Contains("at least two shards"),
                       nanochat::Error);
  CHECK_THROWS_WITH_AS(open_shard(dir.path() / "notes.md"), doctest::Contains("unknown corpus format"),
                       nanochat::Error);
}

TEST_CASE("data.corpus: W strided iterators over mixed formats see every group exactly once") {
  TempDir dir;
  const fs::path parquet = fs::path(NANOCHAT_FIXTURES) / "data" / "parquet";
  std::string jsonl;
  for (int i = 0; i < 10; ++i) jsonl += "{\"text\": \"j" + std::to_string(i) + "\"}\n";
  std::vector<fs::path> shards = {parquet / "zstd_plain_v1.parquet", dir.write("b.jsonl", jsonl),
                                  parquet / "snappy_dict_v2.parquet"};
  CorpusOptions options;
  options.group_size = 4;  // 10 JSONL documents -> 3 groups; each parquet file has 3 row groups

  std::vector<std::string> all;
  DocumentIterator single(shards, options);
  DocumentGroup group;
  while (single.next(group)) all.insert(all.end(), group.documents.begin(), group.documents.end());
  CHECK(all.size() == 149 + 10 + 149);  // each parquet file holds one null, which is skipped

  for (std::size_t world = 1; world <= 4; ++world) {
    CAPTURE(world);
    std::map<std::pair<std::size_t, std::size_t>, std::size_t> seen;  // (shard, group) -> rank
    std::multiset<std::string> documents;
    for (std::size_t rank = 0; rank < world; ++rank) {
      DocumentIterator it(shards, options, rank, world);
      while (it.next(group)) {
        CHECK(group.group % world == rank);
        CHECK(seen.emplace(std::pair{group.shard, group.group}, rank).second);
        documents.insert(group.documents.begin(), group.documents.end());
      }
    }
    CHECK(seen.size() == 9);
    CHECK(documents == std::multiset<std::string>(all.begin(), all.end()));
  }
}
