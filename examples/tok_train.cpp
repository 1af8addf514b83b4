// Trains nanochat's tokenizer (nanochat's scripts/tok_train.py): byte-level BPE over the training
// documents of a corpus, then the 9 special tokens; writes tokenizer.tiktoken, tokenizer.json
// and token_bytes.bin (int32 per id: raw bytes of the token, 0 for specials).
//
//   tok_train [--max-chars N] [--doc-cap N] [--vocab-size N] [--out DIR] [--threads N]
//             [--text-split paragraph|line|file] [--jsonl-field NAME] INPUT...   (--help lists them)
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
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/atomic_file.hpp"
#include "nanochat/core/error.hpp"
#include "nanochat/core/flags.hpp"
#include "nanochat/train/report_section.hpp"
#include "nanochat/core/limits.hpp"
#include "nanochat/core/utf8.hpp"
#include "nanochat/data/document_source.hpp"
#include "nanochat/data/paths.hpp"
#include "nanochat/tokenizer/bpe_trainer.hpp"
#include "nanochat/tokenizer/tokenizer.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"

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
  std::map<std::string, std::string> flags;  // for the report card
};

// Flags and inputs as nanochat's tok_train takes them (--max_chars and --max-chars alike, 2e9 style
// counts); a bad value is an error naming its flag.
std::optional<Args> parse_args(int argc, char** argv) {
  Args args;
  std::string out, text_split = "paragraph";
  std::vector<std::string> inputs;
  nanochat::Flags flags("tok_train", "train nanochat's BPE tokenizer on a corpus");
  using nanochat::max_count;
  flags.add("--max-chars", args.max_chars, "stop after the document that takes the character count past this",
            {1, static_cast<std::uint64_t>(max_count)})
      .add("--doc-cap", args.doc_cap, "characters kept from the start of each document",
           {1, static_cast<std::size_t>(max_count)})
      .add("--vocab-size", args.vocab_size, "tokens including the 9 special tokens",
           {256 + tk::kSpecialTokens.size(), static_cast<std::size_t>(nanochat::max_vocab_size)})
      .add("--out", out, "output directory (default $NANOCHAT_BASE_DIR/tokenizer)")
      .add("--threads", args.threads, "threads for reading and counting (0: all)",
           {0, static_cast<int>(nanochat::max_threads)})
      .add("--text-split", text_split, "documents of .txt inputs: paragraph, line or file")
      .add("--jsonl-field", args.corpus.jsonl_field, "field holding the text in .jsonl inputs")
      .positional("INPUT...", inputs, ".parquet, .jsonl or .txt files, or directories of shards (their last, "
                                      "validation shard is skipped)");
  if (!flags.parse(argc, argv)) return std::nullopt;
  using nanochat::data::TextSplit;
  NANOCHAT_CHECK(text_split == "paragraph" || text_split == "line" || text_split == "file",
                 "flag --text-split: '", text_split, "' is not paragraph, line or file");
  args.corpus.text_split = text_split == "line" ? TextSplit::line : text_split == "file" ? TextSplit::file
                                                                                          : TextSplit::paragraph;
  args.inputs.assign(inputs.begin(), inputs.end());
  NANOCHAT_CHECK(!args.inputs.empty(), "no input files or directories given (see --help)");
  args.out = out.empty() ? nanochat::data::base_dir() / "tokenizer" : fs::path(out);
  args.flags = flags.values();
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
  nanochat::report::StageReport section("Tokenizer training", args.flags);
  tk::BpeTrainer trainer(args.threads);
  nanochat::data::DocumentIterator docs(training_shards(args.inputs), args.corpus);
  nanochat::data::DocumentGroup group;
  std::vector<std::string> batch;
  std::uint64_t total_chars = 0, num_docs = 0;
  bool done = false;
  while (!done && docs.next(group)) {
    for (std::string& doc : group.documents) {
      total_chars += nanochat::crop_to_chars(doc, args.doc_cap);
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
  // A smaller vocabulary than asked for would not fit the model it was asked for: an error, and
  // nothing is written.
  const std::size_t reachable = tokens.size() + tk::kSpecialTokens.size();
  NANOCHAT_CHECK(reachable == args.vocab_size, "tok_train: --vocab-size ", args.vocab_size,
                 " cannot be reached: the corpus has pairs for only ", tokens.size() - 256, " merges, a vocabulary of ",
                 reachable, " tokens with the specials; give more text (--max-chars, more inputs) or --vocab-size ",
                 reachable, " or less");
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
  nanochat::write_file_atomically(args.out / "token_bytes.bin",
                                  std::string_view(reinterpret_cast<const char*>(token_bytes.data()),
                                                   token_bytes.size() * sizeof(std::int32_t)));
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
  const double std_dev = std::sqrt(std::max(0.0, sum_sq / n - mean * mean));
  std::printf("token_bytes min %d max %d mean %.4f std %.4f\n", lo, hi, mean, std_dev);
  section.add("train_time", train_time).add("num_special_tokens", tok.special_tokens().size()).add("token_bytes_min", lo)
      .add("token_bytes_max", hi).add("token_bytes_mean", mean).add("token_bytes_std", std_dev).write();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const auto args = parse_args(argc, argv);
    return args ? run(*args) : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tok_train: %s\n", e.what());
    return 1;
  }
}
