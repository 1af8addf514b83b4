#pragma once
// The whole content of a user's file as bytes; a missing file, a directory in its place or a
// failed read is an Error naming the file.

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>

#include "nanochat/core/error.hpp"

namespace nanochat {

inline std::string read_file(const std::filesystem::path& path) {
  std::error_code ec;
  NANOCHAT_CHECK(std::filesystem::is_regular_file(path, ec), path.string(), " is not a readable file");
  std::ifstream in(path, std::ios::binary);
  NANOCHAT_CHECK(in.good(), path.string(), ": cannot open");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  NANOCHAT_CHECK(!in.bad(), path.string(), ": cannot read");
  return text;
}

}  // namespace nanochat
