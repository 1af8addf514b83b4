#pragma once
// Checkpoint file names carry their step as nanochat writes it: <prefix><step><suffix> with the
// step zero-padded to six digits (model_000200.safetensors, meta_000200.json; 1234567 has seven).
// Parsing takes only that exact form, so a stray name in a checkpoint directory (model_abc.json,
// a step too large for int64, a differently padded copy) is no step, never an exception. A step
// is a complete checkpoint when its weights and its meta file are there; the trainer and the
// programs that load checkpoints go by this one rule.

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>

namespace nanochat {

inline std::string step_file_name(std::string_view prefix, std::int64_t step, std::string_view suffix) {
  char digits[24];
  std::snprintf(digits, sizeof digits, "%06lld", static_cast<long long>(step));
  return std::string(prefix) + digits + std::string(suffix);
}

// The step of `name` if it is exactly step_file_name(prefix, step, suffix) for a step >= 0.
inline std::optional<std::int64_t> parse_step_file_name(std::string_view name, std::string_view prefix,
                                                        std::string_view suffix) {
  if (name.size() <= prefix.size() + suffix.size() || !name.starts_with(prefix) || !name.ends_with(suffix))
    return std::nullopt;
  const std::string_view digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.size() < 6 || (digits.size() > 6 && digits[0] == '0')) return std::nullopt;
  std::int64_t step = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), step);
  if (ec != std::errc{} || end != digits.data() + digits.size() || step < 0) return std::nullopt;
  return step;
}

// Whether dir holds a complete checkpoint of `step`: its weights and its meta file (written last,
// so a run stopped while saving leaves no meta and the step is not taken).
inline bool is_complete_checkpoint(const std::filesystem::path& dir, std::int64_t step) {
  std::error_code ec;
  return std::filesystem::is_regular_file(dir / step_file_name("model_", step, ".safetensors"), ec) &&
         std::filesystem::is_regular_file(dir / step_file_name("meta_", step, ".json"), ec);
}

// A fresh id for one save of a checkpoint step, written into each of its files so that files of
// different saves are never taken for one checkpoint.
inline std::string new_save_id() {
  std::random_device entropy;
  const std::uint64_t id = (std::uint64_t{entropy()} << 32) ^ entropy();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(id));
  return buf;
}

// The largest step with a complete checkpoint in dir; -1 if none. Names that are not a step's
// files are skipped.
inline std::int64_t latest_complete_step(const std::filesystem::path& dir) {
  std::int64_t best = -1;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const auto step = parse_step_file_name(e.path().filename().string(), "model_", ".safetensors");
    if (step && *step > best && is_complete_checkpoint(dir, *step)) best = *step;
  }
  return best;
}

}  // namespace nanochat
