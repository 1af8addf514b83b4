#pragma once
// The one error type of the library. Messages say what is wrong with which thing, and the
// source location says where it was detected: "gemm: A has shape [3, 4] but ... (at gemm.hpp:42)".

#include <source_location>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace nanochat {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message,
                 std::source_location where = std::source_location::current())
      : std::runtime_error(message + located(where)), where_(where) {}

  const std::source_location& where() const noexcept { return where_; }

 private:
  static std::string located(const std::source_location& where) {
    std::string file = where.file_name();
    if (auto slash = file.rfind("include/nanochat/"); slash != std::string::npos) {
      file = file.substr(slash + 8);  // keep "nanochat/..." so the path reads like an include
    }
    return " (at " + file + ":" + std::to_string(where.line()) + ")";
  }

  std::source_location where_;
};

// Concatenates anything streamable into one string; the building block of error messages.
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

namespace detail {
template <class... Parts>
[[noreturn]] void throw_error(std::source_location where, const Parts&... parts) {
  throw Error(cat(parts...), where);
}
}  // namespace detail

}  // namespace nanochat

// NANOCHAT_CHECK(cond, message parts...): throws nanochat::Error with the parts joined when cond
// is false. A macro only so the caller's source location is captured.
#define NANOCHAT_CHECK(cond, ...)                                                          \
  do {                                                                                     \
    if (!(cond)) [[unlikely]]                                                              \
      ::nanochat::detail::throw_error(std::source_location::current(), __VA_ARGS__);       \
  } while (0)

#define NANOCHAT_FAIL(...) ::nanochat::detail::throw_error(std::source_location::current(), __VA_ARGS__)
