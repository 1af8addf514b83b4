// safetensors: round trips through our writer, a file written by Python's `safetensors` package,
// and every class of corrupt file (each an Error naming the file and the problem, never a crash).

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "nanochat/core/safetensors.hpp"

using nanochat::bf16;
using nanochat::DType;
using nanochat::SafetensorsFile;
using nanochat::Shape;
using nanochat::TensorToSave;
namespace fs = std::filesystem;

namespace {

// A fresh directory per test case, removed afterwards.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("nanochat_st_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path operator/(const std::string& name) const { return path / name; }
};

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string le64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xFF);
  return s;
}

// A raw file: length field, header text as given, `data_bytes` bytes of data.
std::string raw_file(const std::string& header, std::size_t data_bytes) {
  return le64(header.size()) + header + std::string(data_bytes, '\x01');
}

// Loading `path` throws a nanochat::Error whose message names the file and contains `problem`.
void expect_corrupt(const fs::path& path, const std::string& problem) {
  try {
    (void)SafetensorsFile::load(path);
    FAIL("loading succeeded but should fail with: ", problem);
  } catch (const nanochat::Error& e) {
    const std::string message = e.what();
    INFO(message);
    CHECK(message.find(path.string()) != std::string::npos);
    CHECK(message.find(problem) != std::string::npos);
  }
}

void expect_corrupt_header(const TempDir& dir, const std::string& header, std::size_t data_bytes,
                           const std::string& problem) {
  const fs::path p = dir / "corrupt.safetensors";
  write_bytes(p, raw_file(header, data_bytes));
  INFO(header);
  expect_corrupt(p, problem);
}

}  // namespace

TEST_CASE("safetensors round trip keeps order, dtypes, shapes, values and metadata") {
  TempDir dir;
  const fs::path p = dir / "model.safetensors";
  std::vector<float> w(3 * 5);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i) * 0.1f - 0.7f;
  std::vector<bf16> e(4 * 3);
  for (std::size_t i = 0; i < e.size(); ++i) e[i] = bf16(static_cast<float>(i) * 1.5f - 4.f);
  const std::vector<std::int64_t> idx = {0, -1, 5, 1LL << 50};
  const std::vector<std::int32_t> counts = {7, -8, 9, 10, 11, 12};
  const std::vector<std::uint8_t> flags = {1, 0, 255};
  const float scalar = 3.25f;
  const std::vector<TensorToSave> tensors = {
      {"z.first", DType::u8, Shape{3}, flags.data()},  // odd size: later tensors become misaligned
      {"transformer.wte.weight", DType::bf16, Shape{4, 3}, e.data()},
      {"lm_head.weight", DType::f32, Shape{3, 5}, w.data()},
      {"idx", DType::i64, Shape{2, 2}, idx.data()},
      {"counts", DType::i32, Shape{1, 2, 1, 3}, counts.data()},
      {"loss", DType::f32, Shape{}, &scalar},
      {"nothing", DType::f32, Shape{0, 4}, nullptr},
  };
  const std::map<std::string, std::string> metadata = {
      {"n_layer", "2"}, {"quote\"and\\slash", "line\nbreak \xc3\xa9"}};
  nanochat::save_safetensors(p, tensors, metadata);
  CHECK_FALSE(fs::exists(p.string() + ".tmp"));

  const std::string bytes = read_bytes(p);
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i)
    header_len = (header_len << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  CHECK((8 + header_len) % 8 == 0);

  SafetensorsFile f = SafetensorsFile::load(p);
  CHECK(f.metadata() == metadata);
  REQUIRE(f.tensors().size() == tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    CHECK(f.tensors()[i].name == tensors[i].name);
    CHECK(f.tensors()[i].dtype == tensors[i].dtype);
    CHECK(f.tensors()[i].shape == tensors[i].shape);
  }
  const auto wv = f.values<float>("lm_head.weight");
  CHECK(std::vector<float>(wv.begin(), wv.end()) == w);
  const auto ev = f.values<bf16>("transformer.wte.weight");
  REQUIRE(ev.size() == e.size());
  for (std::size_t i = 0; i < e.size(); ++i) CHECK(ev[i].bits == e[i].bits);
  const auto iv = f.values<std::int64_t>("idx");
  CHECK(std::vector<std::int64_t>(iv.begin(), iv.end()) == idx);
  const auto cv = f.values<std::int32_t>("counts");
  CHECK(std::vector<std::int32_t>(cv.begin(), cv.end()) == counts);
  const auto fv = f.values<std::uint8_t>("z.first");
  CHECK(std::vector<std::uint8_t>(fv.begin(), fv.end()) == flags);
  CHECK(f.values<float>("loss")[0] == scalar);
  CHECK(f.values<float>("nothing").empty());
  for (const auto& t : f.tensors())
    CHECK(reinterpret_cast<std::uintptr_t>(t.bytes.data()) % nanochat::size_of(t.dtype) == 0);

  // Moving the file keeps the views valid (they point into its heap buffer).
  const SafetensorsFile moved = std::move(f);
  CHECK(moved.values<float>("lm_head.weight")[1] == w[1]);
}

