// The parquet reader against pyarrow: every fixture written by tests/reference/make_parquet_fixtures.py
// must decode to exactly what pyarrow read back, and damaged files must fail with an Error that
// names the file, never crash.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "nanochat/core/json.hpp"
#include "nanochat/data/delta_encoding.hpp"
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

// One row group as pyarrow read it: nullopt is a null value.
using Group = std::vector<std::optional<std::string>>;

// expected.json: {"name": [[row group 0 texts...], ...], ...}; null means a null value.
std::map<std::string, std::vector<Group>> load_expected() {
  const std::string text = slurp(kDir / "expected.json");
  nanochat::json::Reader in(text, "expected.json");
  std::map<std::string, std::vector<Group>> out;
  in.read_object([&](const std::string& name) {
    auto& groups = out[name];
    in.read_array([&] {
      auto& group = groups.emplace_back();
      in.read_array([&] {
        if (in.accept_null()) {
          group.emplace_back();
        } else {
          group.emplace_back(in.read_string());
        }
      });
    });
  });
  in.finish();
  return out;
}

// What the reader returns for a group: its non-null values, in order.
std::vector<std::string> values_of(const Group& group) {
  std::vector<std::string> out;
  for (const auto& value : group) {
    if (value) out.push_back(*value);
  }
  return out;
}

std::size_t nulls_of(const Group& group) {
  return static_cast<std::size_t>(std::count(group.begin(), group.end(), std::nullopt));
}

ParquetReader open_bytes(const std::string& bytes, const std::string& name, nanochat::data::ParquetOptions options = {}) {
  return ParquetReader(std::make_unique<MemorySource>(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                                      bytes.size(), name),
                       options);
}

// Opens bytes held in memory and decodes every row group's "text" column.
std::vector<std::vector<std::string>> read_all(const std::string& bytes, const std::string& name) {
  ParquetReader reader = open_bytes(bytes, name);
  std::vector<std::vector<std::string>> groups;
  for (std::size_t g = 0; g < reader.num_row_groups(); ++g) groups.push_back(reader.read_strings(g, "text"));
  return groups;
}

}  // namespace

TEST_CASE("data.parquet: every codec, encoding and page version decodes exactly as pyarrow reads it") {
  auto expected = load_expected();
  // 4 codecs x {PLAIN, dictionary} x {v1, v2}, 4 codecs x {DELTA_BYTE_ARRAY, DELTA_LENGTH_BYTE_ARRAY}
  // on v2 pages, DELTA_BYTE_ARRAY on v1 and with long shared prefixes, REQUIRED, two columns,
  // zero rows, an empty row group.
  REQUIRE(expected.size() == 30);
  std::size_t nulls_seen = 0;
  for (const auto& [name, groups] : expected) {
    CAPTURE(name);
    ParquetReader reader(kDir / (name + ".parquet"));
    REQUIRE(reader.num_row_groups() == groups.size());
    // Several row groups per file, as the generator asks; a zero-row file has one, empty.
    CHECK(groups.size() == (name == "zero_rows" ? 1 : 3));
    std::size_t rows = 0;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      CAPTURE(g);
      CHECK(reader.row_group_rows(g) == static_cast<std::int64_t>(groups[g].size()));
      std::vector<std::string> out{"kept"};  // read_strings appends
      CHECK(reader.read_strings(g, reader.column_index("text"), out) == nulls_of(groups[g]));
      out.erase(out.begin());
      CHECK(out == values_of(groups[g]));
      rows += groups[g].size();
      nulls_seen += nulls_of(groups[g]);
    }
    CHECK(reader.num_rows() == static_cast<std::int64_t>(rows));
  }
  CHECK(nulls_seen > 50);  // the fixtures do hold nulls (pages of them, too), so counting is tested
}

TEST_CASE("data.parquet: a zero-row file and an empty row group are valid and empty") {
  ParquetReader empty(kDir / "zero_rows.parquet");
  CHECK(empty.num_rows() == 0);
  REQUIRE(empty.num_row_groups() == 1);
  std::vector<std::string> out;
  CHECK(empty.read_strings(0, 0, out) == 0);
  CHECK(out.empty());
  ParquetReader gap(kDir / "empty_row_group.parquet");
  REQUIRE(gap.num_row_groups() == 3);
  CHECK(gap.row_group_rows(1) == 0);
  CHECK(gap.read_strings(1, 0, out) == 0);
  CHECK(out.empty());
  CHECK(gap.read_strings(0, 0, out) == 1);  // "a", null, "": the empty string is a value
  CHECK(out == std::vector<std::string>{"a", ""});
  CHECK(gap.read_strings(2, "text") == std::vector<std::string>{"b"});
}

