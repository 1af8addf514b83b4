// libFuzzer target: what a user types into chat_cli and what the model writes back, under ASan
// and UBSan, with the 2048-rank fixture tokenizer. The first byte picks the path (mod 3):
//   0: chat input. The rest, split at "\n" (chat_cli reads a line per turn), is a conversation of
//      alternating user and assistant turns (bit 2 of the first byte: the first line is a system
//      message). Its completion prompt must be exactly <|bos|>, then per turn its start token,
//      encode(text), its end token, then <|assistant_start|>: user text never becomes a special
//      token, whatever it says, and decodes back to itself; chat_cli's one-line prompt is the
//      same ids; a prompt cut to k tokens is the first k; the Engine feeds the prompt to the
//      model unchanged, or refuses it with an Error when it does not fit the context.
//   1: model output. The rest, as 16-bit token ids, is what a model proposes column by column;
//      the Engine's tool handling must follow its documented state machine (a python block's
//      calculator result forced as <|output_start|> result <|output_end|> with mask 0, sampled
//      tokens mask 1, the row ending at <|assistant_end|> or <|bos|>) whatever the tokens spell.
//   2: the calculator on the text (engine/calculator.hpp): a result is an integer or Python's
//      float text, and evaluating a plain result again gives it back; python_float_str of any
//      double reads back as that double.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "nanochat/engine/calculator.hpp"
#include "nanochat/engine/engine.hpp"
#include "nanochat/tokenizer/chat_template.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"
#include "scripted_model.hpp"

using namespace nanochat;
namespace tk = nanochat::tokenizer;
using engine::use_calculator;
using fuzz::check;

namespace {

const tk::Tokenizer& tokenizer() {
  static const tk::Tokenizer tok = tk::load_tokenizer(std::string(NANOCHAT_FIXTURES) + "/tokenizer/converted_2048");
  return tok;
}

std::int32_t special(const char* name) { return static_cast<std::int32_t>(tokenizer().encode_special(name)); }

std::vector<std::int32_t> ordinary(std::string_view text) {
  const tk::Tokenizer& tok = tokenizer();
  const std::vector<tk::TokenId> ids = tok.encode(text);
  for (tk::TokenId id : ids) check(id < tok.num_ranks(), "ordinary text encoded to a special token");
  check(tok.decode_bytes(ids) == text, "text does not decode back to itself");
  return {ids.begin(), ids.end()};
}

void chat_input(std::uint8_t flags, std::string_view text) {
  std::vector<std::string_view> lines;
  for (std::size_t nl; (nl = text.find('\n')) != std::string_view::npos; text.remove_prefix(nl + 1))
    lines.push_back(text.substr(0, nl));
  lines.push_back(text);
  const bool system = (flags & 4) && lines.size() > 1;

  tk::Conversation conv;
  std::vector<std::string> turns;  // the text of each user or assistant turn, system folded in
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const bool is_system = system && i == 0;
    const std::size_t turn = system ? i - (i > 0) : i;
    const char* role = is_system ? "system" : turn % 2 == 0 ? "user" : "assistant";
    conv.messages.push_back({role, std::string(lines[i])});
    if (is_system) continue;
    turns.emplace_back(system && i == 1 ? cat(lines[0], "\n\n", lines[1]) : std::string(lines[i]));
  }
  if (turns.size() % 2 == 0) {  // the last turn is the assistant's: generate it
    conv.messages.pop_back();
    turns.pop_back();
  }
  conv.messages.push_back({"assistant", std::string()});

  std::vector<std::int32_t> expected{special("<|bos|>")};
  for (std::size_t t = 0; t < turns.size(); ++t) {
    const bool user = t % 2 == 0;
    expected.push_back(special(user ? "<|user_start|>" : "<|assistant_start|>"));
    for (std::int32_t id : ordinary(turns[t])) expected.push_back(id);
    expected.push_back(special(user ? "<|user_end|>" : "<|assistant_end|>"));
  }
  expected.push_back(special("<|assistant_start|>"));

