#pragma once
// Random-access bytes with a size and a name: a file read with pread (so a reader loads only
// the ranges it needs, never the whole file) or a buffer in memory (fuzzing, tests).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>

#include "nanochat/core/error.hpp"

namespace nanochat::data {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual std::uint64_t size() const = 0;
  // Fills dst with bytes [offset, offset + n); the caller has checked the range.
  virtual void read(std::uint64_t offset, std::size_t n, std::uint8_t* dst) const = 0;
  virtual const std::string& name() const = 0;

  // Reads a range after checking it lies inside the source; `what` says what the range is.
  void read_checked(std::uint64_t offset, std::size_t n, std::uint8_t* dst, const char* what) const {
    NANOCHAT_CHECK(offset <= size() && n <= size() - offset, name(), ": ", what, " [", offset,
                   ", +", n, ") lies outside the ", size(), "-byte file");
    read(offset, n, dst);
  }
};

class FileSource final : public ByteSource {
 public:
  explicit FileSource(const std::filesystem::path& path) : name_(path.string()) {
    fd_ = ::open(name_.c_str(), O_RDONLY | O_CLOEXEC);
    NANOCHAT_CHECK(fd_ >= 0, name_, ": cannot open: ", std::strerror(errno));
    struct stat info {};
    if (::fstat(fd_, &info) != 0 || !S_ISREG(info.st_mode)) {
      ::close(fd_);
      NANOCHAT_FAIL(name_, ": not a regular file");
    }
    size_ = static_cast<std::uint64_t>(info.st_size);
  }
  ~FileSource() override { ::close(fd_); }
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  std::uint64_t size() const override { return size_; }
  const std::string& name() const override { return name_; }

  void read(std::uint64_t offset, std::size_t n, std::uint8_t* dst) const override {
    while (n > 0) {
      ssize_t got = ::pread(fd_, dst, n, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      NANOCHAT_CHECK(got > 0, name_, ": read of ", n, " bytes at offset ", offset, " failed: ",
                     got == 0 ? "file shrank while reading" : std::strerror(errno));
      dst += got;
      offset += static_cast<std::uint64_t>(got);
      n -= static_cast<std::size_t>(got);
    }
  }

 private:
  std::string name_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

class MemorySource final : public ByteSource {
 public:
  MemorySource(const std::uint8_t* data, std::size_t size, std::string name)
      : data_(data), size_(size), name_(std::move(name)) {}

  std::uint64_t size() const override { return size_; }
  const std::string& name() const override { return name_; }
  void read(std::uint64_t offset, std::size_t n, std::uint8_t* dst) const override {
    if (n != 0) std::memcpy(dst, data_ + offset, n);
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::string name_;
};

}  // namespace nanochat::data
