#pragma once
// Shared by the libFuzzer targets (tests/*/fuzz_*.cpp, built by nanochat_fuzz_test): how a target
// asserts what must hold, where it puts the files a reader opens by path, and how one input
// becomes several files. A failed invariant aborts, so libFuzzer saves the input that broke it.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "data/temp_dir.hpp"
#include "nanochat/core/error.hpp"

namespace nanochat::fuzz {

inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant failed: %s\n", what);
    std::abort();
  }
}

// Errors on a user's file must say which file (or document) they are about.
inline void check_names(const Error& e, std::string_view name) {
  if (std::string_view(e.what()).find(name) == std::string_view::npos) {
    std::fprintf(stderr, "fuzz invariant failed: the error does not name %.*s: %s\n",
                 static_cast<int>(name.size()), name.data(), e.what());
    std::abort();
  }
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// One scratch directory per fuzzing process, kept for the whole run: readers that take a path
// get each input as a file in it.
inline const data::testing::TempDir& scratch() {
  static const data::testing::TempDir dir;
  return dir;
}

inline std::filesystem::path write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  check(out.good(), "writing a scratch file");
  return path;
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The input cut at its first `count - 1` NUL bytes: one part per file of a multi-file format
// whose files hold no NUL (text formats), so the cut loses nothing the formats can express.
inline std::vector<std::string_view> split_at_nul(std::string_view input, std::size_t count) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < count) {
    const std::size_t nul = input.find('\0');
    if (nul == std::string_view::npos) break;
    parts.push_back(input.substr(0, nul));
    input.remove_prefix(nul + 1);
  }
  parts.push_back(input);
  parts.resize(count);
  return parts;
}

// Seeds a target makes itself (files that must fit a Config compiled into it, or the format a
// writer of the library produces today) go into the run's first corpus directory, the first
// argument that names a directory; running on single inputs writes none.
inline void write_seed(int argc, char** argv, const std::string& name, std::string_view bytes) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i][0] == '-') continue;
    std::error_code ec;
    if (std::filesystem::is_directory(argv[i], ec)) write_file(std::filesystem::path(argv[i]) / name, bytes);
    return;
  }
}

}  // namespace nanochat::fuzz
