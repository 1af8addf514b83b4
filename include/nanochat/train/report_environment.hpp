#pragma once
// What the report card says about where a run happened (nanochat's report.py header): the git
// checkout of the working directory, the CPU, its cores and memory, the compiler that built the
// program, and the local time as nanochat writes it ("YYYY-MM-DD HH:MM:SS"). Everything is best
// effort: a fact that cannot be found reads "unknown" and never stops a stage.

#include <sys/utsname.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "nanochat/core/error.hpp"

namespace nanochat::report {

// The local time as nanochat's timestamps: "2026-12-07 12:39:32".
inline std::string local_timestamp(std::time_t when = std::time(nullptr)) {
  std::tm local{};
  localtime_r(&when, &local);
  std::array<char, 32> text{};
  std::strftime(text.data(), text.size(), "%Y-%m-%d %H:%M:%S", &local);
  return text.data();
}

// A shell command's standard output without its trailing newlines; nullopt when it cannot run or
// exits non-zero (no git, not a checkout). Its stderr is discarded.
inline std::optional<std::string> command_output(const std::string& command) {
  std::FILE* pipe = ::popen((command + " 2>/dev/null").c_str(), "r");
  if (pipe == nullptr) return std::nullopt;
  std::string out;
  std::array<char, 4096> buf{};
  while (const std::size_t n = std::fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
  if (::pclose(pipe) != 0) return std::nullopt;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

struct GitInfo {
  std::string branch = "unknown", commit = "unknown", message;
  bool dirty = false;
};

inline GitInfo git_info() {
  GitInfo g;
  if (auto commit = command_output("git rev-parse --short HEAD")) g.commit = *commit;
  if (auto branch = command_output("git rev-parse --abbrev-ref HEAD")) g.branch = *branch;
  if (auto status = command_output("git status --porcelain")) g.dirty = !status->empty();
  if (auto message = command_output("git log -1 --pretty=%B")) g.message = message->substr(0, message->find('\n')).substr(0, 80);
  return g;
}

struct HardwareInfo {
  std::string platform = "unknown", cpu_model = "unknown";
  std::size_t physical_cores = 0, logical_cpus = 0;
  double memory_gb = 0.0;
};

// /proc/cpuinfo's model name and its distinct (physical id, core id) pairs; the processors online
// and the physical memory from sysconf.
inline HardwareInfo hardware_info() {
  HardwareInfo h;
  if (utsname u{}; ::uname(&u) == 0) h.platform = u.sysname;
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN), pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  h.logical_cpus = online > 0 ? static_cast<std::size_t>(online) : 0;
  if (pages > 0 && page > 0) h.memory_gb = static_cast<double>(pages) * static_cast<double>(page) / (1024.0 * 1024.0 * 1024.0);
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string physical_id;
  for (std::string line; std::getline(cpuinfo, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
    const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "model name" && h.cpu_model == "unknown") h.cpu_model = value;
    if (key == "physical id") physical_id = value;
    if (key == "core id") cores.emplace(physical_id, value);
  }
  h.physical_cores = cores.empty() ? h.logical_cpus : cores.size();
  return h;
}

// The compiler that built this program, as its predefined macros name it.
inline std::string compiler_name() {
#if defined(__clang__)
  return cat("Clang ", __clang_major__, ".", __clang_minor__, ".", __clang_patchlevel__);
#elif defined(__GNUC__)
  return cat("GCC ", __GNUC__, ".", __GNUC_MINOR__, ".", __GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

// "optimized" or "debug": timings of a debug build mean little, so the report says which.
inline const char* build_kind() {
#ifdef NDEBUG
  return "optimized (NDEBUG)";
#else
  return "debug (assertions on)";
#endif
}

// One line for a stage's section, so a section read alone says where its numbers come from.
inline std::string environment_line() {
  const HardwareInfo h = hardware_info();
  std::array<char, 32> memory{};
  std::snprintf(memory.data(), memory.size(), "%.1f GB", h.memory_gb);
  return cat(h.cpu_model, ", ", h.logical_cpus, " logical CPUs, ", memory.data(), "; ", compiler_name(), ", ",
             build_kind(), "; commit ", git_info().commit);
}

}  // namespace nanochat::report
