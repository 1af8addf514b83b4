#pragma once
// Command-line flags for the example programs, in nanochat's spelling: `--depth=20` or
// `--depth 20`, with `--device_batch_size` and `--device-batch-size` the same flag. Every flag
// binds to a variable that holds its default. An unknown flag or a bad value is an Error that
// names the flag; `--help` prints the flags with their defaults. A numeric flag may carry an
// allowed range (FlagRange), checked as it is parsed, so that sizes are bounded before any
// arithmetic on them; floating-point flags never take nan or inf.

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "nanochat/core/error.hpp"

namespace nanochat {

// The values a numeric flag allows, both ends included.
template <class T>
struct FlagRange {
  T min, max;
};

class Flags {
 public:
  Flags(std::string program, std::string summary)
      : program_(std::move(program)), summary_(std::move(summary)) {}

  // Binds `--name` (and the optional one-letter `-s`) to target; target's value is the default.
  template <class T>
  Flags& add(std::string name, T& target, std::string help, char short_name = 0) {
    static_assert(std::is_same_v<T, bool> || std::is_same_v<T, std::string> ||
                      std::is_same_v<T, std::vector<std::string>> || std::is_arithmetic_v<T>,
                  "flags bind to bool, string, numeric or (repeatable) vector<string> variables");
    std::string key = normalise(std::move(name));
    Flag f{key, short_name, std::move(help), describe(target), "", std::is_same_v<T, bool>,
           [&target, key](std::string_view value) { parse_value(key, value, target); },
           [&target] { return describe(target); }};
    NANOCHAT_CHECK(find(f.name) == nullptr, "flag --", f.name, " is defined twice");
    flags_.push_back(std::move(f));
    return *this;
  }

  // A numeric flag whose value must lie in range (the default too): anything else is an Error
  // naming the flag and the range.
  template <class T>
    requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>)
  Flags& add(std::string name, T& target, std::string help, FlagRange<T> range, char short_name = 0) {
    const std::string key = normalise(name);
    NANOCHAT_CHECK(range.min <= range.max && target >= range.min && target <= range.max, "flag --", key,
                   ": the default ", describe(target), " is outside its range ", describe(range.min), "..",
                   describe(range.max));
    add(std::move(name), target, std::move(help), short_name);
    Flag& f = flags_.back();
    f.range_text = cat(describe(range.min), "..", describe(range.max));
    f.set = [&target, key, range, text = f.range_text](std::string_view value) {
      T parsed = target;
      parse_value(key, value, parsed);
      NANOCHAT_CHECK(parsed >= range.min && parsed <= range.max, "flag --", key, ": ", value,
                     " is outside the allowed range ", text);
      target = parsed;
    };
    return *this;
  }

  // Arguments that are not flags (input files, say) are collected here, in order; without this,
  // such an argument is an error.
  Flags& positional(std::string name, std::vector<std::string>& target, std::string help) {
    positional_ = &target;
    positional_name_ = std::move(name);
    positional_help_ = std::move(help);
    return *this;
  }