TEST_CASE("data.parquet: row groups can be read in any order and more than once") {
  for (const char* name : {"zstd_dict_v2", "zstd_delta_v2"}) {
    CAPTURE(name);
    auto expected = load_expected()[name];
    ParquetReader reader(kDir / (std::string(name) + ".parquet"));
    for (std::size_t g : {2u, 0u, 2u, 1u}) CHECK(reader.read_strings(g, "text") == values_of(expected[g]));
  }
}

TEST_CASE("data.parquet: columns are found by name and the wrong ones are refused") {
  ParquetReader reader(kDir / "two_columns.parquet");
  CHECK(reader.column_names() == std::vector<std::string>{"id", "text"});
  CHECK(reader.column_index("text") == 1);
  CHECK(reader.read_strings(0, "text") == values_of(load_expected()["two_columns"][0]));
  CHECK_THROWS_WITH_AS(reader.column_index("body"), doctest::Contains("no column named 'body'"),
                       nanochat::Error);
  std::vector<std::string> out;
  CHECK_THROWS_WITH_AS(reader.read_strings(0, 0, out),
                       doctest::Contains("column 'id': physical type INT64 (2) is not BYTE_ARRAY"),
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
  for (const char* name : {"zstd_plain_v1", "zstd_delta_v2"}) {
    CAPTURE(name);
    std::string bytes = slurp(kDir / (std::string(name) + ".parquet"));
    for (std::size_t cut = 0; cut < bytes.size(); cut += 7) {
      CAPTURE(cut);
      CHECK_THROWS_WITH_AS(read_all(bytes.substr(0, cut), "cut.parquet"), doctest::Contains("cut.parquet"),
                           nanochat::Error);
    }
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
  // The uncompressed delta file puts the flips straight into the delta decoders' input.
  for (const char* name : {"gzip_dict_v2", "none_delta_v2", "none_delta_length_v2"}) {
    CAPTURE(name);
    std::string original = slurp(kDir / (std::string(name) + ".parquet"));
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
}

namespace {

void put_uleb128(std::vector<std::uint8_t>& out, std::uint64_t value) {
  do {
    std::uint8_t byte = value & 0x7F;
    value >>= 7;
    out.push_back(value != 0 ? byte | 0x80 : byte);
  } while (value != 0);
}

void put_zigzag(std::vector<std::uint8_t>& out, std::int64_t value) {
  put_uleb128(out, (static_cast<std::uint64_t>(value) << 1) ^ static_cast<std::uint64_t>(value >> 63));
}

// A DELTA_BINARY_PACKED writer written from Encodings.md, to test the decoder against: each
// miniblock uses at least `min_width` bits (so every width 0..64 can be forced), arithmetic wraps,
// and the last block's unused miniblocks get a garbage width byte and no body, as the spec allows.
std::vector<std::uint8_t> encode_delta(const std::vector<std::int64_t>& values, std::uint64_t block_size,
                                       std::uint64_t miniblocks, int min_width = 0) {
  std::vector<std::uint8_t> out;
  put_uleb128(out, block_size);
  put_uleb128(out, miniblocks);
  put_uleb128(out, values.size());
  put_zigzag(out, values.empty() ? 0 : values[0]);
  const std::uint64_t per_miniblock = block_size / miniblocks;
  for (std::size_t start = 1; start < values.size(); start += block_size) {
    std::size_t stop = std::min<std::size_t>(values.size(), start + block_size);
    std::vector<std::uint64_t> deltas;
    for (std::size_t i = start; i < stop; ++i) {
      deltas.push_back(static_cast<std::uint64_t>(values[i]) - static_cast<std::uint64_t>(values[i - 1]));
    }
    std::uint64_t min_delta = *std::min_element(deltas.begin(), deltas.end(), [](std::uint64_t a, std::uint64_t b) {
      return static_cast<std::int64_t>(a) < static_cast<std::int64_t>(b);
    });
    put_zigzag(out, static_cast<std::int64_t>(min_delta));
    std::size_t widths_at = out.size();
    out.resize(out.size() + miniblocks, 0xEE);  // unused miniblocks keep this garbage width
    for (std::uint64_t m = 0; m * per_miniblock < deltas.size(); ++m) {
      int width = min_width;
      for (std::uint64_t i = m * per_miniblock; i < std::min<std::uint64_t>(deltas.size(), (m + 1) * per_miniblock); ++i) {
        std::uint64_t relative = deltas[i] - min_delta;
        while (width < 64 && (relative >> width) != 0) ++width;
      }
      out[widths_at + m] = static_cast<std::uint8_t>(width);
      std::vector<std::uint8_t> body(per_miniblock * static_cast<std::uint64_t>(width) / 8, 0);
      for (std::uint64_t i = 0; i < per_miniblock && m * per_miniblock + i < deltas.size(); ++i) {
        std::uint64_t relative = deltas[m * per_miniblock + i] - min_delta;
        for (int b = 0; b < width; ++b) {
          std::uint64_t bit = i * static_cast<std::uint64_t>(width) + static_cast<std::uint64_t>(b);
          if ((relative >> b) & 1) body[bit / 8] |= static_cast<std::uint8_t>(1u << (bit % 8));
        }
      }
      out.insert(out.end(), body.begin(), body.end());
    }
  }
  return out;
}

// Decodes and checks the values and that the decoder stops exactly where the stream ends.
void check_round_trip(const std::vector<std::int64_t>& values, std::uint64_t block_size, std::uint64_t miniblocks,
                      int min_width = 0) {
  std::vector<std::uint8_t> bytes = encode_delta(values, block_size, miniblocks, min_width);
  const std::size_t stream = bytes.size();
  bytes.insert(bytes.end(), {0xAB, 0xCD});  // what follows the stream in a page
  std::vector<std::int64_t> out{123};
  const std::uint8_t* end = nanochat::data::decode_delta_binary_packed(bytes.data(), bytes.data() + bytes.size(),
                                                                       values.size(), out, "delta");
  CHECK(out == values);
  CHECK(end == bytes.data() + stream);
}

}  // namespace

TEST_CASE("data.parquet: DELTA_BINARY_PACKED decodes what the spec's encoding writes") {
  std::mt19937_64 rng(7);
  SUBCASE("small counts: no block at all for a single value") {
    check_round_trip({}, 128, 4);
    check_round_trip({42}, 128, 4);
    check_round_trip({-5, 7}, 128, 4);
  }
  SUBCASE("several blocks and miniblocks, negative deltas, a final partial miniblock") {
    for (std::size_t count : {31u, 32u, 33u, 127u, 128u, 129u, 200u, 257u, 1000u}) {
      CAPTURE(count);
      std::vector<std::int64_t> values(count);
      for (auto& v : values) v = static_cast<std::int64_t>(rng() % 2001) - 1000;
      check_round_trip(values, 128, 4);
      check_round_trip(values, 256, 8);
      check_round_trip(values, 128, 1);
    }
  }
  SUBCASE("every bit width 0..64, wrapping arithmetic at the int64 limits") {
    for (int width = 0; width <= 64; ++width) {
      CAPTURE(width);
      std::vector<std::int64_t> values(70);
      for (auto& v : values) v = static_cast<std::int64_t>(width == 64 ? rng() : rng() & ((1ull << width) - 1));
      check_round_trip(values, 128, 4, width);
    }
    check_round_trip({INT64_MAX, INT64_MIN, INT64_MAX, 0, INT64_MIN, -1}, 128, 4);
  }
}

TEST_CASE("data.parquet: corrupt DELTA_BINARY_PACKED streams fail naming the stream") {
  std::vector<std::int64_t> values(300);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<std::int64_t>(i * i % 97);
  const std::vector<std::uint8_t> good = encode_delta(values, 128, 4);
  std::vector<std::int64_t> out;
  auto decode = [&](const std::vector<std::uint8_t>& bytes, std::size_t count) {
    nanochat::data::decode_delta_binary_packed(bytes.data(), bytes.data() + bytes.size(), count, out, "page 3 lengths");
  };
  for (std::size_t cut = 0; cut < good.size(); ++cut) {
    CAPTURE(cut);
    CHECK_THROWS_WITH_AS(decode({good.begin(), good.begin() + static_cast<std::ptrdiff_t>(cut)}, values.size()),
                         doctest::Contains("page 3 lengths: DELTA_BINARY_PACKED"), nanochat::Error);
  }
  CHECK_THROWS_WITH_AS(decode(good, 299), doctest::Contains("holds 300 values, the page needs 299"), nanochat::Error);
  std::vector<std::uint8_t> huge;  // a header claiming 2^62 values must not allocate them
  for (std::uint64_t v : {128ull, 4ull, 1ull << 62, 0ull}) put_uleb128(huge, v);
  CHECK_THROWS_WITH_AS(decode(huge, 10), doctest::Contains("holds 4611686018427387904 values"), nanochat::Error);
  for (auto [block, miniblocks] : {std::pair{0ull, 1ull}, {100ull, 1ull}, {128ull, 0ull}, {128ull, 8ull},
                                  {1ull << 40, 1ull}}) {
    CAPTURE(block);
    CAPTURE(miniblocks);
    std::vector<std::uint8_t> bytes;
    for (std::uint64_t v : {block, miniblocks, 1ull, 0ull}) put_uleb128(bytes, v);
    CHECK_THROWS_AS(decode(bytes, 1), nanochat::Error);
  }
  // All deltas 0: the header takes 6 bytes and the min delta 1, so the first width is byte 7.
  std::vector<std::uint8_t> wide = encode_delta(std::vector<std::int64_t>(300, 0), 128, 4, 3);
  REQUIRE(wide[7] == 3);
  wide[7] = 65;
  CHECK_THROWS_WITH_AS(decode(wide, 300), doctest::Contains("bit width 65 is over 64"), nanochat::Error);
  std::vector<std::uint8_t> endless{0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A};
  CHECK_THROWS_WITH_AS(decode(endless, 1), doctest::Contains("block size is longer than 10 bytes"), nanochat::Error);
}

TEST_CASE("data.parquet: unsupported encodings and codecs are named in the error") {
  // zstd_delta_v1's v1 page headers: num_values, then encoding DELTA_BYTE_ARRAY (7, zigzag 14),
  // then RLE (3, zigzag 6) for both level encodings; rewrite the value encoding in place.
  const std::string original = slurp(kDir / "zstd_delta_v1.parquet");
  const std::string pattern("\x15\x0e\x15\x06\x15\x06", 6);
  REQUIRE(original.find(pattern) != std::string::npos);
  for (auto [code, message] : {std::pair{'\x0a', "value encoding DELTA_BINARY_PACKED (5) is not supported for BYTE_ARRAY"},
                               {'\x12', "value encoding BYTE_STREAM_SPLIT (9) is not supported for BYTE_ARRAY"},
                               {'\x54', "value encoding unknown (42) is not supported"}}) {
    CAPTURE(message);
    std::string bytes = original;
    for (std::size_t at = bytes.find(pattern); at != std::string::npos; at = bytes.find(pattern, at + 1)) {
      bytes[at + 1] = code;
    }
    CHECK_THROWS_WITH_AS(read_all(bytes, "enc.parquet"), doctest::Contains("enc.parquet: row group 0, column 'text': data page 0"),
                         nanochat::Error);
    CHECK_THROWS_WITH_AS(read_all(bytes, "enc.parquet"), doctest::Contains(message), nanochat::Error);
  }
  std::vector<std::uint8_t> page{1, 2, 3};
  CHECK_THROWS_WITH_AS(nanochat::data::decompress(nanochat::data::parquet::Codec::lz4_raw, page.data(), page.size(),
                                                  page.data(), page.size(), "p"),
                       doctest::Contains("compression codec LZ4_RAW (7) is not supported"), nanochat::Error);
}

TEST_CASE("data.parquet: DELTA_BYTE_ARRAY pages cannot expand past the page limit") {
  // Shared prefixes are stored once: a limit far above every page's size but below what the
  // prefixes expand to must still stop the decoder.
  const std::string bytes = slurp(kDir / "zstd_delta_shared_prefix.parquet");
  ParquetReader reader = open_bytes(bytes, "x.parquet", {.max_page_bytes = 4096});
  std::vector<std::string> out;
  CHECK_THROWS_WITH_AS(reader.read_strings(0, 0, out), doctest::Contains("DELTA_BYTE_ARRAY values exceed the 4096-byte limit"),
                       nanochat::Error);
}
