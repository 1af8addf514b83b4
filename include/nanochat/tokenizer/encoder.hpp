#pragma once
// Byte-level BPE encoding with tiktoken's semantics: a piece that is itself a token becomes that
// token; otherwise start from single bytes and keep merging the adjacent pair whose concatenation
// is the lowest-ranked token (leftmost on ties) until no adjacent concatenation is a token.
// Since every part is a token, "concatenation is a token" is looked up as a pair of ranks in a
// table holding every split of every token into two tokens.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <queue>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/tokenizer/flat_hash.hpp"

namespace nanochat::tokenizer {

using TokenId = std::uint32_t;

class BpeEncoder {
 public:
  // Real vocabularies stay far below this (their longest tokens are runs of whitespace or
  // punctuation, tens of bytes); finding each token's pairs costs the square of its length, so a
  // vocabulary file with one enormous token would otherwise take minutes to load.
  static constexpr std::size_t max_token_bytes = 1024;

  BpeEncoder() = default;
  // The lookup table points into tokens_, so copies would dangle; moves keep the strings in place.
  BpeEncoder(const BpeEncoder&) = delete;
  BpeEncoder& operator=(const BpeEncoder&) = delete;
  BpeEncoder(BpeEncoder&&) = default;
  BpeEncoder& operator=(BpeEncoder&&) = default;

  // tokens[r] is the byte string of rank r. All 256 single bytes must be tokens (byte-level BPE
  // can then encode anything) and no byte string may appear twice.
  explicit BpeEncoder(std::vector<std::string> tokens) : tokens_(std::move(tokens)) {
    NANOCHAT_CHECK(tokens_.size() < (std::size_t{1} << 31), "BPE vocabulary: ", tokens_.size(),
                   " tokens is too many");
    whole_.reset(tokens_.size());
    byte_rank_.fill(kNone);
    for (std::size_t r = 0; r < tokens_.size(); ++r) {
      const std::string& t = tokens_[r];
      NANOCHAT_CHECK(!t.empty(), "BPE vocabulary: token ", r, " is empty");
      NANOCHAT_CHECK(t.size() <= max_token_bytes, "BPE vocabulary: token ", r, " is ", t.size(),
                     " bytes long, more than the ", max_token_bytes, " a token may have");
      NANOCHAT_CHECK(whole_.insert(t, static_cast<TokenId>(r)), "BPE vocabulary: token ", r,
                     " repeats the bytes of token ", whole_.find(t));
      if (t.size() == 1) byte_rank_[static_cast<unsigned char>(t[0])] = static_cast<TokenId>(r);
    }
    for (std::size_t b = 0; b < 256; ++b) {
      NANOCHAT_CHECK(byte_rank_[b] != kNone, "BPE vocabulary: byte ", b, " has no token");
    }
    std::size_t splits = 0;
    for (const std::string& t : tokens_) splits += t.size() - 1;
    pairs_.reserve(splits);
    for (std::size_t r = 0; r < tokens_.size(); ++r) {
      const std::string_view t = tokens_[r];
      for (std::size_t cut = 1; cut < t.size(); ++cut) {
        const TokenId left = whole_.find(t.substr(0, cut));
        const TokenId right = whole_.find(t.substr(cut));
        if (left != kNone && right != kNone) pairs_[pair_key(left, right)] = static_cast<TokenId>(r);
      }
    }
  }

  std::size_t size() const { return tokens_.size(); }
  const std::string& token(TokenId id) const { return tokens_[id]; }
  const std::vector<std::string>& tokens() const { return tokens_; }
  // Rank of an exact byte string, or kNone.
  TokenId find(std::string_view bytes) const { return whole_.find(bytes); }

  // Appends the tokens of one pre-tokenized piece to out.
  void encode_piece(std::string_view piece, std::vector<TokenId>& out) const {
    if (piece.empty()) return;
    if (const TokenId whole = whole_.find(piece); whole != kNone) {
      out.push_back(whole);
      return;
    }
    if (piece.size() <= kQuadraticMax) {
      merge_small(piece, out);
    } else {
      merge_large(piece, out);
    }
  }

