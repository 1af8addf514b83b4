// Parity with the Python reference (fixtures written by tests/reference/make_tokenizer_fixtures.py
// with PyPI's rustbpe and tiktoken): identical merges when trained on the same documents, and
// identical token ids when encoding with the same ranks.
#include <doctest/doctest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nanochat/tokenizer/bpe_trainer.hpp"
#include "nanochat/tokenizer/tokenizer.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"

namespace tk = nanochat::tokenizer;

namespace {

const std::string kDir = std::string(NANOCHAT_FIXTURES) + "/tokenizer/";

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "missing fixture ", path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> corpus() {
  const std::string text = read(kDir + "corpus.txt");
  std::vector<std::string> docs;
  std::size_t pos = 0;
  while (true) {
    const std::size_t end = text.find('\x1e', pos);
    docs.push_back(text.substr(pos, end == std::string::npos ? std::string::npos : end - pos));
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return docs;
}

std::vector<std::vector<tk::TokenId>> id_lines(const std::string& path) {
  std::vector<std::vector<tk::TokenId>> rows;
  std::istringstream in(read(path));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    rows.emplace_back();
    for (std::uint32_t id = 0; ls >> id;) rows.back().push_back(id);
  }
  return rows;
}

std::vector<std::string> specials() { return {tk::kSpecialTokens.begin(), tk::kSpecialTokens.end()}; }

}  // namespace

TEST_CASE("tokenizer/parity: training reproduces rustbpe's merges") {
  const auto docs = corpus();
  REQUIRE(docs.size() > 100);
  for (std::size_t vocab : {300u, 2048u}) {
    CAPTURE(vocab);
    const auto expected = tk::parse_ranks(read(kDir + "ranks_" + std::to_string(vocab) + ".tiktoken"), "fixture");
    tk::BpeTrainer trainer(2);
    trainer.add_documents(docs);
    const auto tokens = trainer.train(vocab);
    REQUIRE(tokens.size() == expected.size());
    for (std::size_t r = 0; r < tokens.size(); ++r) {
      if (tokens[r] != expected[r]) FAIL("rank ", r, " differs from rustbpe's");
    }
  }
}

TEST_CASE("tokenizer/parity: encoding reproduces tiktoken's ids") {
  const auto docs = corpus();
  for (std::size_t vocab : {300u, 2048u}) {
    CAPTURE(vocab);
    const std::string v = std::to_string(vocab);
    tk::Tokenizer tok(tk::parse_ranks(read(kDir + "ranks_" + v + ".tiktoken"), "fixture"), specials());
    const auto expected = id_lines(kDir + "ids_" + v + ".txt");
    REQUIRE(expected.size() == docs.size());
    for (std::size_t d = 0; d < docs.size(); ++d) {
      if (tok.encode(docs[d]) != expected[d]) FAIL("document ", d, " encodes differently");
    }
    const auto batch = tok.encode_batch(docs, {.prepend = {}, .append = {}, .threads = 2});
    CHECK(batch == expected);
    const std::vector<std::string> special_texts = {
        "<|bos|>", "Hello <|assistant_end|> world", "<|user_start|><|user_end|>",
        " <|python_start|>print(1)<|python_end|>", "<|output_start|>2<|output_end|>\n"};
    CHECK(tok.encode_batch(special_texts) == id_lines(kDir + "specials_" + v + ".txt"));
  }
}

TEST_CASE("tokenizer/parity: a nanochat tokenizer.pkl converted by examples/convert loads and encodes like tiktoken") {
  const tk::Tokenizer tok = tk::load_tokenizer(kDir + "converted_2048");
  CHECK(tok.vocab_size() == 2048 + 9);
  CHECK(tok.special_tokens() == specials());
  const auto docs = corpus();
  const auto expected = id_lines(kDir + "ids_2048.txt");
  CHECK(tok.encode_batch(docs) == expected);
  const std::string raw = read(kDir + "converted_2048/token_bytes.bin");
  std::vector<std::int32_t> from_python(raw.size() / 4);
  for (std::size_t i = 0; i < from_python.size(); ++i) {
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 4; ++k) v |= std::uint32_t{static_cast<unsigned char>(raw[4 * i + k])} << (8 * k);
    from_python[i] = static_cast<std::int32_t>(v);
  }
  CHECK(from_python == tok.token_bytes());
}
