// The tokenizing distributed loader: the stream is BOS + document, concatenated, in the order of
// the strided document iterator; batches are deterministic for any thread count; a saved state
// resumes exactly; across W ranks every document is used once per epoch; epochs wrap.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "nanochat/data/token_loader.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"
#include "temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
namespace tk = nanochat::tokenizer;
using namespace nanochat::data;
using nanochat::data::testing::TempDir;

const tk::Tokenizer& test_tokenizer() {
  static const tk::Tokenizer tok = [] {
    std::ifstream in(fs::path(NANOCHAT_FIXTURES) / "tokenizer" / "ranks_300.tiktoken", std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return tk::Tokenizer(tk::parse_ranks(text.str(), "ranks_300.tiktoken"),
                         {tk::kSpecialTokens.begin(), tk::kSpecialTokens.end()});
  }();
  return tok;
}

// Three JSONL shards of 37, 50 and 23 distinct documents; with group_size 8 that is 5 + 7 + 3
// groups of uneven token counts.
struct Corpus {
  TempDir dir;
  std::vector<fs::path> shards;
  CorpusOptions options;
  Corpus() {
    options.group_size = 8;
    int sizes[] = {37, 50, 23};
    for (int s = 0; s < 3; ++s) {
      std::string jsonl;
      for (int d = 0; d < sizes[s]; ++d) {
        std::string text = "Doc " + std::to_string(s) + "-" + std::to_string(d) + ":";
        for (int w = 0; w < (d * 7 + s * 3) % 23 + 1; ++w) text += " word" + std::to_string((w * 13 + d) % 17);
        jsonl += "{\"text\": \"" + text + "\"}\n";
      }
      shards.push_back(dir.write("shard_0000" + std::to_string(s) + ".jsonl", jsonl));
    }
  }
  LoaderOptions loader(std::size_t rank = 0, std::size_t world = 1, std::size_t threads = 2) const {
    LoaderOptions out;
    out.batch_size = 2;
    out.seq_len = 16;
    out.rank = rank;
    out.world = world;
    out.threads = threads;
    out.prefetch = 3;
    out.corpus = options;
    return out;
  }
  // Documents of one rank in the loader's order, from the document iterator.
  std::vector<std::string> documents(std::size_t rank, std::size_t world) const {
    std::vector<std::string> out;
    DocumentIterator it(shards, options, rank, world);
    DocumentGroup group;
    while (it.next(group)) out.insert(out.end(), group.documents.begin(), group.documents.end());
    return out;
  }
};

struct Batch {
  std::vector<std::int32_t> inputs;
  std::vector<std::int32_t> targets;
  LoaderState after;
  bool operator==(const Batch&) const = default;
};

std::vector<Batch> take(TokenLoader& loader, std::size_t n) {
  std::vector<Batch> out(n);
  for (auto& batch : out) {
    loader.next(batch.inputs, batch.targets);
    batch.after = loader.state();
  }
  return out;
}

// The consumed stream of a run of batches: each batch's inputs plus its final target (B*T+1).
std::vector<std::int32_t> stream_of(const std::vector<Batch>& batches) {
  std::vector<std::int32_t> out;
  for (const auto& batch : batches) {
    out.insert(out.end(), batch.inputs.begin(), batch.inputs.end());
    out.push_back(batch.targets.back());
  }
  return out;
}

// Splits a stream at BOS into decoded documents (the text before the first BOS is dropped).
std::vector<std::string> split_documents(const std::vector<std::int32_t>& stream) {
  auto bos = static_cast<std::int32_t>(test_tokenizer().bos_id());
  std::vector<std::string> out;
  std::vector<tk::TokenId> current;
  bool started = false;
  for (std::int32_t id : stream) {
    if (id == bos) {
      if (started) out.push_back(test_tokenizer().decode_bytes(current));
      started = true;
      current.clear();
    } else {
      current.push_back(static_cast<tk::TokenId>(id));
    }
  }
  return out;  // the last, possibly partial, document is left out
}

}  // namespace

TEST_CASE("data.loader: batches are BOS-prefixed documents concatenated, targets shifted by one") {
  Corpus corpus;
  TokenLoader loader(test_tokenizer(), corpus.shards, corpus.loader());
  auto batches = take(loader, 30);
  for (const auto& batch : batches) {
    REQUIRE(batch.inputs.size() == 32);
    for (std::size_t i = 0; i + 1 < 32; ++i) CHECK(batch.targets[i] == batch.inputs[i + 1]);
  }
  CHECK(batches[0].inputs[0] == static_cast<std::int32_t>(test_tokenizer().bos_id()));
  // The stream is exactly BOS + tokens of each document in iterator order.
  auto documents = corpus.documents(0, 1);
  std::vector<std::int32_t> expected;
  for (const auto& doc : documents) {
    expected.push_back(static_cast<std::int32_t>(test_tokenizer().bos_id()));
    for (auto id : test_tokenizer().encode(doc)) expected.push_back(static_cast<std::int32_t>(id));
  }
  auto stream = stream_of(batches);
  REQUIRE(stream.size() <= expected.size());
  CHECK(std::equal(stream.begin(), stream.end(), expected.begin()));
}

