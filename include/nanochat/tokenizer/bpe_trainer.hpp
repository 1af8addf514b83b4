#pragma once
// Byte-level BPE training with rustbpe's result: pieces from the split pattern are counted, then
// the most frequent adjacent pair is merged repeatedly, ties going to the smaller (left, right)
// id pair. Pair counts are updated incrementally from the words that hold the merged pair, and a
// lazy max-heap finds the next pair (stored counts only over-estimate, since a pair that exists
// can only lose occurrences; new pairs all contain the newest id and are pushed when created).

#include <cstddef>
#include <cstdint>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/tokenizer/encoder.hpp"
#include "nanochat/tokenizer/parallel.hpp"
#include "nanochat/tokenizer/flat_hash.hpp"
#include "nanochat/tokenizer/pretokenizer.hpp"

namespace nanochat::tokenizer {

struct Merge {
  TokenId left;
  TokenId right;
};

class BpeTrainer {
 public:
  explicit BpeTrainer(int threads = 0) : threads_(threads > 0 ? threads : max_threads()) {
    counts_.resize(static_cast<std::size_t>(threads_));
  }

  // Splits and counts the pieces of a batch of documents on all threads; call repeatedly.
  void add_documents(std::span<const std::string> docs) {
    const auto n = static_cast<std::ptrdiff_t>(docs.size());
#pragma omp parallel num_threads(threads_)
    {
      BytesCounter& counts = counts_[static_cast<std::size_t>(thread_index())];
#pragma omp for schedule(dynamic, 8)
      for (std::ptrdiff_t i = 0; i < n; ++i) {
        split_text(docs[static_cast<std::size_t>(i)], [&](std::string_view piece) { counts.add(piece, 1); });
      }
    }
  }

  // Learns vocab_size - 256 merges (fewer if the corpus runs out of pairs) and returns the
  // token bytes by rank: the 256 bytes, then one token per merge. Consumes the counted pieces.
  std::vector<std::string> train(std::size_t vocab_size) {
    NANOCHAT_CHECK(vocab_size >= 256, "BPE training: vocab size ", vocab_size,
                   " is below the 256 byte tokens");
    NANOCHAT_CHECK(vocab_size < (std::size_t{1} << 31), "BPE training: vocab size ", vocab_size,
                   " is too large");
    build_words();
    count_pairs();
    merges_.clear();
    const std::size_t num_merges = vocab_size - 256;
    while (merges_.size() < num_merges && !heap_.empty()) {
      const auto [stored, key] = heap_.top();
      heap_.pop();
      PairInfo* info = pairs_.find(key);
      if (info->count != stored) {  // stale: re-queue with the current count
        if (info->count > 0) heap_.emplace(info->count, key);
        continue;
      }
      if (stored <= 0) break;
      merge(key, static_cast<TokenId>(256 + merges_.size()));
    }
    std::vector<std::string> tokens(256);
    for (std::size_t b = 0; b < 256; ++b) tokens[b] = std::string(1, static_cast<char>(b));
    for (const Merge& m : merges_) tokens.push_back(tokens[m.left] + tokens[m.right]);
    return tokens;
  }

  const std::vector<Merge>& merges() const { return merges_; }
  // Distinct pieces seen so far (before train()).
  std::size_t num_pieces() const {
    std::size_t n = 0;
    for (const BytesCounter& c : counts_) n += c.size();
    return n;
  }

 private:

  struct PairInfo {
    std::int64_t count = 0;
    std::vector<std::uint32_t> words;  // words that may hold the pair (complete when created)
  };
  // Max-heap order: higher count first, then the smaller pair key, i.e. smaller (left, right).
  struct HeapOrder {
    bool operator()(const std::pair<std::int64_t, std::uint64_t>& a,
                    const std::pair<std::int64_t, std::uint64_t>& b) const {
      return a.first != b.first ? a.first < b.first : a.second > b.second;
    }
  };

  static std::uint64_t key_of(TokenId a, TokenId b) { return (std::uint64_t{a} << 32) | b; }

