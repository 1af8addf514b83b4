// libFuzzer entry for the tokenizer, under AddressSanitizer and UBSan. The first byte picks the
// target; the rest is the input:
//   0: split_text tiles the bytes; encode then decode_bytes gives the bytes back; the heap merge
//      agrees with the quadratic one on every piece the quadratic loop accepts
//   1: parse_ranks on a ranks file either loads or raises nanochat::Error
//   2: a conversation JSON either renders or raises nanochat::Error
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/tokenizer/chat_template.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"

namespace tk = nanochat::tokenizer;

namespace {

const tk::Tokenizer& tokenizer() {
  static const tk::Tokenizer tok = [] {
    std::ifstream in(std::string(NANOCHAT_FIXTURES) + "/tokenizer/ranks_2048.tiktoken", std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return tk::Tokenizer(tk::parse_ranks(s.str(), "ranks_2048.tiktoken"),
                         {tk::kSpecialTokens.begin(), tk::kSpecialTokens.end()});
  }();
  return tok;
}

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const tk::Tokenizer& tok = tokenizer();
  switch (data[0] % 3) {
    case 0: {
      std::size_t pos = 0;
      tk::split_text(input, [&](std::string_view piece) {
        check(!piece.empty() && piece.data() == input.data() + pos);
        pos += piece.size();
        if (piece.size() <= tk::BpeEncoder::kQuadraticMax) {
          std::vector<tk::TokenId> small, large;
          tok.encoder().merge_small(piece, small);
          tok.encoder().merge_large(piece, large);
          check(small == large);
        }
      });
      check(pos == input.size());
      check(tok.decode_bytes(tok.encode(input)) == input);
      break;
    }
    case 1:
      try {
        (void)tk::Tokenizer(tk::parse_ranks(input, "fuzz.tiktoken"), {});
      } catch (const nanochat::Error&) {
      }
      break;
    default:
      try {
        (void)tk::render_conversation(tok, tk::parse_conversation(input, "fuzz.json"), 256);
      } catch (const nanochat::Error&) {
      }
      break;
  }
  return 0;
}
