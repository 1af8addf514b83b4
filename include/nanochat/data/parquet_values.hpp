#pragma once
// The values section of parquet data pages, for the physical types the reader supports:
// BYTE_ARRAY (PLAIN, dictionary, DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY), INT32 and INT64
// (PLAIN, dictionary, DELTA_BINARY_PACKED, BYTE_STREAM_SPLIT), FLOAT and DOUBLE (PLAIN,
// dictionary, BYTE_STREAM_SPLIT), BOOLEAN (PLAIN bits, RLE). Only the present (non-null) values
// are stored in a page, so callers pass their count, found from the definition levels. Every
// length, index and byte count is checked against the page.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/data/delta_encoding.hpp"
#include "nanochat/data/parquet_metadata.hpp"
#include "nanochat/data/rle_hybrid.hpp"

namespace nanochat::data {

// The non-null values of a column, in order, in the vector of its physical type.
struct ColumnValues {
  std::vector<std::string> strings;    // BYTE_ARRAY
  std::vector<std::int64_t> integers;  // INT32 (widened) and INT64
  std::vector<double> reals;           // FLOAT (widened) and DOUBLE
  std::vector<std::uint8_t> booleans;  // BOOLEAN, 0 or 1

  void clear() {
    strings.clear();
    integers.clear();
    reals.clear();
    booleans.clear();
  }
};

inline std::uint32_t load_le32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24;
}

// Decodes the values of one column chunk's pages; holds the chunk's dictionary between pages
// and scratch buffers reused across pages, so steady-state decoding does not allocate per page.
class PageValueDecoder {
 public:
  // max_bytes bounds what a DELTA_BYTE_ARRAY page may expand to (its shared prefixes are stored once).
  explicit PageValueDecoder(std::size_t max_bytes) : max_bytes_(max_bytes) {}

  // Starts a column chunk of `type`: the previous chunk's dictionary is forgotten.
  void start_chunk(parquet::PhysicalType type) {
    type_ = type;
    dictionary_size_ = 0;
    has_dictionary_ = false;
    dictionary_.clear();
    dictionary_integers_.clear();
    dictionary_reals_.clear();
  }

  // The dictionary page's `count` PLAIN values, decompressed into bytes.
  void read_dictionary(std::vector<std::uint8_t>& bytes, std::size_t count, const std::string& what) {
    NANOCHAT_CHECK(!has_dictionary_, what, ": second dictionary page");
    has_dictionary_ = true;
    dictionary_bytes_.swap(bytes);  // the string dictionary points into these bytes
    const std::uint8_t* pos = dictionary_bytes_.data();
    const std::uint8_t* end = pos + dictionary_bytes_.size();
    switch (type_) {
      case parquet::PhysicalType::byte_array: {
        // Each entry takes at least its 4-byte length, which bounds a corrupt count.
        NANOCHAT_CHECK(count <= dictionary_bytes_.size() / 4, what, ": dictionary claims ", count, " entries in ",
                       dictionary_bytes_.size(), " bytes");
        PlainCursor cursor{pos, end};
        dictionary_.reserve(count);
        for (std::size_t i = 0; i < count; ++i) dictionary_.push_back(cursor.next(what, "dictionary"));
        break;
      }
      case parquet::PhysicalType::int32:
      case parquet::PhysicalType::int64: read_plain_integers(pos, end, count, what, dictionary_integers_); break;
      case parquet::PhysicalType::f32:
      case parquet::PhysicalType::f64: read_plain_reals(pos, end, count, what, dictionary_reals_); break;
      default: NANOCHAT_FAIL(what, ": a dictionary page for a ", type_, " column");
    }
    dictionary_size_ = count;
  }

