#pragma once
// A reader for Thrift's compact protocol, the encoding of Parquet's footer and page headers.
// Every read is bounds-checked against the buffer, and nesting is capped, so a corrupt or
// hostile file produces an error naming it instead of a crash or runaway recursion.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "nanochat/core/error.hpp"
#include "nanochat/data/varint.hpp"

namespace nanochat::data {

// Compact-protocol type codes (the low nibble of a field header).
enum class ThriftType : std::uint8_t {
  stop = 0, bool_true = 1, bool_false = 2, i8 = 3, i16 = 4, i32 = 5, i64 = 6,
  f64 = 7, binary = 8, list = 9, set = 10, map = 11, structure = 12,
};

class CompactReader {
 public:
  // `what` names the thing being decoded (e.g. "data.parquet: footer") for error messages.
  CompactReader(const std::uint8_t* data, std::size_t size, std::string what)
      : begin_(data), pos_(data), end_(data + size), what_(std::move(what)) {}

  std::size_t consumed() const { return static_cast<std::size_t>(pos_ - begin_); }
  const std::string& what() const { return what_; }

  std::uint64_t read_varint() { return read_uleb128(pos_, end_, 64, what_, "thrift varint"); }

  std::int64_t read_i64() { return zigzag_decode(read_varint()); }

  std::int32_t read_i32() {
    std::int64_t value = read_i64();
    NANOCHAT_CHECK(value >= INT32_MIN && value <= INT32_MAX, what_, ": i32 value ", value,
                   " out of range at offset ", consumed());
    return static_cast<std::int32_t>(value);
  }

  std::string_view read_binary() {
    std::uint64_t length = read_varint();
    NANOCHAT_CHECK(length <= remaining(), what_, ": string of ", length, " bytes at offset ",
                   consumed(), " runs past the end (", remaining(), " bytes left)");
    std::string_view out(reinterpret_cast<const char*>(pos_), static_cast<std::size_t>(length));
    pos_ += length;
    return out;
  }

  // Reads a list header; returns its element count and stores the element type.
  std::size_t read_list_header(ThriftType& element_type) {
    std::uint8_t header = read_byte();
    element_type = static_cast<ThriftType>(header & 0x0F);
    std::uint64_t size = header >> 4;
    if (size == 15) size = read_varint();
    // Every element takes at least one byte, so a larger count is certainly corrupt.
    NANOCHAT_CHECK(size <= remaining(), what_, ": list of ", size, " elements at offset ",
                   consumed(), " cannot fit in the ", remaining(), " bytes left");
    return static_cast<std::size_t>(size);
  }

  // Calls on_field(id, type) for each field of a struct; the callback must consume the value
  // (with a read_* call or skip(type)). Field ids are delta-encoded per struct.
  template <class OnField>
  void read_struct(OnField&& on_field) {
    enter();
    std::int16_t last_id = 0;
    while (true) {
      std::uint8_t header = read_byte();
      auto type = static_cast<ThriftType>(header & 0x0F);
      if (type == ThriftType::stop) break;
      int delta = header >> 4;
      std::int64_t id = delta != 0 ? last_id + delta : read_i64();
      NANOCHAT_CHECK(id >= INT16_MIN && id <= INT16_MAX, what_, ": field id ", id,
                     " out of range at offset ", consumed());
      last_id = static_cast<std::int16_t>(id);
      on_field(last_id, type);
    }
    --depth_;
  }

  // Reads an integer field of any integer width, checking the declared type.
  std::int64_t read_int(ThriftType type, const char* field) {
    switch (type) {
      case ThriftType::i8: return static_cast<std::int8_t>(read_byte());
      case ThriftType::i16:
      case ThriftType::i32:
      case ThriftType::i64: return read_i64();
      default: NANOCHAT_FAIL(what_, ": field ", field, " has type ", int(type), ", not an integer");
    }
  }

  // Booleans carry their value in the field header's type code.
  bool read_bool(ThriftType type, const char* field) {
    NANOCHAT_CHECK(type == ThriftType::bool_true || type == ThriftType::bool_false, what_,
                   ": field ", field, " has type ", int(type), ", not a boolean");
    return type == ThriftType::bool_true;
  }

  void expect(ThriftType actual, ThriftType wanted, const char* field) const {
    NANOCHAT_CHECK(actual == wanted, what_, ": field ", field, " has type ", int(actual),
                   ", expected ", int(wanted));
  }

  void skip(ThriftType type) {
    switch (type) {
      case ThriftType::bool_true:
      case ThriftType::bool_false: return;
      case ThriftType::i8: advance(1); return;
      case ThriftType::i16:
      case ThriftType::i32:
      case ThriftType::i64: read_varint(); return;
      case ThriftType::f64: advance(8); return;
      case ThriftType::binary: read_binary(); return;
      case ThriftType::list:
      case ThriftType::set: {
        ThriftType element;
        std::size_t size = read_list_header(element);
        enter();
        for (std::size_t i = 0; i < size; ++i) skip_element(element);
        --depth_;
        return;
      }
      case ThriftType::map: {
        std::uint64_t size = read_varint();
        if (size == 0) return;
        NANOCHAT_CHECK(size <= remaining(), what_, ": map of ", size, " entries at offset ",
                       consumed(), " cannot fit");
        std::uint8_t types = read_byte();
        enter();
        for (std::uint64_t i = 0; i < size; ++i) {
          skip_element(static_cast<ThriftType>(types >> 4));
          skip_element(static_cast<ThriftType>(types & 0x0F));
        }
        --depth_;
        return;
      }
      case ThriftType::structure: read_struct([this](std::int16_t, ThriftType t) { skip(t); }); return;
      default: NANOCHAT_FAIL(what_, ": unknown thrift type ", int(type), " at offset ", consumed());
    }
  }

 private:
  // Inside lists and maps a boolean takes one byte (type code 1 or 2 as the element type).
  void skip_element(ThriftType type) {
    if (type == ThriftType::bool_true || type == ThriftType::bool_false) {
      advance(1);
    } else {
      skip(type);
    }
  }

  void enter() {
    // Real Parquet metadata nests a handful of levels; deep nesting only comes from corruption.
    NANOCHAT_CHECK(++depth_ <= 32, what_, ": thrift structures nested deeper than 32 levels");
  }

  std::size_t remaining() const { return static_cast<std::size_t>(end_ - pos_); }

  std::uint8_t read_byte() {
    NANOCHAT_CHECK(pos_ < end_, what_, ": truncated thrift data at offset ", consumed());
    return *pos_++;
  }

  void advance(std::size_t n) {
    NANOCHAT_CHECK(n <= remaining(), what_, ": truncated thrift data at offset ", consumed());
    pos_ += n;
  }

  const std::uint8_t* begin_;
  const std::uint8_t* pos_;
  const std::uint8_t* end_;
  std::string what_;
  int depth_ = 0;
};

}  // namespace nanochat::data
