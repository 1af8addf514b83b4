#pragma once
// Runs a shell command line for the programs' end-to-end tests and returns its exit status with
// its stdout and stderr together, in the order they were written.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include <doctest/doctest.h>

namespace nanochat::testing {

struct Run {
  int status;  // the exit status; -1 when the program did not exit (a signal)
  std::string output;
};

inline Run run(const std::string& command) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buf{};
  while (const std::size_t n = std::fread(buf.data(), 1, buf.size(), pipe)) output.append(buf.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

}  // namespace nanochat::testing