  // Appends `count` BYTE_ARRAY values decoded from [pos, end) to out.
  void decode_strings(parquet::Encoding encoding, const std::uint8_t* pos, const std::uint8_t* end,
                      std::size_t count, const std::string& what, std::vector<std::string>& out) {
    out.reserve(out.size() + count);
    switch (encoding) {
      case parquet::Encoding::plain: {
        PlainCursor cursor{pos, end};
        for (std::size_t i = 0; i < count; ++i) out.emplace_back(cursor.next(what, "value"));
        return;
      }
      case parquet::Encoding::plain_dictionary:
      case parquet::Encoding::rle_dictionary:
        read_indices(pos, end, count, what);
        for (std::uint32_t index : indices_) out.emplace_back(dictionary_[index]);
        return;
      case parquet::Encoding::delta_length_byte_array: read_delta_length(pos, end, count, what, "", out); return;
      case parquet::Encoding::delta_byte_array: read_delta_strings(pos, end, count, what, out); return;
      default:
        NANOCHAT_FAIL(what, ": value encoding ", encoding, " is not supported for ", parquet::PhysicalType::byte_array,
                      " (PLAIN, PLAIN_DICTIONARY, RLE_DICTIONARY, DELTA_LENGTH_BYTE_ARRAY and DELTA_BYTE_ARRAY are)");
    }
  }

  // Appends `count` values of the chunk's type, decoded from [pos, end), to their vector in out.
  void decode(parquet::Encoding encoding, const std::uint8_t* pos, const std::uint8_t* end, std::size_t count,
              const std::string& what, ColumnValues& out) {
    using parquet::Encoding;
    using parquet::PhysicalType;
    switch (type_) {
      case PhysicalType::byte_array: decode_strings(encoding, pos, end, count, what, out.strings); return;
      case PhysicalType::boolean: decode_booleans(encoding, pos, end, count, what, out.booleans); return;
      case PhysicalType::int32:
      case PhysicalType::int64:
        switch (encoding) {
          case Encoding::plain: read_plain_integers(pos, end, count, what, out.integers); return;
          case Encoding::plain_dictionary:
          case Encoding::rle_dictionary:
            read_indices(pos, end, count, what);
            for (std::uint32_t index : indices_) out.integers.push_back(dictionary_integers_[index]);
            return;
          case Encoding::delta_binary_packed: {
            decode_delta_binary_packed(pos, end, count, deltas_, cat(what, ": DELTA_BINARY_PACKED values"));
            // INT32 deltas wrap in 32 bits: the low half of the 64-bit sum is the value.
            for (std::int64_t v : deltas_) {
              out.integers.push_back(type_ == PhysicalType::int32 ? std::int64_t{static_cast<std::int32_t>(v)} : v);
            }
            return;
          }
          case Encoding::byte_stream_split: read_split_integers(pos, end, count, what, out.integers); return;
          default: unsupported(encoding, what, "PLAIN, dictionary, DELTA_BINARY_PACKED and BYTE_STREAM_SPLIT");
        }
      case PhysicalType::f32:
      case PhysicalType::f64:
        switch (encoding) {
          case Encoding::plain: read_plain_reals(pos, end, count, what, out.reals); return;
          case Encoding::plain_dictionary:
          case Encoding::rle_dictionary:
            read_indices(pos, end, count, what);
            for (std::uint32_t index : indices_) out.reals.push_back(dictionary_reals_[index]);
            return;
          case Encoding::byte_stream_split: read_split_reals(pos, end, count, what, out.reals); return;
          default: unsupported(encoding, what, "PLAIN, dictionary and BYTE_STREAM_SPLIT");
        }
      default:
        NANOCHAT_FAIL(what, ": physical type ", type_,
                      " is not supported (BYTE_ARRAY, INT32, INT64, FLOAT, DOUBLE and BOOLEAN are)");
    }
  }

 private:
  [[noreturn]] void unsupported(parquet::Encoding encoding, const std::string& what, const char* supported) const {
    NANOCHAT_FAIL(what, ": value encoding ", encoding, " is not supported for ", type_, " (", supported, " are)");
  }

  std::size_t width() const {
    return type_ == parquet::PhysicalType::int32 || type_ == parquet::PhysicalType::f32 ? 4 : 8;
  }

  void check_fixed(const std::uint8_t* pos, const std::uint8_t* end, std::size_t count, const std::string& what) const {
    NANOCHAT_CHECK(count <= static_cast<std::size_t>(end - pos) / width(), what, ": ", count, " ", type_,
                   " values need ", count * width(), " bytes but the page holds ", end - pos);
  }

  void read_plain_integers(const std::uint8_t* pos, const std::uint8_t* end, std::size_t count,
                           const std::string& what, std::vector<std::int64_t>& out) const {
    check_fixed(pos, end, count, what);
    for (std::size_t i = 0; i < count; ++i) out.push_back(fixed_integer(pos + i * width(), 1));
  }

