#pragma once
// Where a training step's time goes, by layer type. A model given a StepProfile times each
// section of its forward and backward; without one, timing costs a null check.

#include <array>
#include <chrono>
#include <string_view>

namespace nanochat {

enum class StepSection { embedding, norms, linears, rotary, attention, activation, lm_head, loss, count };

constexpr std::string_view section_name(StepSection s) {
  constexpr std::array<std::string_view, static_cast<std::size_t>(StepSection::count)> names{
      "embedding", "rmsnorm (incl. QK-norm)", "block linears", "rotary", "attention",
      "relu^2", "lm_head", "softcap + cross-entropy"};
  return names[static_cast<std::size_t>(s)];
}

struct StepProfile {
  std::array<double, static_cast<std::size_t>(StepSection::count)> seconds{};

  double total() const {
    double t = 0;
    for (double s : seconds) t += s;
    return t;
  }
};

// Adds the scope's host wall time to one section: exact for the synchronous Cpu backend.
class SectionTimer {
 public:
  SectionTimer(StepProfile* profile, StepSection section)
      : profile_(profile), section_(section),
        start_(profile ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{}) {}
  ~SectionTimer() {
    if (profile_ == nullptr) return;
    const std::chrono::duration<double> d = std::chrono::steady_clock::now() - start_;
    profile_->seconds[static_cast<std::size_t>(section_)] += d.count();
  }
  SectionTimer(const SectionTimer&) = delete;
  SectionTimer& operator=(const SectionTimer&) = delete;

 private:
  StepProfile* profile_;
  StepSection section_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace nanochat