  void build_words() {
    BytesCounter all = std::move(counts_[0]);
    for (std::size_t t = 1; t < counts_.size(); ++t) {
      counts_[t].for_each([&](std::string_view piece, std::int64_t count) { all.add(piece, count); });
      counts_[t] = BytesCounter();
    }
    counts_[0] = BytesCounter();
    symbols_.clear();
    word_begin_.clear();
    word_len_.clear();
    word_count_.clear();
    all.for_each([&](std::string_view piece, std::int64_t count) {
      if (piece.size() < 2) return;  // a single byte holds no pair
      NANOCHAT_CHECK(symbols_.size() + piece.size() < 0xFFFFFFFFull,
                     "BPE training: more than 4 GiB of distinct pieces");
      word_begin_.push_back(static_cast<std::uint32_t>(symbols_.size()));
      word_len_.push_back(static_cast<std::uint32_t>(piece.size()));
      word_count_.push_back(count);
      for (char c : piece) symbols_.push_back(static_cast<unsigned char>(c));
    });
  }

  void count_pairs() {
    pairs_ = U64Map<PairInfo>();
    for (std::uint32_t w = 0; w < word_begin_.size(); ++w) {
      const TokenId* s = &symbols_[word_begin_[w]];
      for (std::uint32_t i = 0; i + 1 < word_len_[w]; ++i) {
        PairInfo& info = pairs_[key_of(s[i], s[i + 1])];
        info.count += word_count_[w];
        if (info.words.empty() || info.words.back() != w) info.words.push_back(w);
      }
    }
    heap_ = decltype(heap_)();
    pairs_.for_each([&](std::uint64_t key, PairInfo& info) { heap_.emplace(info.count, key); });
  }

  // Replaces (a, b) by id in every word holding it and updates the pair counts.
  void merge(std::uint64_t key, TokenId id) {
    const auto a = static_cast<TokenId>(key >> 32);
    const auto b = static_cast<TokenId>(key & 0xFFFFFFFFu);
    merges_.push_back({a, b});
    const std::vector<std::uint32_t> words = std::move(pairs_.find(key)->words);
    pairs_.find(key)->words = {};
    created_.clear();
    const auto add = [&](TokenId x, TokenId y, std::int64_t delta, std::uint32_t w) {
      PairInfo& info = pairs_[key_of(x, y)];
      info.count += delta;
      if (delta > 0) {
        if (info.words.empty()) created_.push_back(key_of(x, y));
        if (info.words.empty() || info.words.back() != w) info.words.push_back(w);
      }
    };
    for (std::uint32_t w : words) {
      TokenId* s = &symbols_[word_begin_[w]];
      const std::uint32_t len = word_len_[w];
      const std::int64_t c = word_count_[w];
      std::uint32_t out = 0;
      for (std::uint32_t i = 0; i < len;) {
        if (i + 1 < len && s[i] == a && s[i + 1] == b) {
          if (out > 0) {
            add(s[out - 1], a, -c, w);
            add(s[out - 1], id, c, w);
          }
          add(a, b, -c, w);
          if (i + 2 < len) {
            add(b, s[i + 2], -c, w);
            add(id, s[i + 2], c, w);
          }
          s[out++] = id;
          i += 2;
        } else {
          s[out++] = s[i++];
        }
      }
      word_len_[w] = out;
    }
    for (std::uint64_t k : created_) heap_.emplace(pairs_.find(k)->count, k);
  }

  int threads_;
  std::vector<BytesCounter> counts_;  // one per thread while ingesting
  std::vector<TokenId> symbols_;     // all words, back to back
  std::vector<std::uint32_t> word_begin_;
  std::vector<std::uint32_t> word_len_;
  std::vector<std::int64_t> word_count_;
  U64Map<PairInfo> pairs_;
  std::priority_queue<std::pair<std::int64_t, std::uint64_t>,
                      std::vector<std::pair<std::int64_t, std::uint64_t>>, HeapOrder>
      heap_;
  std::vector<std::uint64_t> created_;
  std::vector<Merge> merges_;
};

}  // namespace nanochat::tokenizer