TEST_CASE("safetensors lookups name the file, the tensor and the dtypes") {
  TempDir dir;
  const fs::path p = dir / "small.safetensors";
  const std::vector<float> v = {1.f, 2.f};
  nanochat::save_safetensors(p, std::vector<TensorToSave>{{"a", DType::f32, Shape{2}, v.data()}});
  const SafetensorsFile f = SafetensorsFile::load(p);
  CHECK(f.contains("a"));
  CHECK_FALSE(f.contains("b"));
  CHECK(f.metadata().empty());
  CHECK_THROWS_WITH_AS(f.at("b"), doctest::Contains("has no tensor 'b'"), nanochat::Error);
  const std::string path_text = p.string();
  CHECK_THROWS_WITH_AS(f.at("b"), doctest::Contains(path_text.c_str()), nanochat::Error);
  CHECK_THROWS_WITH_AS(f.values<bf16>("a"), doctest::Contains("tensor 'a' is F32 but BF16"),
                       nanochat::Error);
}

TEST_CASE("save_safetensors rejects duplicate, reserved and non-UTF-8 names and leaves no temp file") {
  TempDir dir;
  const fs::path p = dir / "bad.safetensors";
  const float x = 1.f;
  const std::vector<TensorToSave> dup = {{"a", DType::f32, Shape{1}, &x},
                                         {"a", DType::f32, Shape{1}, &x}};
  CHECK_THROWS_WITH_AS(nanochat::save_safetensors(p, dup), doctest::Contains("'a' given twice"),
                       nanochat::Error);
  const std::vector<TensorToSave> reserved = {{"__metadata__", DType::f32, Shape{1}, &x}};
  CHECK_THROWS_AS(nanochat::save_safetensors(p, reserved), nanochat::Error);
  const std::vector<TensorToSave> not_utf8 = {{"a\xFF", DType::f32, Shape{1}, &x}};
  CHECK_THROWS_WITH_AS(nanochat::save_safetensors(p, not_utf8), doctest::Contains("not UTF-8"), nanochat::Error);
  const std::vector<TensorToSave> one = {{"a", DType::f32, Shape{1}, &x}};
  CHECK_THROWS_WITH_AS(nanochat::save_safetensors(p, one, {{"k", "\xC3"}}), doctest::Contains("metadata 'k'"),
                       nanochat::Error);
  const std::vector<TensorToSave> no_data = {{"a", DType::f32, Shape{3}, nullptr}};
  CHECK_THROWS_WITH_AS(nanochat::save_safetensors(p, no_data), doctest::Contains("has no data"),
                       nanochat::Error);
  CHECK_THROWS_WITH_AS(nanochat::save_safetensors(dir / "no_such_dir" / "x.safetensors", no_data),
                       doctest::Contains("has no data"), nanochat::Error);
  const std::vector<TensorToSave> ok = {{"a", DType::f32, Shape{1}, &x}};
  CHECK_THROWS_WITH_AS(nanochat::save_safetensors(dir / "no_such_dir" / "x.safetensors", ok),
                       doctest::Contains("cannot create"), nanochat::Error);
  CHECK_FALSE(fs::exists(p));
  CHECK(fs::directory_iterator(dir.path) == fs::directory_iterator());
}