  const tk::Tokenizer& tok = tokenizer();
  std::vector<std::int32_t> prompt;
  for (tk::TokenId id : tk::render_for_completion(tok, conv, std::size_t{1} << 30)) prompt.push_back(static_cast<std::int32_t>(id));
  check(prompt == expected, "the rendered prompt is not bos, the turns' tokens and assistant_start");
  if (turns.size() == 1) {
    // chat_cli's own prompt for one line: bos, user_start, encode(line), user_end, assistant_start.
    std::vector<std::int32_t> cli{special("<|bos|>"), special("<|user_start|>")};
    for (tk::TokenId id : tok.encode(turns[0])) cli.push_back(static_cast<std::int32_t>(id));
    cli.push_back(special("<|user_end|>"));
    cli.push_back(special("<|assistant_start|>"));
    check(cli == prompt, "chat_cli's prompt differs from the chat template's");
  }
  const std::size_t cut = flags >> 3;
  conv.messages.pop_back();
  const tk::RenderedConversation cut_render = tk::render_conversation(tok, conv, cut);
  check(cut_render.ids.size() == std::min(cut, prompt.size() - 1) && cut_render.mask.size() == cut_render.ids.size(),
        "a cut rendering has the wrong length");
  for (std::size_t i = 0; i < cut_render.ids.size(); ++i) {
    check(static_cast<std::int32_t>(cut_render.ids[i]) == prompt[i], "a cut rendering is not a prefix");
    check(cut_render.mask[i] <= 1, "mask values are 0 or 1");
  }

  const std::int64_t context = 8 + (flags >> 3) * 4;
  engine_test::ScriptedModel model({special("<|assistant_end|>")}, static_cast<std::int64_t>(tok.vocab_size()), context);
  engine::Engine eng(model, tok);
  engine::GenerateOptions o;
  o.max_tokens = 4;
  o.sampling.temperature = 0.0f;
  try {
    eng.generate(prompt, o, [](std::span<const std::int32_t>, std::span<const std::uint8_t>) { return true; });
    check(static_cast<std::int64_t>(prompt.size()) < context, "a prompt longer than the context was accepted");
    check(model.fed_.at(0) == prompt, "the model was not fed the prompt");
  } catch (const Error& e) {
    check(static_cast<std::int64_t>(prompt.size()) >= context, "a prompt that fits was refused");
    fuzz::check_names(e, "the prompt has");
  }
}

void model_output(std::uint8_t flags, std::string_view bytes) {
  const tk::Tokenizer& tok = tokenizer();
  const auto vocab = static_cast<std::int64_t>(tok.vocab_size());
  std::vector<std::int32_t> script;
  for (std::size_t i = 0; i + 1 < bytes.size(); i += 2)
    script.push_back(static_cast<std::int32_t>((static_cast<unsigned char>(bytes[i]) | static_cast<unsigned char>(bytes[i + 1]) << 8) % vocab));
  engine_test::ScriptedModel model(script, vocab);
  engine::Engine eng(model, tok);
  engine::GenerateOptions o;
  o.num_samples = 1 + (flags >> 2) % 2;
  o.max_tokens = static_cast<std::int64_t>(script.size()) + 40;
  o.sampling.temperature = 0.0f;
  const std::vector<std::int32_t> prompt{special("<|bos|>"), special("<|assistant_start|>")};

  // The state machine of engine.hpp's header, on its own.
  std::deque<std::int32_t> forced;
  std::vector<tk::TokenId> expr;
  bool in_python = false, done = false;
  std::int64_t column = 0;
  eng.generate(prompt, o, [&](std::span<const std::int32_t> tokens, std::span<const std::uint8_t> masks) {
    check(!done, "a column after every row ended");
    const std::int32_t sampled = static_cast<std::size_t>(column) < script.size() ? script[static_cast<std::size_t>(column)] : 0;
    ++column;
    std::int32_t token = sampled;
    std::uint8_t mask = 1;
    if (!forced.empty()) {
      token = forced.front();
      forced.pop_front();
      mask = 0;
    }
    for (std::size_t r = 0; r < tokens.size(); ++r) check(tokens[r] == token && masks[r] == mask, "token or mask");
    done = token == special("<|assistant_end|>") || token == special("<|bos|>");
    if (token == special("<|python_start|>")) {
      in_python = true;
      expr.clear();
    } else if (token == special("<|python_end|>") && in_python) {
      in_python = false;
      if (!expr.empty()) {
        if (const auto result = use_calculator(tok.decode(expr))) {
          forced.push_back(special("<|output_start|>"));
          for (std::int32_t id : ordinary(*result)) forced.push_back(id);
          forced.push_back(special("<|output_end|>"));
        }
      }
      expr.clear();
    } else if (in_python) {
      expr.push_back(static_cast<tk::TokenId>(token));
    }
    return true;
  });
  const std::int64_t columns = std::min<std::int64_t>(o.max_tokens, model.max_positions() - 2);
  check(done || column == columns, "generation stopped early");
}