  // The two merge loops are exposed so tests can check they agree on long pieces.
  void merge_small(std::string_view piece, std::vector<TokenId>& out) const {
    TokenId sym[kQuadraticMax];
    TokenId rank[kQuadraticMax];  // rank[i]: token of sym[i] ++ sym[i+1], or kNone
    std::size_t n = piece.size();
    for (std::size_t i = 0; i < n; ++i) sym[i] = byte_rank_[static_cast<unsigned char>(piece[i])];
    for (std::size_t i = 0; i + 1 < n; ++i) rank[i] = merged(sym[i], sym[i + 1]);
    while (n > 1) {
      std::size_t best = 0;
      TokenId best_rank = kNone;
      for (std::size_t i = 0; i + 1 < n; ++i) {
        if (rank[i] < best_rank) best_rank = rank[i], best = i;
      }
      if (best_rank == kNone) break;
      sym[best] = best_rank;
      for (std::size_t i = best + 1; i + 1 < n; ++i) sym[i] = sym[i + 1];
      for (std::size_t i = best + 1; i + 2 < n; ++i) rank[i] = rank[i + 1];
      --n;
      if (best + 1 < n) rank[best] = merged(sym[best], sym[best + 1]);
      if (best > 0) rank[best - 1] = merged(sym[best - 1], sym[best]);
    }
    out.insert(out.end(), sym, sym + n);
  }

  // O(n log n): a linked list of parts and a min-heap of (rank, left position) candidates,
  // re-validated when popped, so pathological pieces (a 100 MB run of letters) stay fast.
  void merge_large(std::string_view piece, std::vector<TokenId>& out) const {
    const std::size_t n = piece.size();
    NANOCHAT_CHECK(n < 0xFFFFFFFFu, "BPE encode: a piece of ", n, " bytes is too long");
    std::vector<TokenId> sym(n);
    std::vector<std::uint32_t> next(n), prev(n);
    std::vector<bool> alive(n, true);
    for (std::size_t i = 0; i < n; ++i) {
      sym[i] = byte_rank_[static_cast<unsigned char>(piece[i])];
      next[i] = static_cast<std::uint32_t>(i + 1);
      prev[i] = static_cast<std::uint32_t>(i - 1);  // wraps for i == 0; never read there
    }
    using Candidate = std::pair<TokenId, std::uint32_t>;  // (merged rank, left part position)
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
    const auto offer = [&](std::uint32_t left) {
      if (left >= n || next[left] >= n) return;
      const TokenId r = merged(sym[left], sym[next[left]]);
      if (r != kNone) heap.emplace(r, left);
    };
    for (std::uint32_t i = 0; i + 1 < n; ++i) offer(i);
    while (!heap.empty()) {
      const auto [r, left] = heap.top();
      heap.pop();
      if (!alive[left] || next[left] >= n) continue;
      const std::uint32_t right = next[left];
      if (merged(sym[left], sym[right]) != r) continue;  // a part changed since this was offered
      sym[left] = r;
      alive[right] = false;
      next[left] = next[right];
      if (next[left] < n) prev[next[left]] = left;
      offer(left);
      if (left > 0) offer(prev[left]);
    }
    for (std::size_t i = 0; i < n; i = next[i]) out.push_back(sym[i]);
  }

  static constexpr TokenId kNone = 0xFFFFFFFFu;
  static constexpr std::size_t kQuadraticMax = 128;

 private:
  static std::uint64_t pair_key(TokenId a, TokenId b) { return (std::uint64_t{a} << 32) | b; }
  TokenId merged(TokenId a, TokenId b) const {
    const TokenId* r = pairs_.find(pair_key(a, b));
    return r != nullptr ? *r : kNone;
  }

  std::vector<std::string> tokens_;
  BytesMap whole_;
  U64Map<TokenId> pairs_;
  std::array<TokenId, 256> byte_rank_{};
};

}  // namespace nanochat::tokenizer