TEST_CASE("safetensors reads the file Python's safetensors package wrote") {
  const fs::path p = fs::path(NANOCHAT_FIXTURES) / "safetensors" / "python_written.safetensors";
  const SafetensorsFile f = SafetensorsFile::load(p);
  CHECK(f.metadata().at("format") == "pt");
  CHECK(f.metadata().at("note") == "written by safetensors \xc3\xa9\"\\");
  CHECK(f.tensors().size() == 7);

  CHECK(f.at("f32_3d").shape == Shape{2, 3, 4});
  const auto f32 = f.values<float>("f32_3d");
  REQUIRE(f32.size() == 24);
  for (std::size_t i = 0; i < f32.size(); ++i) CHECK(f32[i] == static_cast<float>(i) * 0.25f - 3.f);

  CHECK(f.at("bf16_2d").shape == Shape{5, 7});
  const auto b = f.values<bf16>("bf16_2d");
  REQUIRE(b.size() == 35);
  for (std::size_t i = 0; i < b.size(); ++i)
    CHECK(static_cast<float>(b[i]) == static_cast<float>(i) * 0.5f - 8.f);

  const auto i64 = f.values<std::int64_t>("i64_1d");
  REQUIRE(i64.size() == 6);
  for (std::size_t i = 0; i < i64.size(); ++i)
    CHECK(i64[i] == (std::int64_t{1} << 40) + static_cast<std::int64_t>(i) * 3 - 7);

  CHECK(f.at("i32_4d").shape == Shape{1, 2, 2, 3});
  const auto i32 = f.values<std::int32_t>("i32_4d");
  REQUIRE(i32.size() == 12);
  for (std::size_t i = 0; i < i32.size(); ++i) CHECK(i32[i] == -1000 * static_cast<std::int32_t>(i));

  const auto u8 = f.values<std::uint8_t>("u8_1d");
  REQUIRE(u8.size() == 40);
  for (std::size_t i = 0; i < u8.size(); ++i) CHECK(u8[i] == (i * 37) % 256);

  CHECK(f.at("scalar").shape.rank() == 0);
  CHECK(f.values<float>("scalar")[0] == 2.5f);
  CHECK(f.at("empty").shape == Shape{0, 3});
  CHECK(f.values<float>("empty").empty());
}

