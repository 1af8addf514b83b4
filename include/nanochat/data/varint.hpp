#pragma once
// The variable-length integers of Parquet's encodings and of Thrift's compact protocol: ULEB128,
// and zigzag for signed values. Reads are bounds-checked and length-capped.

#include <cstdint>
#include <string>

#include "nanochat/core/error.hpp"

namespace nanochat::data {

// Reads a ULEB128 integer of at most max_bits bits, advancing pos; `field` names it in errors.
inline std::uint64_t read_uleb128(const std::uint8_t*& pos, const std::uint8_t* end, int max_bits,
                                  const std::string& what, const char* field) {
  std::uint64_t value = 0;
  for (int shift = 0;; shift += 7) {
    NANOCHAT_CHECK(pos < end, what, ": ", field, " runs past the end of the data");
    NANOCHAT_CHECK(shift < max_bits, what, ": ", field, " is longer than ", (max_bits + 6) / 7,
                   " bytes");
    std::uint8_t byte = *pos++;
    value |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) return value;
  }
}

inline std::int64_t zigzag_decode(std::uint64_t raw) {
  return static_cast<std::int64_t>(raw >> 1) ^ -static_cast<std::int64_t>(raw & 1);
}

}  // namespace nanochat::data
