// Flags: both spellings of a flag, both value forms, short names, ranges, finite floats, and errors
// naming the flag; checked_mul.

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "nanochat/core/flags.hpp"
#include "nanochat/core/limits.hpp"

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

TEST_CASE("floating-point flags refuse nan and inf and name the flag") {
  Parsed p;
  CHECK_THROWS_WITH(parse(p, {"--matrix-lr", "nan"}), doctest::Contains("flag --matrix-lr: 'nan' is not a finite number"));
  CHECK_THROWS_WITH(parse(p, {"--matrix-lr=inf"}), doctest::Contains("flag --matrix-lr: 'inf' is not a finite number"));
  CHECK_THROWS_WITH(parse(p, {"--matrix-lr=-infinity"}), doctest::Contains("not a finite number"));
  CHECK_THROWS_WITH(parse(p, {"-t", "NaN"}), doctest::Contains("flag --temperature: 'NaN' is not a finite number"));
  CHECK_THROWS_WITH(parse(p, {"--matrix-lr=1e999"}), doctest::Contains("flag --matrix-lr: '1e999' is not a number in range"));
  CHECK(p.lr == 0.02);  // a refused value leaves the default
}

TEST_CASE("a ranged flag refuses values outside its range before anything multiplies them") {
  std::int64_t seq = 2048;
  std::size_t threads = 2;
  double ratio = 0.2;
  const auto parse_ranged = [&](std::vector<const char*> args) {
    args.insert(args.begin(), "prog");
    Flags flags("prog", "test");
    flags.add("--max-seq-len", seq, "context", nanochat::FlagRange<std::int64_t>{1, 1 << 20})
        .add("--threads", threads, "workers", {1, 1024}, 'j')
        .add("--warmdown-ratio", ratio, "fraction", {0.0, 1.0});
    return flags.parse(static_cast<int>(args.size()), args.data());
  };
  CHECK(parse_ranged({"--max-seq-len", "1048576", "-j", "16", "--warmdown-ratio=1"}));
  CHECK(seq == 1048576);
  CHECK(threads == 16);
  CHECK(ratio == 1.0);
  CHECK_THROWS_WITH(parse_ranged({"--max-seq-len", "4611686018427387904"}),
                    doctest::Contains("flag --max-seq-len: 4611686018427387904 is outside the allowed range 1..1048576"));
  CHECK_THROWS_WITH(parse_ranged({"--max-seq-len=0"}), doctest::Contains("outside the allowed range 1..1048576"));
  CHECK_THROWS_WITH(parse_ranged({"--threads", "100000"}),
                    doctest::Contains("flag --threads: 100000 is outside the allowed range 1..1024"));
  CHECK_THROWS_WITH(parse_ranged({"-j", "0"}), doctest::Contains("flag --threads: 0 is outside"));
  CHECK_THROWS_WITH(parse_ranged({"--threads=-1"}), doctest::Contains("flag --threads: '-1' is not an integer in range"));
  CHECK_THROWS_WITH(parse_ranged({"--warmdown-ratio", "1.5"}), doctest::Contains("outside the allowed range 0..1"));
  CHECK_THROWS_WITH(parse_ranged({"--warmdown-ratio", "nan"}), doctest::Contains("not a finite number"));
  CHECK(seq == 1048576);  // refused values leave the variables as they were

  int depth = 0;
  Flags bad_default("prog", "test");
  CHECK_THROWS_WITH(bad_default.add("--depth", depth, "depth", {1, 64}),
                    doctest::Contains("flag --depth: the default 0 is outside its range 1..64"));
}

TEST_CASE("checked_mul names what overflowed") {
  CHECK(nanochat::checked_mul<std::int64_t>(32, 2048, "B x T") == 65536);
  CHECK_THROWS_WITH(nanochat::checked_mul<std::int64_t>(8, std::int64_t{1} << 61, "--device-batch-size x --max-seq-len"),
                    doctest::Contains("--device-batch-size x --max-seq-len: 8 x 2305843009213693952 overflows"));
  CHECK_THROWS_WITH(nanochat::checked_mul<std::size_t>(std::size_t{1} << 40, std::size_t{1} << 40, "rows x cols"),
                    doctest::Contains("overflows"));
}

TEST_CASE("an integer flag written as 2^63 in scientific notation is out of range, not a wrapped cast") {
  std::int64_t seed = 0;
  std::uint64_t wide_seed = 0;
  Flags flags("prog", "test");
  flags.add("--seed", seed, "s").add("--wide-seed", wide_seed, "u");
  const char* at_limit[] = {"prog", "--seed=9.223372036854775808e18"};
  CHECK_THROWS_WITH(flags.parse(2, at_limit), doctest::Contains("in range"));
  const char* unsigned_limit[] = {"prog", "--wide-seed=1.8446744073709551616e19"};
  CHECK_THROWS_WITH(flags.parse(2, unsigned_limit), doctest::Contains("in range"));
  const char* below[] = {"prog", "--seed=4.611686018427387904e18"};
  CHECK(flags.parse(2, below));
  CHECK(seed == std::int64_t{1} << 62);
  const char* lowest[] = {"prog", "--seed=-9.223372036854775808e18"};
  CHECK(flags.parse(2, lowest));
  CHECK(seed == std::numeric_limits<std::int64_t>::lowest());
}
