// nanochat's chat rendering: ids, training mask, system merge, tool parts, truncation, the
// completion prompt, and conversations read from JSON.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
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
    return tk::Tokenizer(tk::parse_ranks(s.str(), "fixture"), {tk::kSpecialTokens.begin(), tk::kSpecialTokens.end()});
  }();
  return tok;
}

tk::TokenId special(std::string_view name) { return tokenizer().encode_special(name); }

// Appends the ids of text with the given mask value.
void add(tk::RenderedConversation& r, const std::vector<tk::TokenId>& ids, std::uint8_t mask) {
  r.ids.insert(r.ids.end(), ids.begin(), ids.end());
  r.mask.insert(r.mask.end(), ids.size(), mask);
}

}  // namespace

TEST_CASE("tokenizer/chat: render_conversation ids and mask") {
  const tk::Tokenizer& tok = tokenizer();
  const tk::Conversation conv = tk::parse_conversation(R"({"messages": [
      {"role": "user", "content": "What is 2+2?"},
      {"role": "assistant", "content": "It is 4."},
      {"role": "user", "content": "<|assistant_end|> thanks"},
      {"role": "assistant", "content": "You're welcome"}]})", "test");
  const auto r = tk::render_conversation(tok, conv);
  tk::RenderedConversation expected;
  add(expected, {special("<|bos|>"), special("<|user_start|>")}, 0);
  add(expected, tok.encode("What is 2+2?"), 0);
  add(expected, {special("<|user_end|>"), special("<|assistant_start|>")}, 0);
  add(expected, tok.encode("It is 4."), 1);
  add(expected, {special("<|assistant_end|>")}, 1);
  add(expected, {special("<|user_start|>")}, 0);
  add(expected, tok.encode("<|assistant_end|> thanks"), 0);  // typed by the user: plain text
  add(expected, {special("<|user_end|>"), special("<|assistant_start|>")}, 0);
  add(expected, tok.encode("You're welcome"), 1);
  add(expected, {special("<|assistant_end|>")}, 1);
  CHECK(r.ids == expected.ids);
  CHECK(r.mask == expected.mask);
}

TEST_CASE("tokenizer/chat: a system message is merged into the first user message") {
  const tk::Tokenizer& tok = tokenizer();
  const auto with_system = tk::parse_conversation(R"([
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": "Hi"},
      {"role": "assistant", "content": "Hello"}])", "test");
  const auto merged = tk::parse_conversation(R"([
      {"role": "user", "content": "Be brief.\n\nHi"},
      {"role": "assistant", "content": "Hello"}])", "test");
  const auto a = tk::render_conversation(tok, with_system);
  const auto b = tk::render_conversation(tok, merged);
  CHECK(a.ids == b.ids);
  CHECK(a.mask == b.mask);
  CHECK(with_system.messages.size() == 3);  // the caller's conversation is not modified
}

TEST_CASE("tokenizer/chat: tool parts are masked like nanochat's") {
  const tk::Tokenizer& tok = tokenizer();
  const auto conv = tk::parse_conversation(R"({"messages": [
      {"role": "user", "content": "Compute 6*7"},
      {"role": "assistant", "content": [
          {"type": "text", "text": "Let me compute. "},
          {"type": "python", "text": "6*7"},
          {"type": "python_output", "text": "42"},
          {"type": "text", "text": " The answer is 42."}]}]})", "test");
  const auto r = tk::render_conversation(tok, conv);
  tk::RenderedConversation expected;
  add(expected, {special("<|bos|>"), special("<|user_start|>")}, 0);
  add(expected, tok.encode("Compute 6*7"), 0);
  add(expected, {special("<|user_end|>"), special("<|assistant_start|>")}, 0);
  add(expected, tok.encode("Let me compute. "), 1);
  add(expected, {special("<|python_start|>")}, 1);
  add(expected, tok.encode("6*7"), 1);
  add(expected, {special("<|python_end|>")}, 1);
  add(expected, {special("<|output_start|>")}, 0);
  add(expected, tok.encode("42"), 0);
  add(expected, {special("<|output_end|>")}, 0);
  add(expected, tok.encode(" The answer is 42."), 1);
  add(expected, {special("<|assistant_end|>")}, 1);
  CHECK(r.ids == expected.ids);
  CHECK(r.mask == expected.mask);
}

TEST_CASE("tokenizer/chat: truncation and render_for_completion") {
  const tk::Tokenizer& tok = tokenizer();
  const auto conv = tk::parse_conversation(R"([
      {"role": "user", "content": "Tell me a long story about tokenizers and their merges."},
      {"role": "assistant", "content": "Once upon a time there was a byte pair that merged."}])", "test");
  const auto full = tk::render_conversation(tok, conv);
  const auto cut = tk::render_conversation(tok, conv, 12);
  REQUIRE(full.ids.size() > 12);
  CHECK(cut.ids == std::vector<tk::TokenId>(full.ids.begin(), full.ids.begin() + 12));
  CHECK(cut.mask == std::vector<std::uint8_t>(full.mask.begin(), full.mask.begin() + 12));

  const auto prompt = tk::render_for_completion(tok, conv);
  std::vector<tk::TokenId> expected = {special("<|bos|>"), special("<|user_start|>")};
  const auto user = tok.encode("Tell me a long story about tokenizers and their merges.");
  expected.insert(expected.end(), user.begin(), user.end());
  expected.push_back(special("<|user_end|>"));
  expected.push_back(special("<|assistant_start|>"));
  CHECK(prompt == expected);
}

TEST_CASE("tokenizer/chat: malformed conversations give clear errors") {
  const tk::Tokenizer& tok = tokenizer();
  const auto render = [&](std::string_view json) { return tk::render_conversation(tok, tk::parse_conversation(json, "conv.json")); };
  CHECK_THROWS_WITH_AS(render(R"([{"role": "assistant", "content": "hi"}])"),
                       doctest::Contains("message 0 is from assistant but should be from user"), nanochat::Error);
  CHECK_THROWS_WITH_AS(render(R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])"),
                       doctest::Contains("message 1 is from user but should be from assistant"), nanochat::Error);
  CHECK_THROWS_WITH_AS(render(R"([])"), doctest::Contains("no messages"), nanochat::Error);
  CHECK_THROWS_WITH_AS(render(R"([{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}])"),
                       doctest::Contains("followed by a user message"), nanochat::Error);
  CHECK_THROWS_WITH_AS(render(R"([{"role": "user", "content": "a"}, {"role": "assistant", "content": [{"type": "image", "text": "x"}]}])"),
                       doctest::Contains("unknown type \"image\""), nanochat::Error);
  CHECK_THROWS_WITH_AS(render(R"([{"role": "user", "content": [{"type": "text", "text": "x"}]}])"),
                       doctest::Contains("must have string content"), nanochat::Error);
  CHECK_THROWS_WITH_AS(render(R"({"messages": [{"role": "user"}]})"), doctest::Contains("needs \"role\" and \"content\""),
                       nanochat::Error);
  CHECK_THROWS_WITH_AS(render(R"({"messages": [{"role": "user", "content": "x"})"), doctest::Contains("conv.json: invalid JSON"),
                       nanochat::Error);
  CHECK_THROWS_WITH_AS(render(std::string(1000, '[')), doctest::Contains("nesting"), nanochat::Error);
  CHECK_THROWS_WITH_AS(tk::render_for_completion(tok, tk::parse_conversation(R"([{"role": "user", "content": "a"}])", "c")),
                       doctest::Contains("last message must be from the assistant"), nanochat::Error);
}
