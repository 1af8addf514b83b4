// Trains nanochat's tokenizer (nanochat's scripts/tok_train.py): byte-level BPE over the training
// documents of a corpus, then the 9 special tokens; writes tokenizer.tiktoken, tokenizer.json
// and token_bytes.bin (int32 per id: raw bytes of the token, 0 for specials).
//
//   tok_train [--max-chars N] [--doc-cap N] [--vocab-size N] [--out DIR] [--threads N]
//             [--text-split paragraph|line|file] [--jsonl-field NAME] INPUT...
// INPUT: .parquet, .jsonl or .txt files, or directories of them (a directory's last shard is
// validation and is skipped, as in nanochat). Defaults as nanochat: 10e9 chars, documents
// cropped to 10000 characters, vocab 65536 (specials included), out $NANOCHAT_BASE_DIR/tokenizer.

#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/data/document_source.hpp"
#include "nanochat/tokenizer/bpe_trainer.hpp"
#include "nanochat/tokenizer/tokenizer.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"
#include "nanochat/tokenizer/utf8.hpp"

namespace fs = std::filesystem;
namespace tk = nanochat::tokenizer;

namespace {

struct Args {
  std::uint64_t max_chars = 10'000'000'000ULL;
  std::size_t doc_cap = 10'000;
  std::size_t vocab_size = 65'536;
  fs::path out;
  int threads = 0;
  nanochat::data::CorpusOptions corpus;
  std::vector<fs::path> inputs;
};

void usage() {
  std::fprintf(stderr,
               "usage: tok_train [--max-chars N] [--doc-cap N] [--vocab-size N] [--out DIR] [--threads N]\n"
               "                 [--text-split paragraph|line|file] [--jsonl-field NAME] INPUT...\n");
}

fs::path default_out() {
  if (const char* base = std::getenv("NANOCHAT_BASE_DIR"); base != nullptr && *base != '\0') {
    return fs::path(base) / "tokenizer";
  }
  const char* home = std::getenv("HOME");
  NANOCHAT_CHECK(home != nullptr, "tok_train: neither NANOCHAT_BASE_DIR nor HOME is set; pass --out");
  return fs::path(home) / ".cache" / "nanochat" / "tokenizer";
}

std::uint64_t parse_count(std::string_view flag, const std::string& text) {
  // Accepts "2e9" as nanochat's command lines write it.
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  NANOCHAT_CHECK(end != text.c_str() && *end == '\0' && v >= 0 && v < 1e19 && v == std::floor(v),
                 "tok_train: ", flag, " needs a non-negative integer, got \"", text, "\"");
  return static_cast<std::uint64_t>(v);
}

Args parse_args(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag.rfind("--", 0) != 0) {
      args.inputs.emplace_back(flag);
      continue;
    }
    for (char& c : flag) c = c == '_' ? '-' : c;  // --max_chars as in nanochat, or --max-chars
    std::string value;
    if (const auto eq = flag.find('='); eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else {
      NANOCHAT_CHECK(i + 1 < argc, "tok_train: ", flag, " needs a value");
      value = argv[++i];
    }
    if (flag == "--max-chars") {
      args.max_chars = parse_count(flag, value);
    } else if (flag == "--doc-cap") {
      args.doc_cap = parse_count(flag, value);
    } else if (flag == "--vocab-size") {
      args.vocab_size = parse_count(flag, value);
    } else if (flag == "--out") {
      args.out = value;
    } else if (flag == "--threads") {
      args.threads = static_cast<int>(parse_count(flag, value));
    } else if (flag == "--jsonl-field") {
      args.corpus.jsonl_field = value;
    } else if (flag == "--text-split") {
      using nanochat::data::TextSplit;
      NANOCHAT_CHECK(value == "paragraph" || value == "line" || value == "file",
                     "tok_train: --text-split must be paragraph, line or file");
      args.corpus.text_split = value == "line" ? TextSplit::line : value == "file" ? TextSplit::file : TextSplit::paragraph;
    } else {
      NANOCHAT_FAIL("tok_train: unknown flag ", flag);
    }
  }
  NANOCHAT_CHECK(!args.inputs.empty(), "tok_train: no input files or directories given");
  NANOCHAT_CHECK(args.vocab_size >= 256 + tk::kSpecialTokens.size(), "tok_train: --vocab-size ",
                 args.vocab_size, " is below 256 byte tokens + ", tk::kSpecialTokens.size(), " special tokens");
  if (args.out.empty()) args.out = default_out();
  return args;
}