  void read_plain_reals(const std::uint8_t* pos, const std::uint8_t* end, std::size_t count, const std::string& what,
                        std::vector<double>& out) const {
    check_fixed(pos, end, count, what);
    for (std::size_t i = 0; i < count; ++i) out.push_back(fixed_real(pos + i * width(), 1));
  }

  // BYTE_STREAM_SPLIT: byte b of value i sits at b * count + i.
  void read_split_integers(const std::uint8_t* pos, const std::uint8_t* end, std::size_t count,
                           const std::string& what, std::vector<std::int64_t>& out) const {
    check_fixed(pos, end, count, what);
    for (std::size_t i = 0; i < count; ++i) out.push_back(fixed_integer(pos + i, count));
  }

  void read_split_reals(const std::uint8_t* pos, const std::uint8_t* end, std::size_t count, const std::string& what,
                        std::vector<double>& out) const {
    check_fixed(pos, end, count, what);
    for (std::size_t i = 0; i < count; ++i) out.push_back(fixed_real(pos + i, count));
  }

  // A little-endian value of the chunk's width whose bytes lie `stride` apart.
  std::uint64_t fixed_bits(const std::uint8_t* p, std::size_t stride) const {
    std::uint64_t bits = 0;
    for (std::size_t b = 0; b < width(); ++b) bits |= std::uint64_t{p[b * stride]} << (8 * b);
    return bits;
  }

  std::int64_t fixed_integer(const std::uint8_t* p, std::size_t stride) const {
    const std::uint64_t bits = fixed_bits(p, stride);
    return width() == 4 ? std::int64_t{static_cast<std::int32_t>(static_cast<std::uint32_t>(bits))}
                        : static_cast<std::int64_t>(bits);
  }

  double fixed_real(const std::uint8_t* p, std::size_t stride) const {
    const std::uint64_t bits = fixed_bits(p, stride);
    if (width() == 4) {
      float f;
      const auto low = static_cast<std::uint32_t>(bits);
      std::memcpy(&f, &low, 4);
      return f;
    }
    double d;
    std::memcpy(&d, &bits, 8);
    return d;
  }

  void decode_booleans(parquet::Encoding encoding, const std::uint8_t* pos, const std::uint8_t* end,
                       std::size_t count, const std::string& what, std::vector<std::uint8_t>& out) {
    if (encoding == parquet::Encoding::plain) {  // one bit per value, LSB first
      NANOCHAT_CHECK(count <= static_cast<std::size_t>(end - pos) * 8, what, ": ", count,
                     " BOOLEAN values need ", (count + 7) / 8, " bytes but the page holds ", end - pos);
      for (std::size_t i = 0; i < count; ++i) out.push_back((pos[i / 8] >> (i % 8)) & 1);
      return;
    }
    NANOCHAT_CHECK(encoding == parquet::Encoding::rle, what, ": value encoding ", encoding, " is not supported for ",
                   parquet::PhysicalType::boolean, " (PLAIN and RLE are)");
    // RLE booleans: a 4-byte length, then the RLE/bit-packed hybrid of width 1.
    NANOCHAT_CHECK(end - pos >= 4, what, ": RLE booleans have no length");
    const std::size_t length = load_le32(pos);
    NANOCHAT_CHECK(length <= static_cast<std::size_t>(end - pos - 4), what, ": RLE booleans of ", length,
                   " bytes overrun the page");
    indices_.resize(count);
    RleHybridDecoder(pos + 4, length, 1, what).decode(indices_.data(), count);
    for (std::uint32_t v : indices_) out.push_back(static_cast<std::uint8_t>(v));
  }

  // Dictionary indices (a bit-width byte, then the RLE/bit-packed hybrid) into indices_, each
  // checked against the dictionary.
  void read_indices(const std::uint8_t* pos, const std::uint8_t* end, std::size_t count, const std::string& what) {
    NANOCHAT_CHECK(has_dictionary_, what, ": dictionary-encoded page without a dictionary page");
    NANOCHAT_CHECK(pos < end, what, ": dictionary-encoded page has no index bit width");
    const int bit_width = pos[0];
    indices_.resize(count);
    RleHybridDecoder(pos + 1, static_cast<std::size_t>(end - pos - 1), bit_width, what).decode(indices_.data(), count);
    for (std::uint32_t index : indices_) {
      NANOCHAT_CHECK(index < dictionary_size_, what, ": dictionary index ", index, " out of range (dictionary has ",
                     dictionary_size_, " entries)");
    }
  }

