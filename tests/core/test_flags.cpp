// Flags: both spellings of a flag, both value forms, short names, and errors naming the flag.

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "nanochat/core/flags.hpp"

using nanochat::Flags;

namespace {
struct Parsed {
  int depth = 20;
  double lr = 0.02;
  bool verbose = false;
  std::string tag;
  float temperature = 1.0f;
};

bool parse(Parsed& p, std::vector<const char*> args) {
  args.insert(args.begin(), "prog");
  Flags flags("prog", "test");
  flags.add("--depth", p.depth, "depth")
      .add("--matrix-lr", p.lr, "lr")
      .add("--verbose", p.verbose, "chatty")
      .add("--model-tag", p.tag, "tag")
      .add("--temperature", p.temperature, "t", 't');
  return flags.parse(static_cast<int>(args.size()), args.data());
}
}  // namespace

TEST_CASE("flags accept nanochat's and GNU spellings and keep defaults") {
  Parsed p;
  CHECK(parse(p, {"--depth=12", "--matrix_lr", "0.05", "--verbose", "-t", "0.5"}));
  CHECK(p.depth == 12);
  Parsed e;
  CHECK(parse(e, {"--depth=2e3"}));  // counts in nanochat's 2e9 style
  CHECK(e.depth == 2000);
  CHECK(p.lr == 0.05);
  CHECK(p.verbose);
  CHECK(p.temperature == 0.5f);
  CHECK(p.tag.empty());
  Parsed q;
  CHECK(parse(q, {"--model-tag", "d12", "--verbose=false"}));
  CHECK(q.depth == 20);
  CHECK(q.tag == "d12");
  CHECK_FALSE(q.verbose);
}

TEST_CASE("bad flags are errors that name the flag") {
  Parsed p;
  CHECK_THROWS_WITH(parse(p, {"--dpeth=3"}), doctest::Contains("unknown flag --dpeth=3"));
  CHECK_THROWS_WITH(parse(p, {"--depth=2x"}), doctest::Contains("flag --depth: '2x' is not an integer"));
  CHECK_THROWS_WITH(parse(p, {"--depth=99999999999"}), doctest::Contains("in range"));
  CHECK_THROWS_WITH(parse(p, {"--depth=1e10"}), doctest::Contains("in range"));
  CHECK_THROWS_WITH(parse(p, {"--depth=2.5"}), doctest::Contains("'2.5' is not an integer"));
  CHECK_THROWS_WITH(parse(p, {"--matrix-lr", "fast"}), doctest::Contains("flag --matrix-lr: 'fast' is not a number"));
  CHECK_THROWS_WITH(parse(p, {"--depth"}), doctest::Contains("flag --depth needs a value"));
  CHECK_THROWS_WITH(parse(p, {"--verbose=maybe"}), doctest::Contains("is not a boolean"));
  CHECK_THROWS_WITH(parse(p, {"stray"}), doctest::Contains("unexpected argument 'stray'"));
}

TEST_CASE("a vector flag collects every occurrence") {
  std::vector<std::string> texts;
  Flags flags("prog", "test");
  flags.add("--text", texts, "name=file, repeatable");
  const char* argv[] = {"prog", "--text", "a=1.txt", "--text=b=2.txt"};
  CHECK(flags.parse(4, argv));
  CHECK(texts == std::vector<std::string>{"a=1.txt", "b=2.txt"});
}

TEST_CASE("positional arguments are collected when the program takes them") {
  int depth = 1;
  std::vector<std::string> inputs;
  Flags flags("prog", "test");
  flags.add("--depth", depth, "depth").positional("INPUT...", inputs, "files to read");
  const char* argv[] = {"prog", "a.txt", "--depth", "3", "b.jsonl"};
  CHECK(flags.parse(5, argv));
  CHECK(depth == 3);
  CHECK(inputs == std::vector<std::string>{"a.txt", "b.jsonl"});
  CHECK(flags.values() == std::map<std::string, std::string>{{"depth", "3"}});
}
