#pragma once
// The message of the nanochat::Error that f throws, or "(no error)", so a test can check what an
// error says with find() and starts_with().

#include <string>

#include "nanochat/core/error.hpp"

namespace nanochat::testing {

template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const nanochat::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace nanochat::testing