  // Parses argv; returns false when --help was given (usage is printed, the caller exits 0).
  bool parse(int argc, const char* const* argv) {
    for (int i = 1; i < argc; ++i) {
      std::string_view arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        print_usage();
        return false;
      }
      const Flag* flag = nullptr;
      std::string_view value;
      bool has_value = false;
      if (arg.size() == 2 && arg[0] == '-' && arg[1] != '-') {
        for (const Flag& f : flags_)
          if (f.short_name == arg[1]) flag = &f;
      } else if (arg.starts_with("--")) {
        std::string_view body = arg.substr(2);
        if (auto eq = body.find('='); eq != std::string_view::npos) {
          value = body.substr(eq + 1);
          body = body.substr(0, eq);
          has_value = true;
        }
        flag = find(normalise(std::string(body)));
      } else if (positional_ != nullptr) {
        positional_->emplace_back(arg);
        continue;
      } else {
        NANOCHAT_FAIL("unexpected argument '", arg, "' (flags start with --; see --help)");
      }
      NANOCHAT_CHECK(flag != nullptr, "unknown flag ", arg, " (see --help)");
      if (!has_value) {
        if (flag->is_bool) {
          value = "true";
        } else {
          NANOCHAT_CHECK(i + 1 < argc, "flag --", flag->name, " needs a value");
          value = argv[++i];
        }
      }
      flag->set(value);
    }
    return true;
  }

  // Every flag's current value (after parse: the run's configuration, as checkpoints record it).
  std::map<std::string, std::string> values() const {
    std::map<std::string, std::string> out;
    for (const Flag& f : flags_) out[f.name] = f.current();
    return out;
  }

  void print_usage() const {
    std::printf("%s — %s\n\nusage: %s [flags]%s%s\n\n", program_.c_str(), summary_.c_str(),
                program_.c_str(), positional_ ? " " : "", positional_ ? positional_name_.c_str() : "");
    if (positional_ != nullptr) std::printf("  %-30s %s\n\n", positional_name_.c_str(), positional_help_.c_str());
    std::printf("flags:\n");
    for (const Flag& f : flags_) {
      std::string names = f.short_name ? cat("-", f.short_name, ", --", f.name) : cat("    --", f.name);
      std::printf("  %-30s %s (default: %s%s%s)\n", names.c_str(), f.help.c_str(), f.default_text.c_str(),
                  f.range_text.empty() ? "" : "; range ", f.range_text.c_str());
    }
  }

 private:
  struct Flag {
    std::string name;
    char short_name;
    std::string help;
    std::string default_text;
    std::string range_text;  // "min..max" for a flag added with a FlagRange
    bool is_bool;
    std::function<void(std::string_view)> set;
    std::function<std::string()> current;
  };

  static std::string normalise(std::string name) {
    if (name.starts_with("--")) name = name.substr(2);
    for (char& c : name)
      if (c == '_') c = '-';
    return name;
  }

  const Flag* find(const std::string& name) const {
    for (const Flag& f : flags_)
      if (f.name == name) return &f;
    return nullptr;
  }

  template <class T>
  static std::string describe(const T& value) {
    if constexpr (std::is_same_v<T, bool>) return value ? "true" : "false";
    else if constexpr (std::is_same_v<T, std::string>) return value.empty() ? "\"\"" : value;
    else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      std::string joined;
      for (const auto& v : value) joined += (joined.empty() ? "" : ",") + v;
      return joined.empty() ? "none" : joined;
    }
    else return cat(value);
  }

  template <class T>
  static void parse_value(const std::string& name, std::string_view text, T& target) {
    if constexpr (std::is_same_v<T, std::string>) {
      target = std::string(text);
    } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      target.emplace_back(text);  // a repeatable flag: each occurrence adds a value
    } else if constexpr (std::is_same_v<T, bool>) {
      NANOCHAT_CHECK(text == "true" || text == "false" || text == "1" || text == "0", "flag --",
                     name, ": '", text, "' is not a boolean (true, false, 1 or 0)");
      target = text == "true" || text == "1";
    } else {
      T parsed{};
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), parsed);
      if constexpr (std::is_integral_v<T>) {
        // Counts are often written as nanochat's command lines write them: 2e9, 5e5.
        double wide = 0;
        if (end != text.data() + text.size() &&
            std::from_chars(text.data(), text.data() + text.size(), wide).ptr == text.data() + text.size() &&
            std::isfinite(wide) && std::trunc(wide) == wide) {
          // max() rounds up to 2^digits as a double, which no longer fits: compare with < that.
          const double limit = std::ldexp(1.0, std::numeric_limits<T>::digits);
          const bool fits = wide >= static_cast<double>(std::numeric_limits<T>::lowest()) && wide < limit;
          ec = fits ? std::errc{} : std::errc::result_out_of_range;
          end = text.data() + text.size();
          parsed = fits ? static_cast<T>(wide) : T{};
        }
      }
      NANOCHAT_CHECK(ec == std::errc{} && end == text.data() + text.size() && !text.empty(),
                     "flag --", name, ": '", text, "' is not ",
                     std::is_integral_v<T> ? "an integer" : "a number",
                     ec == std::errc::result_out_of_range ? " in range" : "");
      if constexpr (std::is_floating_point_v<T>) {
        // No setting means nan or inf; taken, they would only surface as a diverged run.
        NANOCHAT_CHECK(std::isfinite(parsed), "flag --", name, ": '", text, "' is not a finite number");
      }
      target = parsed;
    }
  }

  std::string program_, summary_;
  std::vector<Flag> flags_;
  std::vector<std::string>* positional_ = nullptr;
  std::string positional_name_, positional_help_;
};

}  // namespace nanochat