  // DELTA_LENGTH_BYTE_ARRAY: the `count` lengths (DELTA_BINARY_PACKED), then the bytes back to
  // back. Appends the values to out; returns the end of the bytes.
  const std::uint8_t* read_delta_length(const std::uint8_t* pos, const std::uint8_t* end, std::size_t count,
                                        const std::string& what, const char* kind, std::vector<std::string>& out) {
    const std::string lengths_what = cat(what, ": DELTA_LENGTH_BYTE_ARRAY", kind, " lengths");
    pos = decode_delta_binary_packed(pos, end, count, lengths_, lengths_what);
    for (std::int64_t length : lengths_) {
      NANOCHAT_CHECK(length >= 0 && static_cast<std::uint64_t>(length) <= static_cast<std::uint64_t>(end - pos),
                     lengths_what, ": value of ", length, " bytes runs past the end of the page (", end - pos,
                     " bytes left)");
      out.emplace_back(reinterpret_cast<const char*>(pos), static_cast<std::size_t>(length));
      pos += length;
    }
    return pos;
  }

  // DELTA_BYTE_ARRAY: each value is a prefix of the previous value in the page (lengths
  // DELTA_BINARY_PACKED) followed by a suffix (the suffixes DELTA_LENGTH_BYTE_ARRAY).
  void read_delta_strings(const std::uint8_t* pos, const std::uint8_t* end, std::size_t count,
                          const std::string& what, std::vector<std::string>& out) {
    const std::string prefixes_what = cat(what, ": DELTA_BYTE_ARRAY prefix lengths");
    pos = decode_delta_binary_packed(pos, end, count, prefixes_, prefixes_what);
    const std::size_t first = out.size();
    read_delta_length(pos, end, count, what, " suffix", out);
    // Shared prefixes are stored once, so the page's own size does not bound its values.
    std::size_t total = 0;
    for (std::size_t i = 0; i < count; ++i) {
      std::int64_t prefix = prefixes_[i];
      std::size_t previous = i == 0 ? 0 : out[first + i - 1].size();
      NANOCHAT_CHECK(prefix >= 0 && static_cast<std::uint64_t>(prefix) <= previous, prefixes_what, ": value ", i,
                     " shares ", prefix, " bytes with a previous value of ", previous, " bytes");
      std::string& value = out[first + i];
      total += static_cast<std::size_t>(prefix) + value.size();
      NANOCHAT_CHECK(total <= max_bytes_, what, ": DELTA_BYTE_ARRAY values exceed the ", max_bytes_, "-byte limit");
      if (prefix > 0) value.insert(0, out[first + i - 1], 0, static_cast<std::size_t>(prefix));
    }
  }

  // Walks PLAIN-encoded BYTE_ARRAY values: a 4-byte little-endian length, then the bytes.
  struct PlainCursor {
    const std::uint8_t* pos;
    const std::uint8_t* end;
    std::string_view next(const std::string& what, const char* kind) {
      NANOCHAT_CHECK(end - pos >= 4, what, ": ", kind, " length runs past the end of the page");
      std::size_t length = load_le32(pos);
      pos += 4;
      NANOCHAT_CHECK(length <= static_cast<std::size_t>(end - pos), what, ": ", kind, " of ", length,
                     " bytes runs past the end of the page");
      std::string_view out(reinterpret_cast<const char*>(pos), length);
      pos += length;
      return out;
    }
  };

  std::size_t max_bytes_;
  parquet::PhysicalType type_ = parquet::PhysicalType::byte_array;
  bool has_dictionary_ = false;
  std::size_t dictionary_size_ = 0;
  std::vector<std::uint8_t> dictionary_bytes_;
  std::vector<std::string_view> dictionary_;  // BYTE_ARRAY entries, into dictionary_bytes_
  std::vector<std::int64_t> dictionary_integers_;
  std::vector<double> dictionary_reals_;
  std::vector<std::uint32_t> indices_;
  std::vector<std::int64_t> lengths_;
  std::vector<std::int64_t> prefixes_;
  std::vector<std::int64_t> deltas_;
};

}  // namespace nanochat::data