TEST_CASE("safetensors rejects corrupt files with the file and the problem named") {
  TempDir dir;
  const fs::path p = dir / "corrupt.safetensors";
  const std::string ok_entry = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

  SUBCASE("missing file") { expect_corrupt(dir / "absent.safetensors", "cannot read"); }
  SUBCASE("shorter than the length field") {
    write_bytes(p, "abc");
    expect_corrupt(p, "truncated: 3 bytes");
  }
  SUBCASE("header length beyond the file") {
    write_bytes(p, le64(1000) + "{}");
    expect_corrupt(p, "the header claims 1000 bytes but only 2 follow");
  }
  SUBCASE("absurd header length") {
    write_bytes(p, le64(~std::uint64_t{0}) + "{}");
    expect_corrupt(p, "exceeds the format's limit");
  }
  SUBCASE("malformed JSON") {
    expect_corrupt_header(dir, "", 0, "expected '{'");
    expect_corrupt_header(dir, "[1,2]", 0, "expected '{'");
    expect_corrupt_header(dir, "{\"a\":{\"dtype\":\"F32\"", 0, "invalid header");
    expect_corrupt_header(dir, "{\"a", 0, "unterminated string");
    expect_corrupt_header(dir, "{} x", 0, "unexpected text after the value");
    expect_corrupt_header(dir, "{\"a\":{\"dtype\":\"F\\q\"}}", 0, "invalid escape");
    expect_corrupt_header(dir, "{\"a\":{\"dtype\":\"F\\ud800\"}}", 0, "unpaired surrogate");
    expect_corrupt_header(dir, std::string("{\"a\x01\":1}"), 0, "raw control character");
  }
  SUBCASE("not UTF-8: a name, a metadata value") {
    expect_corrupt_header(dir, "{\"a\xFF\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                          "the header is not valid UTF-8");
    expect_corrupt_header(dir, "{\"__metadata__\":{\"k\":\"\xED\xA0\x80\"}}", 0,  // an encoded surrogate
                          "the header is not valid UTF-8");
  }
  SUBCASE("bad numbers") {
    expect_corrupt_header(dir, R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8,
                          "expected a non-negative integer");
    expect_corrupt_header(dir, R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8,
                          "fraction or exponent");
    expect_corrupt_header(
        dir, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,99999999999999999999]}})", 8,
        "does not fit 64 bits");
    expect_corrupt_header(dir, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8,
                          "must be [begin, end]");
  }
  SUBCASE("entry fields") {
    expect_corrupt_header(dir, R"({"a":{"dtype":"F32","shape":[2]}})", 8,
                          "needs dtype, shape and data_offsets");
    expect_corrupt_header(dir, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})",
                          8, "unexpected or repeated key 'x'");
    expect_corrupt_header(dir, R"({"a":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", 8,
                          "must be a string");
  }
  SUBCASE("duplicates and metadata") {
    expect_corrupt_header(dir, "{" + ok_entry + "," + ok_entry + "}", 8, "duplicate entry 'a'");
    expect_corrupt_header(dir, R"({"__metadata__":{"k":"1","k":"2"}})", 0,
                          "duplicate metadata key 'k'");
    expect_corrupt_header(dir, R"({"__metadata__":{"k":1}})", 0, "must be a string");
  }
  SUBCASE("unsupported dtype and rank") {
    expect_corrupt_header(dir, R"({"a":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})", 8,
                          "unsupported dtype 'F16'");
    expect_corrupt_header(dir,
                          R"({"a":{"dtype":"U8","shape":[1,1,1,1,2],"data_offsets":[0,2]}})", 2,
                          "has rank 5, more than the supported 4");
  }
  SUBCASE("sizes and offsets") {
    expect_corrupt_header(dir, R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8,
                          "spans 8 bytes but its F32 shape needs 12");
    expect_corrupt_header(dir, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8,
                          "begin after end");
    expect_corrupt_header(dir, "{" + ok_entry + "}", 5, "the data section has only 5 bytes");
    expect_corrupt_header(
        dir, R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8,
        "overflows");
    // Empty, so zero bytes, but the other extents' count does not fit a shape.
    expect_corrupt_header(dir, R"({"a":{"dtype":"U8","shape":[4611686018427387904,2,0],"data_offsets":[0,0]}})",
                          0, "tensor 'a' has a shape whose size overflows");
    expect_corrupt_header(dir, R"({"a":{"dtype":"U8","shape":[9223372036854775808,0],"data_offsets":[0,0]}})", 0,
                          "tensor 'a' has a shape whose size overflows");
    expect_corrupt_header(
        dir, "{" + ok_entry + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12,
        "tensor 'b' at byte 4 overlaps tensor 'a'");
    expect_corrupt_header(
        dir, "{" + ok_entry + R"(,"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})", 16,
        "gap of 4 bytes before tensor 'b'");
    expect_corrupt_header(dir, "{" + ok_entry + "}", 11, "3 bytes after the last tensor's data");
  }
}

TEST_CASE("safetensors survives every truncation and byte flip of a valid file") {
  TempDir dir;
  const fs::path good = dir / "good.safetensors";
  const std::vector<float> w = {1.f, 2.f, 3.f, 4.f, 5.f, 6.f};
  const std::vector<std::int64_t> idx = {3, 1, 4};
  nanochat::save_safetensors(good,
                             std::vector<TensorToSave>{{"w", DType::f32, Shape{2, 3}, w.data()},
                                                       {"idx", DType::i64, Shape{3}, idx.data()}},
                             {{"k", "v"}});
  const std::string bytes = read_bytes(good);
  const fs::path p = dir / "mangled.safetensors";
  int failures = 0;
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    write_bytes(p, bytes.substr(0, n));
    try {
      (void)SafetensorsFile::load(p);
    } catch (const nanochat::Error&) {
      ++failures;
    }
  }
  CHECK(failures == static_cast<int>(bytes.size()));  // every proper prefix is invalid
  // Flipping bytes may yield another valid file (a changed value) but never anything but Error.
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (unsigned x : {0x01u, 0x20u, 0x80u, 0xFFu}) {
      std::string mangled = bytes;
      mangled[i] = static_cast<char>(static_cast<unsigned char>(mangled[i]) ^ x);
      write_bytes(p, mangled);
      try {
        (void)SafetensorsFile::load(p);
      } catch (const nanochat::Error&) {
      }
    }
  }
}
