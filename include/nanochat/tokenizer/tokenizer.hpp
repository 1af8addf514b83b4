#pragma once
// The tokenizer nanochat uses: the split pattern, a BPE rank table and special tokens appended
// after it. Ordinary encoding never produces special tokens, whatever the text says (a user
// typing "<|assistant_end|>" must not end a turn); specials enter only through encode_special
// and the explicit prepend/append of encode_batch.

#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/utf8.hpp"
#include "nanochat/tokenizer/encoder.hpp"
#include "nanochat/tokenizer/parallel.hpp"
#include "nanochat/tokenizer/pretokenizer.hpp"

namespace nanochat::tokenizer {

// nanochat's special tokens; their order defines their ids (number of ranks + index).
inline constexpr std::array<std::string_view, 9> kSpecialTokens = {
    "<|bos|>",
    "<|user_start|>",
    "<|user_end|>",
    "<|assistant_start|>",
    "<|assistant_end|>",
    "<|python_start|>",
    "<|python_end|>",
    "<|output_start|>",
    "<|output_end|>",
};

struct BatchOptions {
  std::vector<TokenId> prepend;  // ids put at the start of every row
  std::vector<TokenId> append;   // ids put at the end of every row
  int threads = 0;               // 0: all OpenMP threads
};

class Tokenizer {
 public:
  Tokenizer() = default;

  // tokens[r]: bytes of rank r; specials get ids size(tokens), size(tokens)+1, ... in order.
  Tokenizer(std::vector<std::string> tokens, std::vector<std::string> specials)
      : encoder_(std::move(tokens)), specials_(std::move(specials)) {
    for (std::size_t i = 0; i < specials_.size(); ++i) {
      NANOCHAT_CHECK(!specials_[i].empty(), "tokenizer: special token ", i, " is empty");
      for (std::size_t j = 0; j < i; ++j) {
        NANOCHAT_CHECK(specials_[i] != specials_[j], "tokenizer: special token ", specials_[i],
                       " appears twice");
      }
    }
  }

  // Ordinary encoding (tiktoken's encode_ordinary): split, then BPE each piece.
  std::vector<TokenId> encode(std::string_view text) const {
    std::vector<TokenId> ids;
    encode_into(text, ids);
    return ids;
  }

  void encode_into(std::string_view text, std::vector<TokenId>& ids) const {
    ids.reserve(ids.size() + text.size() / 3);
    split_text(text, [&](std::string_view piece) { encoder_.encode_piece(piece, ids); });
  }

  // Encodes every text on several threads; row i belongs to texts[i].
  template <class Texts>
  std::vector<std::vector<TokenId>> encode_batch(const Texts& texts, const BatchOptions& options = {}) const {
    const auto n = static_cast<std::ptrdiff_t>(std::size(texts));
    std::vector<std::vector<TokenId>> rows(static_cast<std::size_t>(n));
    const int threads = options.threads > 0 ? options.threads : max_threads();
#pragma omp parallel for num_threads(threads) schedule(dynamic, 16)
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      auto& row = rows[static_cast<std::size_t>(i)];
      row = options.prepend;
      encode_into(std::string_view(std::data(texts)[i]), row);
      row.insert(row.end(), options.append.begin(), options.append.end());
    }
    return rows;
  }

  // Raw bytes of the ids; a special id gives its literal text. Throws on an id out of range.
  std::string decode_bytes(std::span<const TokenId> ids) const {
    std::string out;
    for (TokenId id : ids) out += token_bytes_of(id);
    return out;
  }

  // Display string: the bytes with invalid UTF-8 replaced by U+FFFD (Python's errors="replace").
  std::string decode(std::span<const TokenId> ids) const { return to_valid_utf8(decode_bytes(ids)); }

  std::string id_to_token(TokenId id) const { return decode(std::span<const TokenId>(&id, 1)); }

  TokenId encode_special(std::string_view name) const {
    for (std::size_t i = 0; i < specials_.size(); ++i) {
      if (specials_[i] == name) return static_cast<TokenId>(encoder_.size() + i);
    }
    NANOCHAT_FAIL("tokenizer: no special token named ", name);
  }

  bool is_special(TokenId id) const { return id >= encoder_.size() && id < vocab_size(); }
  TokenId bos_id() const { return encode_special("<|bos|>"); }
  std::size_t vocab_size() const { return encoder_.size() + specials_.size(); }
  std::size_t num_ranks() const { return encoder_.size(); }
  const std::vector<std::string>& special_tokens() const { return specials_; }
  const BpeEncoder& encoder() const { return encoder_; }

  // Bytes per token for bits per byte: the raw length of each token, 0 for specials.
  std::vector<std::int32_t> token_bytes() const {
    std::vector<std::int32_t> out(vocab_size(), 0);
    for (std::size_t r = 0; r < encoder_.size(); ++r) {
      out[r] = static_cast<std::int32_t>(encoder_.token(static_cast<TokenId>(r)).size());
    }
    return out;
  }

 private:
  std::string_view token_bytes_of(TokenId id) const {
    if (id < encoder_.size()) return encoder_.token(id);
    NANOCHAT_CHECK(id < vocab_size(), "tokenizer: id ", id, " is outside the vocabulary of ",
                   vocab_size());
    return specials_[id - encoder_.size()];
  }

  BpeEncoder encoder_;
  std::vector<std::string> specials_;
};

}  // namespace nanochat::tokenizer