bool is_integer(std::string_view s) {
  if (s.starts_with('-')) s.remove_prefix(1);
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

void calculator(std::string_view text) {
  if (text.size() >= 8) {
    double x;
    std::memcpy(&x, text.data(), sizeof x);
    const std::string s = engine::calculator_detail::python_float_str(x);
    if (std::isnan(x)) {
      check(s == "nan", "nan");
    } else {
      char* end = nullptr;
      const double back = std::strtod(s.c_str(), &end);  // strtod, not from_chars: subnormals read too
      check((end == s.c_str() + s.size() && back == x && std::signbit(back) == std::signbit(x)) ||
                (std::isinf(x) && s == (x > 0 ? "inf" : "-inf")),
            "python_float_str does not read back");
      check(std::isinf(x) || s.find_first_of(".e") != std::string::npos, "a float's text looks like an int");
    }
  }
  const std::optional<std::string> result = use_calculator(text);
  if (!result) return;
  check(!result->empty(), "empty result");
  std::string no_commas;
  for (char c : text)
    if (c != ',') no_commas += c;
  const bool arithmetic = no_commas.find_first_not_of("0123456789*+-/.() ") == std::string::npos;
  if (!arithmetic) {
    check(is_integer(*result) && !result->starts_with('-'), "a count is a non-negative integer");
    return;
  }
  // Not 1e+16, inf or nan (no arithmetic literals), nor -2^63 (its literal 2^63 overflows first).
  const bool plain = result->find_first_of("ein") == std::string::npos && *result != "-9223372036854775808";
  if (plain) check(use_calculator(*result) == result, "a result evaluates to itself");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  // Model output seeds: a calculator block and one the calculator refuses, then the end of turn.
  const auto script = [](std::initializer_list<std::vector<std::int32_t>> parts) {
    std::string out(1, '\1');
    for (const auto& part : parts)
      for (std::int32_t id : part) {
        out += static_cast<char>(id & 0xFF);
        out += static_cast<char>(id >> 8);
      }
    return out;
  };
  const std::vector<std::int32_t> start{special("<|python_start|>")}, end{special("<|python_end|>")},
      stop{special("<|assistant_end|>")};
  fuzz::write_seed(*argc, *argv, "tool_calculator",
                   script({ordinary("Let me see "), start, ordinary("12/60"), end, {65, 66, 67, 68}, ordinary(" ok"), stop}));
  fuzz::write_seed(*argc, *argv, "tool_count",
                   script({start, ordinary("'strawberry'.count('r')"), end, {65, 66, 67}, start, ordinary("__import__"),
                           end, stop}));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest = fuzz::as_text(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0: chat_input(data[0], rest); break;
    case 1: model_output(data[0], rest); break;
    default: calculator(rest); break;
  }
  return 0;
}
