#pragma once
// Parquet's DELTA_BINARY_PACKED integers (Encodings.md), the lengths inside DELTA_LENGTH_BYTE_ARRAY
// and DELTA_BYTE_ARRAY pages. Layout: a header <block size> <miniblocks per block> <total count>
// <first value (zigzag)>, then blocks <min delta (zigzag)> <one bit-width byte per miniblock>
// <miniblocks>, each miniblock bit-packed LSB first with its own width. Arithmetic wraps in two's
// complement as the spec asks; every count, width and body is checked against the buffer.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/data/rle_hybrid.hpp"
#include "nanochat/data/varint.hpp"

namespace nanochat::data {

// Decodes a DELTA_BINARY_PACKED stream of exactly `count` values from [pos, end) into out
// (resized to count) and returns the first byte after the stream: the bytes of the last block's
// unused miniblocks are not stored, so only decoding finds where the stream ends. `what` names
// the stream in errors.
inline const std::uint8_t* decode_delta_binary_packed(const std::uint8_t* pos, const std::uint8_t* end,
                                                      std::size_t count, std::vector<std::int64_t>& out,
                                                      const std::string& what) {
  // A bound that keeps the miniblock arithmetic far from overflow; writers use 128 or 256.
  constexpr std::uint64_t kMaxBlockSize = std::uint64_t{1} << 31;
  std::uint64_t block_size = read_uleb128(pos, end, 64, what, "DELTA_BINARY_PACKED block size");
  std::uint64_t miniblocks = read_uleb128(pos, end, 64, what, "DELTA_BINARY_PACKED miniblock count");
  std::uint64_t total = read_uleb128(pos, end, 64, what, "DELTA_BINARY_PACKED value count");
  std::uint64_t first = read_uleb128(pos, end, 64, what, "DELTA_BINARY_PACKED first value");
  NANOCHAT_CHECK(block_size > 0 && block_size % 128 == 0 && block_size <= kMaxBlockSize, what,
                 ": DELTA_BINARY_PACKED block size ", block_size, " is not a positive multiple of 128 up to ",
                 kMaxBlockSize);
  NANOCHAT_CHECK(miniblocks > 0 && block_size % miniblocks == 0 && (block_size / miniblocks) % 32 == 0,
                 what, ": DELTA_BINARY_PACKED block of ", block_size, " values cannot hold ", miniblocks,
                 " miniblocks of a multiple of 32 values");
  NANOCHAT_CHECK(total == count, what, ": DELTA_BINARY_PACKED stream holds ", total, " values, the page needs ",
                 count);
  out.resize(count);
  if (count == 0) return pos;
  const std::uint64_t per_miniblock = block_size / miniblocks;
  auto value = static_cast<std::uint64_t>(zigzag_decode(first));
  out[0] = static_cast<std::int64_t>(value);
  std::size_t done = 1;
  while (done < count) {
    auto min_delta = static_cast<std::uint64_t>(
        zigzag_decode(read_uleb128(pos, end, 64, what, "DELTA_BINARY_PACKED min delta")));
    NANOCHAT_CHECK(miniblocks <= static_cast<std::uint64_t>(end - pos), what, ": DELTA_BINARY_PACKED ",
                   miniblocks, " miniblock bit widths run past the end of the data");
    const std::uint8_t* widths = pos;
    pos += miniblocks;
    // Widths of miniblocks after the last value are arbitrary and their bodies absent: stop at count.
    for (std::uint64_t m = 0; m < miniblocks && done < count; ++m) {
      int width = widths[m];
      NANOCHAT_CHECK(width <= 64, what, ": DELTA_BINARY_PACKED miniblock bit width ", width,
                     " is over 64");
      std::uint64_t bytes = per_miniblock * static_cast<std::uint64_t>(width) / 8;
      NANOCHAT_CHECK(bytes <= static_cast<std::uint64_t>(end - pos), what, ": DELTA_BINARY_PACKED miniblock of ",
                     bytes, " bytes runs past the end of the data (", end - pos, " bytes left)");
      auto take = static_cast<std::size_t>(std::min<std::uint64_t>(per_miniblock, count - done));
      for (std::size_t i = 0; i < take; ++i) {
        value += min_delta + unpack_bits(pos, i, width);
        out[done++] = static_cast<std::int64_t>(value);
      }
      pos += bytes;
    }
  }
  return pos;
}

}  // namespace nanochat::data
