// libFuzzer target: a whole tokenizer directory as load_tokenizer reads it
// (tokenizer/tokenizer_file.hpp), under ASan and UBSan. The input up to its first NUL is
// tokenizer.tiktoken, the rest tokenizer.json (neither format can hold a NUL).
// What must hold:
//   - load_tokenizer either succeeds or raises a nanochat::Error naming the directory's file;
//   - a loaded tokenizer has the ranks file's tokens then the config's specials at their ids;
//     encode_special finds each; token_bytes() is each rank's length and 0 for specials;
//   - ordinary encoding of any text (here the config file's bytes) never gives a special id and
//     decodes back to the text;
//   - save_tokenizer then load_tokenizer gives the same tokens and specials.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"

using namespace nanochat;
namespace tk = nanochat::tokenizer;
using fuzz::check;

namespace {

void check_same(const tk::Tokenizer& a, const tk::Tokenizer& b) {
  check(a.encoder().tokens() == b.encoder().tokens(), "saved tokenizer: other tokens");
  check(a.special_tokens() == b.special_tokens(), "saved tokenizer: other specials");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::string_view> files = fuzz::split_at_nul(fuzz::as_text(data, size), 2);
  const auto dir = fuzz::scratch().path() / "tokenizer";
  std::filesystem::create_directories(dir);
  fuzz::write_file(dir / tk::kRanksFileName, files[0]);
  fuzz::write_file(dir / tk::kConfigFileName, files[1]);
  std::optional<tk::Tokenizer> tok;
  try {
    tok.emplace(tk::load_tokenizer(dir));
  } catch (const Error& e) {
    fuzz::check_names(e, dir.string());
    return 0;
  }
  const std::vector<std::string> ranks = tk::parse_ranks(files[0], "ranks");
  check(tok->encoder().tokens() == ranks, "tokens differ from the ranks file");
  check(tok->vocab_size() == ranks.size() + tok->special_tokens().size(), "vocab size");
  const json::Value config = json::parse(files[1], "config");
  const json::Object& specials = config.find("special_tokens")->object("special_tokens");
  check(specials.size() == tok->special_tokens().size(), "number of specials");
  for (const auto& [name, id] : specials) {
    check(tok->encode_special(name) == id.whole_number("id"), "special id");
    check(tok->is_special(tok->encode_special(name)), "is_special");
  }
  const std::vector<std::int32_t> lengths = tok->token_bytes();
  for (std::size_t id = 0; id < tok->vocab_size(); ++id)
    check(lengths[id] == (id < ranks.size() ? static_cast<std::int32_t>(ranks[id].size()) : 0), "token_bytes");

  const std::vector<tk::TokenId> ids = tok->encode(files[1]);
  for (tk::TokenId id : ids) check(!tok->is_special(id), "ordinary text encoded to a special token");
  check(tok->decode_bytes(ids) == files[1], "encode/decode round trip");

  const auto saved = fuzz::scratch().path() / "saved";
  tk::save_tokenizer(*tok, saved);
  check_same(*tok, tk::load_tokenizer(saved));
  return 0;
}
