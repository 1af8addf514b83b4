#pragma once
// The tail of a training log line for people watching a terminal: a 20-column bar of the run's
// progress and the estimated time left. Empty when the log is not a terminal (a log file keeps
// nanochat's line as it is).

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace nanochat {

// fraction: of the run done after this step (0..1); eta_seconds: the time left.
inline std::string progress_bar(std::FILE* log, double fraction, double eta_seconds) {
  if (!isatty(fileno(log))) return {};
  constexpr int width = 20;
  const int done = std::clamp(static_cast<int>(width * fraction), 0, width);
  const auto eta = static_cast<long long>(std::max(0.0, eta_seconds));
  return " [" + std::string(static_cast<std::size_t>(done), '#') + std::string(static_cast<std::size_t>(width - done), '.') +
         "] ETA " + std::to_string(eta / 60) + "m" + std::to_string(eta % 60) + "s";
}

}  // namespace nanochat
