// The parquet reader against pyarrow: every fixture written by tests/reference/make_parquet_fixtures.py
// must decode to exactly what pyarrow read back, and damaged files must fail with an Error that
// names the file, never crash.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "nanochat/core/json.hpp"
#include "nanochat/data/parquet_reader.hpp"

namespace {

namespace fs = std::filesystem;
using nanochat::data::MemorySource;
using nanochat::data::ParquetReader;

const fs::path kDir = fs::path(NANOCHAT_FIXTURES) / "data" / "parquet";

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// expected.json: {"name": [[row group 0 texts...], ...], ...}; null means a null value, which the
// reader returns as "".
std::map<std::string, std::vector<std::vector<std::string>>> load_expected() {
  const std::string text = slurp(kDir / "expected.json");
  nanochat::json::Reader in(text, "expected.json");
  std::map<std::string, std::vector<std::vector<std::string>>> out;
  in.read_object([&](const std::string& name) {
    auto& groups = out[name];
    in.read_array([&] {
      auto& group = groups.emplace_back();
      in.read_array([&] { group.push_back(in.accept_null() ? std::string() : in.read_string()); });
    });
  });
  in.finish();
  return out;
}

// Opens bytes held in memory and decodes every row group's "text" column.
std::vector<std::vector<std::string>> read_all(const std::string& bytes, const std::string& name) {
  ParquetReader reader(std::make_unique<MemorySource>(
      reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), name));
  std::vector<std::vector<std::string>> groups;
  for (std::size_t g = 0; g < reader.num_row_groups(); ++g) groups.push_back(reader.read_strings(g, "text"));
  return groups;
}

}  // namespace

TEST_CASE("data.parquet: every codec, encoding and page version decodes exactly as pyarrow reads it") {
  auto expected = load_expected();
  REQUIRE(expected.size() == 18);
  for (const auto& [name, groups] : expected) {
    CAPTURE(name);
    ParquetReader reader(kDir / (name + ".parquet"));
    REQUIRE(reader.num_row_groups() == groups.size());
    CHECK(groups.size() == 3);  // several row groups per file, as the generator asks
    std::size_t rows = 0;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      CAPTURE(g);
      CHECK(reader.row_group_rows(g) == static_cast<std::int64_t>(groups[g].size()));
      CHECK(reader.read_strings(g, "text") == groups[g]);
      rows += groups[g].size();
    }
    CHECK(reader.num_rows() == static_cast<std::int64_t>(rows));
  }
}

TEST_CASE("data.parquet: row groups can be read in any order and more than once") {
  auto expected = load_expected()["zstd_dict_v2"];
  ParquetReader reader(kDir / "zstd_dict_v2.parquet");
  for (std::size_t g : {2u, 0u, 2u, 1u}) CHECK(reader.read_strings(g, "text") == expected[g]);
}

TEST_CASE("data.parquet: columns are found by name and the wrong ones are refused") {
  ParquetReader reader(kDir / "two_columns.parquet");
  CHECK(reader.column_names() == std::vector<std::string>{"id", "text"});
  CHECK(reader.column_index("text") == 1);
  CHECK(reader.read_strings(0, "text") == load_expected()["two_columns"][0]);
  CHECK_THROWS_WITH_AS(reader.column_index("body"), doctest::Contains("no column named 'body'"),
                       nanochat::Error);
  std::vector<std::string> out;
  CHECK_THROWS_WITH_AS(reader.read_strings(0, 0, out), doctest::Contains("is not BYTE_ARRAY"),
                       nanochat::Error);
  CHECK_THROWS_WITH_AS(reader.read_strings(3, 1, out), doctest::Contains("row group 3 out of range"),
                       nanochat::Error);
}

TEST_CASE("data.parquet: missing and non-parquet files are named in the error") {
  CHECK_THROWS_WITH_AS(ParquetReader(kDir / "absent.parquet"), doctest::Contains("absent.parquet: cannot open"),
                       nanochat::Error);
  CHECK_THROWS_WITH_AS(ParquetReader(kDir / "expected.json"),
                       doctest::Contains("expected.json: does not start with PAR1"), nanochat::Error);
}

TEST_CASE("data.parquet: every truncation of a file fails cleanly") {
  std::string bytes = slurp(kDir / "zstd_plain_v1.parquet");
  for (std::size_t cut = 0; cut < bytes.size(); cut += 7) {
    CAPTURE(cut);
    CHECK_THROWS_WITH_AS(read_all(bytes.substr(0, cut), "cut.parquet"), doctest::Contains("cut.parquet"),
                         nanochat::Error);
  }
}

TEST_CASE("data.parquet: a wrong footer length is reported") {
  std::string bytes = slurp(kDir / "snappy_plain_v2.parquet");
  bytes[bytes.size() - 5] = '\x7f';  // high byte of the footer length
  CHECK_THROWS_WITH_AS(read_all(bytes, "f.parquet"), doctest::Contains("footer length"), nanochat::Error);
}

TEST_CASE("data.parquet: damaged page data fails with the row group named") {
  // Overwrite the whole data region (between the magic and the first row group's end) with a
  // pattern: page headers and compressed bodies become garbage, the footer stays valid.
  for (const char* name : {"zstd_plain_v1", "snappy_dict_v1", "gzip_plain_v2", "none_dict_v2"}) {
    CAPTURE(name);
    std::string bytes = slurp(kDir / (std::string(name) + ".parquet"));
    for (std::size_t i = 4; i < 400; ++i) bytes[i] = static_cast<char>(i * 37 + 11);
    CHECK_THROWS_WITH_AS(read_all(bytes, "d.parquet"), doctest::Contains("d.parquet: row group 0"),
                         nanochat::Error);
  }
}

TEST_CASE("data.parquet: single-byte corruption anywhere never crashes") {
  // Either an Error or (when the byte was unimportant, e.g. inside a string) a successful read.
  std::string original = slurp(kDir / "gzip_dict_v2.parquet");
  std::size_t errors = 0;
  for (std::size_t i = 0; i < original.size(); i += 3) {
    std::string bytes = original;
    bytes[i] = static_cast<char>(bytes[i] ^ 0x5a);
    try {
      read_all(bytes, "flip.parquet");
    } catch (const nanochat::Error& error) {
      CHECK(std::string(error.what()).find("flip.parquet") != std::string::npos);
      ++errors;
    }
  }
  CHECK(errors > 0);
}
