#pragma once
// Parquet's RLE / bit-packing hybrid: the encoding of definition levels and of dictionary
// indices. A run header (ULEB128) with low bit 0 is an RLE run (count, then one value in
// ceil(width/8) bytes); with low bit 1 it is a bit-packed run of 8-value groups, LSB first.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "nanochat/core/error.hpp"
#include "nanochat/data/varint.hpp"

namespace nanochat::data {

// Value `index` of a run of `bit_width`-bit integers packed LSB first (the bit packing of both
// the RLE hybrid and DELTA_BINARY_PACKED). The caller guarantees the run's bytes exist.
inline std::uint64_t unpack_bits(const std::uint8_t* data, std::size_t index, int bit_width) {
  if (bit_width == 0) return 0;
  std::size_t bit = index * static_cast<std::size_t>(bit_width);
  const std::uint8_t* byte = data + bit / 8;
  int shift = static_cast<int>(bit % 8);
  std::uint64_t value = *byte++ >> shift;
  for (int have = 8 - shift; have < bit_width; have += 8) value |= std::uint64_t{*byte++} << have;
  return bit_width == 64 ? value : value & ((std::uint64_t{1} << bit_width) - 1);
}

class RleHybridDecoder {
 public:
  RleHybridDecoder(const std::uint8_t* data, std::size_t size, int bit_width, const std::string& what)
      : pos_(data), end_(data + size), bit_width_(bit_width), what_(what) {
    NANOCHAT_CHECK(bit_width >= 0 && bit_width <= 32, what_, ": bit width ", bit_width,
                   " is outside 0..32");
  }

  // Decodes exactly `count` values into out; fails if the runs end first.
  void decode(std::uint32_t* out, std::size_t count) {
    std::size_t done = 0;
    while (done < count) {
      if (run_left_ == 0) next_run();
      std::size_t take = std::min(run_left_, count - done);
      if (packed_) {
        for (std::size_t i = 0; i < take; ++i) out[done + i] = unpack(packed_index_ + i);
        packed_index_ += take;
      } else {
        std::fill(out + done, out + done + take, run_value_);
      }
      run_left_ -= take;
      done += take;
    }
  }

 private:
  void next_run() {
    NANOCHAT_CHECK(pos_ < end_, what_, ": RLE/bit-packed data ends before all values are read");
    std::uint64_t header = read_uleb128(pos_, end_, 32, what_, "RLE run header");
    std::size_t available = static_cast<std::size_t>(end_ - pos_);
    if (header & 1) {
      std::size_t groups = static_cast<std::size_t>(header >> 1);
      NANOCHAT_CHECK(groups > 0, what_, ": empty bit-packed run");
      packed_ = true;
      packed_data_ = pos_;
      packed_index_ = 0;
      run_left_ = groups * 8;
      // Writers may end the last run early; only the bytes that exist are readable.
      std::size_t bytes = groups * static_cast<std::size_t>(bit_width_);
      if (bytes > available) {
        bytes = available;
        run_left_ = bit_width_ == 0 ? run_left_ : bytes * 8 / static_cast<std::size_t>(bit_width_);
      }
      pos_ += bytes;
      NANOCHAT_CHECK(run_left_ > 0, what_, ": bit-packed run has no data");
    } else {
      run_left_ = static_cast<std::size_t>(header >> 1);
      NANOCHAT_CHECK(run_left_ > 0, what_, ": empty RLE run");
      packed_ = false;
      std::size_t bytes = static_cast<std::size_t>(bit_width_ + 7) / 8;
      NANOCHAT_CHECK(bytes <= available, what_, ": RLE run value is truncated");
      run_value_ = 0;
      for (std::size_t i = 0; i < bytes; ++i) run_value_ |= std::uint32_t{pos_[i]} << (8 * i);
      // The value's bytes can hold more bits than the width allows; such a value is corrupt.
      NANOCHAT_CHECK(bit_width_ == 32 || run_value_ >> bit_width_ == 0, what_, ": RLE run value ", run_value_,
                     " does not fit in ", bit_width_, " bits");
      pos_ += bytes;
    }
  }

  std::uint32_t unpack(std::size_t index) const {
    return static_cast<std::uint32_t>(unpack_bits(packed_data_, index, bit_width_));
  }

  const std::uint8_t* pos_;
  const std::uint8_t* end_;
  int bit_width_;
  const std::string& what_;
  bool packed_ = false;
  const std::uint8_t* packed_data_ = nullptr;
  std::size_t packed_index_ = 0;
  std::size_t run_left_ = 0;
  std::uint32_t run_value_ = 0;
};

}  // namespace nanochat::data