TEST_CASE("data.loader: the batches do not depend on the thread count") {
  Corpus corpus;
  TokenLoader one(test_tokenizer(), corpus.shards, corpus.loader(0, 1, 1));
  TokenLoader four(test_tokenizer(), corpus.shards, corpus.loader(0, 1, 4));
  TokenLoader again(test_tokenizer(), corpus.shards, corpus.loader(0, 1, 4));
  auto a = take(one, 600);  // several epochs
  CHECK(a.back().after.epoch >= 2);
  CHECK(take(four, 600) == a);
  CHECK(take(again, 600) == a);
}

TEST_CASE("data.loader: a saved state resumes with exactly the batches that would have followed") {
  Corpus corpus;
  for (std::size_t world : {1u, 3u}) {
    for (std::size_t rank = 0; rank < world; ++rank) {
      CAPTURE(world);
      CAPTURE(rank);
      TokenLoader reference(test_tokenizer(), corpus.shards, corpus.loader(rank, world));
      // Until 10 batches into epoch 1, so the resume points cross an epoch wrap.
      std::vector<Batch> expected;
      std::size_t into_epoch_1 = 0;
      while (into_epoch_1 < 10) {
        expected.push_back(take(reference, 1)[0]);
        into_epoch_1 += expected.back().after.epoch >= 1;
      }
      // Every resume point, which covers group, shard and epoch boundaries.
      for (std::size_t k = 0; k + 8 <= expected.size(); k += 1) {
        CAPTURE(k);
        LoaderState saved = k == 0 ? LoaderState{0, 0, rank, 0} : expected[k - 1].after;
        TokenLoader resumed(test_tokenizer(), corpus.shards, corpus.loader(rank, world), saved);
        auto got = take(resumed, 8);
        CHECK(got == std::vector<Batch>(expected.begin() + static_cast<std::ptrdiff_t>(k),
                                        expected.begin() + static_cast<std::ptrdiff_t>(k + 8)));
      }
    }
  }
}

TEST_CASE("data.loader: across W ranks every document is used exactly once per epoch, then epochs wrap") {
  Corpus corpus;
  auto all = corpus.documents(0, 1);
  REQUIRE(all.size() == 110);
  for (std::size_t world : {1u, 2u, 3u, 5u}) {
    CAPTURE(world);
    std::multiset<std::string> used;
    for (std::size_t rank = 0; rank < world; ++rank) {
      CAPTURE(rank);
      auto mine = corpus.documents(rank, world);
      TokenLoader loader(test_tokenizer(), corpus.shards, corpus.loader(rank, world));
      std::vector<Batch> batches;
      while (batches.empty() || batches.back().after.epoch == 0) batches.push_back(take(loader, 1)[0]);
      auto seen = split_documents(stream_of(batches));
      REQUIRE(seen.size() >= mine.size());
      // Epoch 0 is this rank's documents in order; epoch 1 starts again at the first one.
      CHECK(std::vector<std::string>(seen.begin(), seen.begin() + static_cast<std::ptrdiff_t>(mine.size())) == mine);
      if (seen.size() > mine.size()) CHECK(seen[mine.size()] == mine.front());
      used.insert(mine.begin(), mine.end());
      CHECK(loader.epoch() == 1);
    }
    CHECK(used == std::multiset<std::string>(all.begin(), all.end()));
  }
}

