#pragma once
// Writing a file as one unit that survives a crash: the bytes go to path + ".tmp", which is
// fsynced and renamed over path, and then the directory is fsynced so that the rename itself is
// on disk. A reader sees the old file or the new one, never a half-written one. Every failure is
// an Error naming the file and saying what failed with errno's text ("No space left on device").

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "nanochat/core/error.hpp"

namespace nanochat {

// Makes the directory's entries (a rename, a removal) durable.
inline void fsync_directory(const std::filesystem::path& dir) {
  const std::string name = dir.empty() ? "." : dir.string();
  const int fd = ::open(name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  NANOCHAT_CHECK(fd >= 0, "directory ", name, ": cannot open to sync it: ", std::strerror(errno));
  const bool synced = ::fsync(fd) == 0;
  const std::string why = synced ? "" : std::strerror(errno);
  ::close(fd);
  NANOCHAT_CHECK(synced, "directory ", name, ": fsync failed: ", why);
}

// Writes the pieces, in order, as the whole content of path (see the top of this file).
inline void write_file_atomically(const std::filesystem::path& path, std::span<const std::span<const std::byte>> pieces) {
  const std::string file = path.string(), tmp = file + ".tmp";
  std::error_code ignored;  // removing a failed temp file is best effort
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  NANOCHAT_CHECK(fd >= 0, file, ": cannot create ", tmp, ": ", std::strerror(errno));
  const auto fail = [&](std::string_view what) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    std::filesystem::remove(tmp, ignored);
    NANOCHAT_FAIL(file, ": ", what, " ", tmp, " failed: ", why);
  };
  for (std::span<const std::byte> piece : pieces) {
    const auto* p = reinterpret_cast<const char*>(piece.data());
    std::size_t size = piece.size();
    while (size > 0) {
      const ssize_t n = ::write(fd, p, std::min<std::size_t>(size, std::size_t{1} << 30));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (n == 0) errno = EIO;  // a write that makes no progress would otherwise loop forever
        fail("writing");
      }
      p += n;
      size -= static_cast<std::size_t>(n);
    }
  }
  if (::fsync(fd) != 0) fail("fsync of");
  if (::close(fd) != 0) {
    const std::string why = std::strerror(errno);
    std::filesystem::remove(tmp, ignored);
    NANOCHAT_FAIL(file, ": closing ", tmp, " failed: ", why);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ignored);
    NANOCHAT_FAIL(file, ": cannot rename ", tmp, " to it: ", ec.message());
  }
  fsync_directory(path.parent_path());
}

inline void write_file_atomically(const std::filesystem::path& path, std::string_view text) {
  const std::span<const std::byte> piece{reinterpret_cast<const std::byte*>(text.data()), text.size()};
  write_file_atomically(path, std::span<const std::span<const std::byte>>(&piece, 1));
}

// Removes path if it exists and makes the removal durable; a failure names the file.
inline void remove_file_durably(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::remove(path, ec)) {
    NANOCHAT_CHECK(!ec, path.string(), ": cannot remove: ", ec.message());
    return;  // it was not there
  }
  fsync_directory(path.parent_path());
}

}  // namespace nanochat
