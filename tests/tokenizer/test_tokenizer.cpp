// The tokenizer's API: round trips, specials, batches, token_bytes, files, bad input and a
// round-trip fuzz of arbitrary bytes.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "nanochat/core/utf8.hpp"
#include "nanochat/tokenizer/bpe_trainer.hpp"
#include "nanochat/tokenizer/tokenizer.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"

namespace tk = nanochat::tokenizer;
namespace fs = std::filesystem;

namespace {

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write(const fs::path& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

const tk::Tokenizer& fixture_tokenizer() {
  static const tk::Tokenizer tok(
      tk::parse_ranks(read(fs::path(NANOCHAT_FIXTURES) / "tokenizer/ranks_2048.tiktoken"), "fixture"),
      {tk::kSpecialTokens.begin(), tk::kSpecialTokens.end()});
  return tok;
}

// A fresh directory under the system temp dir, removed at scope exit.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("nanochat_tok_" + name + "_" + std::to_string(std::random_device{}()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace

TEST_CASE("tokenizer/api: vocabulary layout and special ids") {
  const tk::Tokenizer& tok = fixture_tokenizer();
  CHECK(tok.vocab_size() == 2048 + 9);
  CHECK(tok.bos_id() == 2048);
  for (std::size_t i = 0; i < tk::kSpecialTokens.size(); ++i) {
    CHECK(tok.encode_special(tk::kSpecialTokens[i]) == 2048 + i);
    CHECK(tok.id_to_token(static_cast<tk::TokenId>(2048 + i)) == tk::kSpecialTokens[i]);
  }
  CHECK_THROWS_AS(tok.encode_special("<|nope|>"), nanochat::Error);
  CHECK_THROWS_AS(tok.decode(std::vector<tk::TokenId>{4000}), nanochat::Error);
}

TEST_CASE("tokenizer/api: special tokens never come from user text") {
  const tk::Tokenizer& tok = fixture_tokenizer();
  for (std::string_view special : tk::kSpecialTokens) {
    // append, not "x" + std::string: GCC 12 at -O3 warns falsely on that (-Wrestrict, bug 105329).
    for (const std::string& text : {std::string(special), std::string("x").append(special).append("y"),
                                   std::string(special).append(special)}) {
      const auto ids = tok.encode(text);
      CHECK(ids.size() > 1);
      for (tk::TokenId id : ids) CHECK_FALSE(tok.is_special(id));
      CHECK(tok.decode(ids) == text);
    }
  }
}

TEST_CASE("tokenizer/api: decode to bytes and to a display string") {
  const tk::Tokenizer& tok = fixture_tokenizer();
  const std::string text = "Hello world! How are you? 🙃 안녕 \r\n\t 12345";
  const auto ids = tok.encode(text);
  CHECK(tok.decode_bytes(ids) == text);
  CHECK(tok.decode(ids) == text);
  // A token holding part of a multi-byte character: raw bytes stay, display gets U+FFFD.
  const std::string partial = "\xF0\x9F";
  const auto pid = tok.encode(partial);
  CHECK(tok.decode_bytes(pid) == partial);
  CHECK(tok.decode(pid) == "\xEF\xBF\xBD");
  CHECK(nanochat::to_valid_utf8("a\xE2\x82z\xFF") == "a\xEF\xBF\xBDz\xEF\xBF\xBD");  // maximal subparts
}

TEST_CASE("tokenizer/api: documents are cropped to a number of characters, not bytes") {
  std::string doc = "h\xC3\xA9llo \xF0\x9F\x99\x83\xFF!";  // h é l l o ␠ 🙃 <invalid> !
  CHECK(nanochat::crop_to_chars(doc, 100) == 9);
  CHECK(nanochat::crop_to_chars(doc, 8) == 8);
  CHECK(doc == "h\xC3\xA9llo \xF0\x9F\x99\x83\xFF");
  CHECK(nanochat::crop_to_chars(doc, 2) == 2);
  CHECK(doc == "h\xC3\xA9");
}

TEST_CASE("tokenizer/api: batch encoding with prepend and append equals single encoding") {
  const tk::Tokenizer& tok = fixture_tokenizer();
  std::vector<std::string> texts;
  for (int i = 0; i < 300; ++i) texts.push_back("document " + std::to_string(i) + std::string(static_cast<std::size_t>(i % 7), '!'));
  const tk::TokenId bos = tok.bos_id();
  const tk::TokenId end = tok.encode_special("<|assistant_end|>");
  const auto rows = tok.encode_batch(texts, {.prepend = {bos}, .append = {end}, .threads = 4});
  REQUIRE(rows.size() == texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    std::vector<tk::TokenId> expected{bos};
    const auto body = tok.encode(texts[i]);
    expected.insert(expected.end(), body.begin(), body.end());
    expected.push_back(end);
    CHECK(rows[i] == expected);
  }
}

TEST_CASE("tokenizer/api: token_bytes is the raw byte length, 0 for specials") {
  const tk::Tokenizer& tok = fixture_tokenizer();
  const auto bytes = tok.token_bytes();
  REQUIRE(bytes.size() == tok.vocab_size());
  std::size_t partial = 0;
  for (std::size_t id = 0; id < tok.num_ranks(); ++id) {
    const std::string& t = tok.encoder().token(static_cast<tk::TokenId>(id));
    CHECK(bytes[id] == static_cast<std::int32_t>(t.size()));
    if (!nanochat::is_valid_utf8(t)) ++partial;
  }
  CHECK(partial > 0);  // e.g. the 128 bytes >= 0x80: their length is 1, not 3 (U+FFFD)
  for (std::size_t id = tok.num_ranks(); id < tok.vocab_size(); ++id) CHECK(bytes[id] == 0);
}

TEST_CASE("tokenizer/api: merge loops agree on long pieces") {
  const tk::Tokenizer& tok = fixture_tokenizer();
  std::mt19937_64 rng(3);
  const std::string alphabet = "etaoin shrdluETAOIN";
  for (int round = 0; round < 200; ++round) {
    std::string piece(1 + rng() % tk::BpeEncoder::kQuadraticMax, ' ');
    for (char& c : piece) c = alphabet[rng() % alphabet.size()];
    std::vector<tk::TokenId> small, large;
    tok.encoder().merge_small(piece, small);
    tok.encoder().merge_large(piece, large);
    CHECK(small == large);
    CHECK(tok.decode_bytes(large) == piece);
  }
}

TEST_CASE("tokenizer/api: fuzzed bytes round-trip exactly") {
  const tk::Tokenizer& tok = fixture_tokenizer();
  std::mt19937_64 rng(11);
  for (int round = 0; round < 3000; ++round) {
    std::string bytes(rng() % 400, '\0');
    const int mode = round % 3;
    for (char& c : bytes) {
      const auto r = rng();
      c = static_cast<char>(mode == 0 ? r : mode == 1 ? "ab \n'1\xC3\xA9\xF0"[r % 9] : 0x20 + r % 95);
    }
    const auto ids = tok.encode(bytes);
    REQUIRE(tok.decode_bytes(ids) == bytes);
    for (tk::TokenId id : ids) REQUIRE(id < tok.num_ranks());
  }
}

TEST_CASE("tokenizer/api: a 100 MB document encodes and round-trips") {
  const tk::Tokenizer& tok = fixture_tokenizer();
  // One 100 MB letter run is a single piece: the heap merge keeps it O(n log n).
  const std::string letters(100u << 20, 'a');
  const auto ids = tok.encode(letters);
  CHECK(tok.decode_bytes(ids) == letters);
  std::string mixed;
  while (mixed.size() < (20u << 20)) mixed += "The quick brown fox, 1234 \xF0\x9F\x99\x83 \xFF\r\n";
  CHECK(tok.decode_bytes(tok.encode(mixed)) == mixed);
}

TEST_CASE("tokenizer/files: save, load with tiktoken's format, identical behaviour") {
  TempDir dir("save");
  const tk::Tokenizer& tok = fixture_tokenizer();
  tk::save_tokenizer(tok, dir.path);
  CHECK(read(dir.path / "tokenizer.tiktoken") ==
        read(fs::path(NANOCHAT_FIXTURES) / "tokenizer/ranks_2048.tiktoken"));
  const tk::Tokenizer loaded = tk::load_tokenizer(dir.path);
  CHECK(loaded.vocab_size() == tok.vocab_size());
  CHECK(loaded.special_tokens() == tok.special_tokens());
  const std::string text = "Saved and loaded: same ids? 🙃";
  CHECK(loaded.encode(text) == tok.encode(text));
  CHECK_FALSE(fs::exists(dir.path / "tokenizer.tiktoken.tmp"));
}

TEST_CASE("tokenizer/files: corrupt or truncated files give clear errors") {
  TempDir dir("bad");
  const tk::Tokenizer& tok = fixture_tokenizer();
  tk::save_tokenizer(tok, dir.path);
  const std::string ranks = read(dir.path / "tokenizer.tiktoken");
  const std::string config = read(dir.path / "tokenizer.json");
  const auto expect_error = [&](const std::string& ranks_text, const std::string& config_text,
                                const std::string& needle) {
    write(dir.path / "tokenizer.tiktoken", ranks_text);
    write(dir.path / "tokenizer.json", config_text);
    try {
      (void)tk::load_tokenizer(dir.path);
      FAIL("loaded a bad tokenizer; expected an error mentioning ", needle);
    } catch (const nanochat::Error& e) {
      CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
    }
  };
  expect_error(ranks.substr(0, ranks.size() / 2), config, "special token");   // truncated: ids no longer follow
  expect_error(ranks.substr(0, 1000), config, "");                             // cut mid-line
  expect_error("", config, "no tokens");
  expect_error("!!!! 0\n" + ranks, config, "invalid base64");
  expect_error(ranks + "YQ== 5\n", config, "appears twice");
  expect_error(ranks + "YWJjZGVm 3000\n", config, "out of range");
  expect_error(ranks + "YWJjZGVm 999999999\n", config, "out of range");
  expect_error(ranks + "YWJj x\n", config, "invalid rank");
  expect_error(ranks, config.substr(0, config.size() / 2), "invalid JSON");
  expect_error(ranks, "{\"pattern\": \"\\\\s+\", \"special_tokens\": {}}", "unsupported split pattern");
  expect_error(ranks, "{\"special_tokens\": {}}", "missing \"pattern\"");
  // Without the single-byte tokens BPE could not encode every input.
  std::string no_byte_a;
  for (std::size_t r = 0; r < tok.num_ranks(); ++r) {
    if (r == 'a') continue;
    const std::string_view t = tok.encoder().token(static_cast<tk::TokenId>(r));
    no_byte_a += tk::base64_encode(t) + " " + std::to_string(r < 'a' ? r : r - 1) + "\n";
  }
  expect_error(no_byte_a, "{\"pattern\": " + nanochat::json::quote(tk::kSplitPattern) +
                              ", \"special_tokens\": {}}",
               "byte 97 has no token");
  // A token of 2000 bytes in place of the last rank's: finding its pairs would cost the square of
  // its length, so the vocabulary refuses it.
  const std::size_t last_line = ranks.rfind('\n', ranks.size() - 2) + 1;
  expect_error(ranks.substr(0, last_line) + tk::base64_encode(std::string(2000, 'z')) +
                   ranks.substr(ranks.find(' ', last_line)),
               config, "is 2000 bytes long, more than the 1024 a token may have");
  // Random corruption never crashes: either it loads or it throws nanochat::Error.
  std::mt19937_64 rng(5);
  for (int round = 0; round < 40; ++round) {
    std::string r = ranks, c = config;
    std::string& victim = round % 2 ? r : c;
    for (int k = 0; k < 5; ++k) victim[rng() % victim.size()] = static_cast<char>(rng());
    write(dir.path / "tokenizer.tiktoken", r);
    write(dir.path / "tokenizer.json", c);
    try {
      (void)tk::load_tokenizer(dir.path);
    } catch (const nanochat::Error&) {
    }
  }
  CHECK_THROWS_AS(tk::load_tokenizer(dir.path / "missing"), nanochat::Error);
  std::filesystem::remove(dir.path / "tokenizer.tiktoken");
  std::filesystem::create_directory(dir.path / "tokenizer.tiktoken");
  CHECK_THROWS_WITH_AS(tk::load_tokenizer(dir.path), doctest::Contains("tokenizer.tiktoken is not a readable file"),
                       nanochat::Error);
}

TEST_CASE("tokenizer/trainer: bad input") {
  tk::BpeTrainer trainer(2);
  CHECK_THROWS_WITH_AS(trainer.train(200), doctest::Contains("below the 256 byte tokens"), nanochat::Error);
  // An empty corpus yields just the byte tokens (rustbpe stops when no pair is left).
  CHECK(tk::BpeTrainer(2).train(1000).size() == 256);
  // Invalid UTF-8 is trained on byte-exactly; the result encodes it back exactly.
  tk::BpeTrainer bytes_trainer(2);
  const std::vector<std::string> docs = {"\xFF\xFE abc \xC3\x28 abc", "abc\x80\x80\x80 \xFF\xFE"};
  bytes_trainer.add_documents(docs);
  const auto tokens = bytes_trainer.train(270);
  CHECK(tokens.size() > 256);
  tk::Tokenizer tok(tokens, {});
  for (const std::string& d : docs) CHECK(tok.decode_bytes(tok.encode(d)) == d);
}

TEST_CASE("tokenizer/trainer: a 100 MB document") {
  std::string doc;
  while (doc.size() < (90u << 20)) doc += "The quick brown fox jumps over the lazy dog; 12345 \xF0\x9F\x99\x83\r\n";
  doc += std::string(10u << 20, 'z');  // one 10 MB piece
  tk::BpeTrainer trainer(2);
  trainer.add_documents(std::span<const std::string>(&doc, 1));
  const auto tokens = trainer.train(300);
  REQUIRE(tokens.size() == 300);
  const tk::Tokenizer tok(tokens, {});
  CHECK(tok.decode_bytes(tok.encode(doc)) == doc);
  // (z,z) occurs 10M times, then (zz,zz) 5M: more than any pair of the repeated sentence
  // (1.6M), so these merges come first.
  CHECK(tokens[256] == "zz");
  CHECK(tokens[257] == "zzzz");
}

TEST_CASE("tokenizer/trainer: merges follow textbook BPE with rustbpe's tie-break") {
  // Pieces "aaab", " aaab", "cd", " dc". (a,a) occurs 4 times and is merged first (256). Then
  // (256,a) and (a,b) both occur twice: the smaller pair, (97,98) "ab", wins (257); then
  // (256,257) "aaab" (258).
  tk::BpeTrainer trainer(1);
  const std::vector<std::string> docs = {"aaab aaab", "cd dc"};
  trainer.add_documents(docs);
  const auto tokens = trainer.train(259);
  REQUIRE(tokens.size() == 259);
  CHECK(tokens[256] == "aa");
  CHECK(tokens[257] == "ab");
  CHECK(tokens[258] == "aaab");
  REQUIRE(trainer.merges().size() == 3);
  CHECK(trainer.merges()[2].left == 256);
  CHECK(trainer.merges()[2].right == 257);
}