TEST_CASE("data.loader: bad configurations and corrupt shards are errors, not hangs") {
  Corpus corpus;
  // 15 groups in all: with W = 20, rank 17 owns none.
  TokenLoader idle(test_tokenizer(), corpus.shards, corpus.loader(17, 20));
  std::vector<std::int32_t> inputs;
  std::vector<std::int32_t> targets;
  CHECK_THROWS_WITH_AS(idle.next(inputs, targets), doctest::Contains("rank 17 of 20 has no groups"),
                       nanochat::Error);
  CHECK_THROWS_WITH_AS(TokenLoader(test_tokenizer(), corpus.shards, corpus.loader(1, 2), LoaderState{0, 0, 2, 0}),
                       doctest::Contains("does not belong to rank 1 of 2"), nanochat::Error);
  // 100000 threads once aborted the process (a std::thread left joinable when creation failed).
  CHECK_THROWS_WITH_AS(TokenLoader(test_tokenizer(), corpus.shards, corpus.loader(0, 1, 100000)),
                       doctest::Contains("loader: 100000 threads; it takes 1 to 1024"), nanochat::Error);
  CHECK_THROWS_WITH_AS(TokenLoader(test_tokenizer(), corpus.shards, corpus.loader(0, 1, 0)),
                       doctest::Contains("loader: 0 threads"), nanochat::Error);
  TokenLoader past_end(test_tokenizer(), corpus.shards, corpus.loader(), LoaderState{0, 2, 3, 0});
  CHECK_THROWS_WITH_AS(past_end.next(inputs, targets), doctest::Contains("has 3"), nanochat::Error);
  TokenLoader big_offset(test_tokenizer(), corpus.shards, corpus.loader(), LoaderState{0, 0, 0, 1000000});
  CHECK_THROWS_WITH_AS(big_offset.next(inputs, targets), doctest::Contains("resume offset 1000000"),
                       nanochat::Error);
  CHECK_THROWS_WITH_AS(big_offset.next(inputs, targets), doctest::Contains("resume offset 1000000"),
                       nanochat::Error);

  auto broken = corpus.shards;
  broken[1] = corpus.dir.write("shard_broken.jsonl", "{\"text\": \"ok\"}\n{\"body\": \"no text\"}\n");
  TokenLoader loader(test_tokenizer(), broken, corpus.loader());
  CHECK_THROWS_WITH_AS(take(loader, 100), doctest::Contains("shard_broken.jsonl: document 1: has no field 'text'"),
                       nanochat::Error);
  // Asking again repeats the error instead of waiting for groups that will never come.
  CHECK_THROWS_WITH_AS(loader.next(inputs, targets), doctest::Contains("shard_broken.jsonl"), nanochat::Error);
}

TEST_CASE("data.loader: parquet nulls are skipped and counted in the log while empty strings are documents") {
  const fs::path parquet = fs::path(NANOCHAT_FIXTURES) / "data" / "parquet";
  // ["a", null, ""], [], ["b"]; then a file with runs of nulls and empty strings.
  const std::vector<fs::path> shards = {parquet / "empty_row_group.parquet", parquet / "zstd_delta_v2.parquet"};
  std::vector<std::string> documents;
  std::size_t nulls[2] = {0, 0};
  DocumentIterator it(shards);
  DocumentGroup group;
  while (it.next(group)) {
    documents.insert(documents.end(), group.documents.begin(), group.documents.end());
    nulls[group.shard] += group.null_documents;
  }
  CHECK(nulls[0] == 1);
  CHECK(nulls[1] >= 40);  // the generator's run of 40 nulls, and more
  REQUIRE(documents.size() > 3);
  CHECK(std::vector<std::string>(documents.begin(), documents.begin() + 3) == std::vector<std::string>{"a", "", "b"});

  std::FILE* log = std::tmpfile();
  REQUIRE(log != nullptr);
  LoaderOptions options;
  options.batch_size = 2;
  options.seq_len = 16;
  options.log = log;
  {
    TokenLoader loader(test_tokenizer(), shards, options);
    std::vector<Batch> batches;
    while (batches.empty() || batches.back().after.epoch == 0) batches.push_back(take(loader, 1)[0]);
    auto seen = split_documents(stream_of(batches));
    REQUIRE(seen.size() >= documents.size());
    CHECK(std::vector<std::string>(seen.begin(), seen.begin() + static_cast<std::ptrdiff_t>(documents.size())) ==
          documents);
    CHECK(loader.null_documents_skipped() >= nulls[0] + nulls[1]);  // epoch 1 may have been read ahead
  }
  std::rewind(log);
  std::string text;
  for (int c; (c = std::fgetc(log)) != EOF;) text += static_cast<char>(c);
  std::fclose(log);
  CAPTURE(text);
  CHECK(text.find("loader: skipped 1 null document in " + shards[0].string() + " (epoch 0, rank 0)\n") !=
        std::string::npos);
  CHECK(text.find("loader: skipped " + std::to_string(nulls[1]) + " null documents in " + shards[1].string() +
                  " (epoch 0, rank 0)\n") != std::string::npos);
}

TEST_CASE("data.loader: shards without a single document are an error, not an endless wait") {
  TempDir dir;
  const auto nulls = dir.write("nulls.jsonl", "{\"text\": null}\n{\"text\": null}\n");
  const auto zero_rows = fs::path(NANOCHAT_FIXTURES) / "data" / "parquet" / "zero_rows.parquet";
  for (const auto& shards : {std::vector<fs::path>{nulls}, std::vector<fs::path>{zero_rows, nulls}}) {
    CAPTURE(shards.size());
    LoaderOptions options;
    options.batch_size = 1;
    options.seq_len = 4;
    options.log = nullptr;
    options.corpus.group_size = 1;
    TokenLoader loader(test_tokenizer(), shards, options);
    std::vector<std::int32_t> x, y;
    CHECK_THROWS_WITH_AS(loader.next(x, y), doctest::Contains("hold no document for rank 0 of 1"), nanochat::Error);
    CHECK_THROWS_AS(loader.next(x, y), nanochat::Error);  // and stays failed
  }
}