std::vector<fs::path> training_shards(const std::vector<fs::path>& inputs) {
  std::vector<fs::path> shards;
  for (const fs::path& input : inputs) {
    if (fs::is_directory(input)) {
      const auto all = nanochat::data::list_shards(input);
      NANOCHAT_CHECK(!all.empty(), "tok_train: ", input.string(), " holds no .parquet, .jsonl or .txt shards");
      const auto train = all.size() >= 2 ? nanochat::data::split_shards(all, nanochat::data::Split::train) : all;
      shards.insert(shards.end(), train.begin(), train.end());
    } else {
      NANOCHAT_CHECK(fs::is_regular_file(input), "tok_train: ", input.string(), " is not a file or directory");
      shards.push_back(input);
    }
  }
  return shards;
}

int run(const Args& args) {
  const auto start = std::chrono::steady_clock::now();
  tk::BpeTrainer trainer(args.threads);
  nanochat::data::DocumentIterator docs(training_shards(args.inputs), args.corpus);
  nanochat::data::DocumentGroup group;
  std::vector<std::string> batch;
  std::uint64_t total_chars = 0, num_docs = 0;
  bool done = false;
  while (!done && docs.next(group)) {
    for (std::string& doc : group.documents) {
      total_chars += tk::crop_to_chars(doc, args.doc_cap);
      ++num_docs;
      batch.push_back(std::move(doc));
      if (total_chars > args.max_chars) {  // nanochat stops right after the doc that crosses it
        done = true;
        break;
      }
    }
    if (batch.size() >= 8192 || done) {
      trainer.add_documents(batch);
      batch.clear();
    }
  }
  trainer.add_documents(batch);
  NANOCHAT_CHECK(num_docs > 0, "tok_train: the inputs hold no documents");
  const auto counted = std::chrono::steady_clock::now();
  std::printf("read %llu documents, %llu characters, %zu distinct pieces in %.2f s\n",
              static_cast<unsigned long long>(num_docs), static_cast<unsigned long long>(total_chars),
              trainer.num_pieces(), std::chrono::duration<double>(counted - start).count());

  std::vector<std::string> tokens = trainer.train(args.vocab_size - tk::kSpecialTokens.size());
  const auto trained = std::chrono::steady_clock::now();
  const double train_time = std::chrono::duration<double>(trained - start).count();
  std::printf("learned %zu merges in %.2f s (total train_time %.2f s)\n", tokens.size() - 256,
              std::chrono::duration<double>(trained - counted).count(), train_time);

  const tk::Tokenizer tok(std::move(tokens), {tk::kSpecialTokens.begin(), tk::kSpecialTokens.end()});
  tk::save_tokenizer(tok, args.out);

  const std::string sanity = "Hello world! This is a test.\nNumbers: 123, 4567, 89\n"
                             "Contractions: I'm, you're, it's\nSpecial chars: @#$%^&*()\n"
                             "Unicode: 你好世界 🌍 안녕하세요 Привет";
  NANOCHAT_CHECK(tk::load_tokenizer(args.out).decode(tok.encode(sanity)) == sanity,
                 "tok_train: the saved tokenizer does not round-trip the sanity text");

  const std::vector<std::int32_t> token_bytes = tok.token_bytes();
  {
    const fs::path path = args.out / "token_bytes.bin";
    const fs::path tmp = path.string() + ".tmp";
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(token_bytes.data()),
              static_cast<std::streamsize>(token_bytes.size() * sizeof(std::int32_t)));
    out.close();
    NANOCHAT_CHECK(out.good(), "tok_train: error writing ", tmp.string());
    fs::rename(tmp, path);
  }
  double sum = 0, sum_sq = 0, n = 0;
  std::int32_t lo = 0, hi = 0;
  for (std::int32_t b : token_bytes) {
    if (b == 0) continue;
    lo = n == 0 ? b : std::min(lo, b);
    hi = std::max(hi, b);
    sum += b, sum_sq += double(b) * b, n += 1;
  }
  const double mean = sum / n;
  std::printf("vocab_size %zu (%zu ranks + %zu special tokens) saved to %s\n", tok.vocab_size(), tok.num_ranks(),
              tok.special_tokens().size(), args.out.string().c_str());
  std::printf("token_bytes min %d max %d mean %.4f std %.4f\n", lo, hi, mean,
              std::sqrt(std::max(0.0, sum_sq / n - mean * mean)));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    usage();
    return 1;
  }
}
