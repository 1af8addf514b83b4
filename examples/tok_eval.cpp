// Compression of tokenizers side by side (nanochat's scripts/tok_eval.py): bytes per token for
// texts of several kinds, as markdown tables comparing the first tokenizer given ("ours") with
// each of the others. Every text must round-trip exactly through every tokenizer.
//
//   tok_eval [--corpus DIR] [--text NAME=FILE]... [NAME=]TOKENIZER_DIR...
// --corpus adds fwe-train / fwe-val: the first document group of the first training shard and of
// the validation shard of DIR, joined with "\n". Built-in texts: news, korean, code, math,
// science (short samples written for this program).

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/flags.hpp"
#include "nanochat/data/document_source.hpp"
#include "nanochat/tokenizer/tokenizer.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"
#include "nanochat/train/report_section.hpp"

namespace fs = std::filesystem;
namespace tk = nanochat::tokenizer;

namespace {

const std::vector<std::pair<std::string, std::string>> kBuiltinTexts = {
    {"news",
     "GENEVA, March 4 (Wire) - Delegates from forty-two countries agreed on Tuesday to a framework "
     "for sharing weather-satellite data, ending two years of talks. \"This is a practical step,\" said "
     "the chair of the negotiating committee, adding that the first exchanges could begin by October. "
     "Under the agreement, national agencies will publish raw observations within six hours and "
     "processed forecasts within 24 hours. Smaller states, which often lack their own satellites, "
     "welcomed the deal; several said it would improve flood warnings during the monsoon season. The "
     "framework still has to be ratified by national parliaments, a process officials expect to take "
     "at least 18 months. Critics noted that the text leaves open how costs will be shared.\n"},
    {"korean",
     "오늘 아침 서울의 기온은 영하 5도까지 떨어졌습니다. 기상청은 이번 주말까지 추위가 계속될 것으로 "
     "예상한다고 밝혔습니다. 시민들은 두꺼운 외투와 목도리를 준비하고, 노약자는 외출을 자제하는 것이 "
     "좋겠습니다. 한편 남부 지방에는 눈이 내릴 가능성이 있어 교통 안전에 주의가 필요합니다.\n"},
    {"code",
     "def get_stats(ids, counts=None):\n"
     "    \"\"\"Count how often each adjacent pair occurs.\"\"\"\n"
     "    counts = {} if counts is None else counts\n"
     "    for pair in zip(ids, ids[1:]):\n"
     "        counts[pair] = counts.get(pair, 0) + 1\n"
     "    return counts\n\n"
     "def merge(ids, pair, idx):\n"
     "    newids, i = [], 0\n"
     "    while i < len(ids):\n"
     "        if i < len(ids) - 1 and (ids[i], ids[i + 1]) == pair:\n"
     "            newids.append(idx)\n"
     "            i += 2\n"
     "        else:\n"
     "            newids.append(ids[i])\n"
     "            i += 1\n"
     "    return newids\n"},
    {"math",
     "\\begin{theorem}\nFor every integer $n \\geq 1$, $\\sum_{k=1}^{n} k^3 = \\left(\\frac{n(n+1)}{2}\\right)^2$.\n"
     "\\end{theorem}\n\\begin{proof}\nBy induction on $n$. For $n = 1$ both sides equal $1$. Assume the "
     "identity for $n$; then\n\\[ \\sum_{k=1}^{n+1} k^3 = \\frac{n^2(n+1)^2}{4} + (n+1)^3 = "
     "\\frac{(n+1)^2 (n^2 + 4n + 4)}{4} = \\left(\\frac{(n+1)(n+2)}{2}\\right)^2, \\]\n"
     "which is the claim for $n+1$.\n\\end{proof}\n"},
    {"science",
     "Mitochondrial membrane potential is maintained by proton translocation through complexes I, III "
     "and IV of the electron transport chain, and dissipated by ATP synthase and uncoupling proteins. "
     "In hepatocytes, transient depolarisation triggers PINK1 accumulation on the outer membrane, "
     "recruitment of the E3 ligase Parkin, ubiquitination of VDAC1 and mitofusins, and autophagic "
     "clearance of the damaged organelle. Knockdown of PINK1 (siRNA, 72 h) reduced mitophagy by 64% "
     "(p < 0.01, n = 6), whereas overexpression of a kinase-dead mutant (K219M) had no effect.\n"},
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  NANOCHAT_CHECK(in.good(), "tok_eval: cannot open ", path.string());
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string first_group(const fs::path& shard) {
  nanochat::data::DocumentIterator it({shard});
  nanochat::data::DocumentGroup group;
  std::string joined;
  if (it.next(group)) {
    for (std::size_t i = 0; i < group.documents.size(); ++i) joined += (i ? "\n" : "") + group.documents[i];
  }
  return joined;
}

std::pair<std::string, std::string> name_value(const std::string& arg) {
  const auto eq = arg.find('=');
  if (eq == std::string::npos) return {fs::path(arg).filename().string(), arg};
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

struct Row {
  std::size_t bytes = 0;
  std::size_t tokens = 0;
};

int run(int argc, char** argv) {
  std::vector<std::pair<std::string, std::string>> texts = kBuiltinTexts;
  std::vector<std::pair<std::string, tk::Tokenizer>> tokenizers;
  std::vector<std::string> corpora, text_files, tokenizer_dirs;
  nanochat::Flags flags("tok_eval", "compression (bytes per token) of tokenizers side by side, as nanochat's tok_eval");
  flags.add("--corpus", corpora, "a shard directory: its first train and val groups become texts (repeatable)")
      .add("--text", text_files, "NAME=FILE, an extra text (repeatable)")
      .positional("[NAME=]TOKENIZER_DIR...", tokenizer_dirs, "tokenizers to compare; the first is \"ours\"");
  if (!flags.parse(argc, argv)) return 0;
  for (const std::string& value : text_files) {
    auto [name, path] = name_value(value);
    texts.emplace_back(name, read_file(path));
  }
  for (const std::string& value : corpora) {
    const auto shards = nanochat::data::list_shards(value);
    NANOCHAT_CHECK(!shards.empty(), "tok_eval: ", value, " holds no shards");
    texts.emplace_back("fwe-train", first_group(shards.front()));
    if (shards.size() >= 2) {
      if (std::string val = first_group(shards.back()); !val.empty()) texts.emplace_back("fwe-val", std::move(val));
    }
  }
  for (const std::string& arg : tokenizer_dirs) {
    auto [name, dir] = name_value(arg);
    tokenizers.emplace_back(name, tk::load_tokenizer(dir));
  }
  NANOCHAT_CHECK(!tokenizers.empty(), "tok_eval: give at least one tokenizer directory");

  // results[t][x]: tokenizer t on text x
  std::vector<std::vector<Row>> results(tokenizers.size(), std::vector<Row>(texts.size()));
  for (std::size_t t = 0; t < tokenizers.size(); ++t) {
    for (std::size_t x = 0; x < texts.size(); ++x) {
      const auto ids = tokenizers[t].second.encode(texts[x].second);
      NANOCHAT_CHECK(tokenizers[t].second.decode_bytes(ids) == texts[x].second, "tok_eval: ",
                     tokenizers[t].first, " does not round-trip text ", texts[x].first);
      results[t][x] = {texts[x].second.size(), ids.size()};
    }
  }
  const auto ratio = [](const Row& r) { return r.tokens ? double(r.bytes) / double(r.tokens) : 0.0; };
  const std::string& ours = tokenizers[0].first;
  // The tables as markdown: printed, and the report card's "Tokenizer evaluation" section.
  char* buffer = nullptr;
  std::size_t size = 0;
  std::FILE* md = ::open_memstream(&buffer, &size);
  NANOCHAT_CHECK(md != nullptr, "tok_eval: cannot open a memory stream for the tables");
  std::fprintf(md, "Vocab sizes:");
  for (const auto& [name, tok] : tokenizers) std::fprintf(md, " %s %zu;", name.c_str(), tok.vocab_size());
  std::fprintf(md, "\n\n");
  if (tokenizers.size() == 1) {
    std::fprintf(md, "| Text Type | Bytes | %s Tokens | %s Ratio |\n|---|---|---|---|\n", ours.c_str(), ours.c_str());
    for (std::size_t x = 0; x < texts.size(); ++x) {
      std::fprintf(md, "| %s | %zu | %zu | %.2f |\n", texts[x].first.c_str(), results[0][x].bytes, results[0][x].tokens,
                  ratio(results[0][x]));
    }
  }
  for (std::size_t b = 1; b < tokenizers.size(); ++b) {
    const std::string& base = tokenizers[b].first;
    std::fprintf(md, "Comparison with %s:\n\n", base.c_str());
    std::fprintf(md, "| Text Type | Bytes | %s Tokens | %s Ratio | %s Tokens | %s Ratio | Relative Diff %% |\n",
                base.c_str(), base.c_str(), ours.c_str(), ours.c_str());
    std::fprintf(md, "|---|---|---|---|---|---|---|\n");
    for (std::size_t x = 0; x < texts.size(); ++x) {
      const Row& br = results[b][x];
      const Row& orow = results[0][x];
      const double diff = br.tokens ? 100.0 * (double(br.tokens) - double(orow.tokens)) / double(br.tokens) : 0.0;
      std::fprintf(md, "| %s | %zu | %zu | %.2f | %zu | %.2f | %+.1f%% %s |\n", texts[x].first.c_str(), br.bytes,
                  br.tokens, ratio(br), orow.tokens, ratio(orow), diff,
                  ratio(orow) > ratio(br) ? "(ours better)" : ratio(orow) < ratio(br) ? "(ours worse)" : "");
    }
    std::fprintf(md, "\n");
  }
  std::fclose(md);
  const std::string markdown(buffer, size);
  std::free(buffer);
  std::fputs(markdown.c_str(), stdout);
  nanochat::report::StageReport("Tokenizer evaluation", flags.values()).add_text(markdown).write();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tok_eval: %s (see --help)\n", e.what());
    return 1;
  }
}
