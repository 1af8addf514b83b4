#pragma once
// A minimal parquet writer for tests: one row group, one uncompressed data page per column, levels
// and PLAIN values given exactly as the test wants them, including the inconsistent ones no real
// writer produces. Written from parquet-format's parquet.thrift and Encodings.md (Thrift compact
// protocol, RLE levels), so the reader is tested against the format, not against itself.

#include <bit>
#include <cstdint>
#include <string>
#include <vector>

#include "nanochat/data/parquet_metadata.hpp"

namespace nanochat::data::testing {

// Thrift compact protocol: field headers with delta-encoded ids, zigzag varints.
class ThriftWriter {
 public:
  std::vector<std::uint8_t> bytes;

  void begin_struct() { last_.push_back(0); }
  void end_struct() {
    bytes.push_back(0);
    last_.pop_back();
  }
  void field(std::int16_t id, std::uint8_t type) {
    const int delta = id - last_.back();
    if (delta > 0 && delta <= 15) {
      bytes.push_back(static_cast<std::uint8_t>(delta << 4 | type));
    } else {
      bytes.push_back(type);
      zigzag(id);
    }
    last_.back() = id;
  }
  void i32(std::int16_t id, std::int64_t v) {
    field(id, 5);
    zigzag(v);
  }
  void i64(std::int16_t id, std::int64_t v) {
    field(id, 6);
    zigzag(v);
  }
  void binary(std::int16_t id, const std::string& s) {
    field(id, 8);
    raw_binary(s);
  }
  void raw_binary(const std::string& s) {
    varint(s.size());
    bytes.insert(bytes.end(), s.begin(), s.end());
  }
  void begin_struct_field(std::int16_t id) {
    field(id, 12);
    begin_struct();
  }
  void list_header(std::int16_t id, std::uint8_t element_type, std::size_t size) {
    field(id, 9);
    if (size < 15) {
      bytes.push_back(static_cast<std::uint8_t>(size << 4 | element_type));
    } else {
      bytes.push_back(static_cast<std::uint8_t>(0xF0 | element_type));
      varint(size);
    }
  }
  void varint(std::uint64_t v) {
    do {
      std::uint8_t b = v & 0x7F;
      v >>= 7;
      bytes.push_back(v != 0 ? b | 0x80 : b);
    } while (v != 0);
  }
  void zigzag(std::int64_t v) {
    varint((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
  }

 private:
  std::vector<std::int16_t> last_;
};

struct TestSchemaElement {
  std::string name;
  parquet::Repetition repetition = parquet::Repetition::required;
  std::int32_t type = -1;  // -1: a group
  std::int32_t num_children = 0;
  std::int32_t converted_type = -1;
};

struct TestColumn {
  parquet::PhysicalType type = parquet::PhysicalType::byte_array;
  int max_repetition = 0;
  int max_definition = 0;
  std::vector<std::uint32_t> repetition = {};  // one per entry when max_repetition > 0
  std::vector<std::uint32_t> definition = {};  // one per entry when max_definition > 0
  std::vector<std::string> strings = {};  // the present values of a BYTE_ARRAY column
  std::vector<std::int64_t> integers = {};  // of an INT64 column
  std::int64_t entries = -1;              // the page's and chunk's value count; -1: the levels' size
};

// Levels as RLE runs of the bit width of max_level (one run per stretch of equal values).
inline std::vector<std::uint8_t> rle_levels(const std::vector<std::uint32_t>& levels, int max_level) {
  ThriftWriter w;  // for its varint
  const int width = std::bit_width(static_cast<unsigned>(max_level));
  for (std::size_t i = 0; i < levels.size();) {
    std::size_t j = i;
    while (j < levels.size() && levels[j] == levels[i]) ++j;
    w.varint((j - i) << 1);
    for (int b = 0; b < (width + 7) / 8; ++b) w.bytes.push_back(static_cast<std::uint8_t>(levels[i] >> (8 * b)));
    i = j;
  }
  return w.bytes;
}

// A whole file: PAR1, one page per column, the footer. `rows` is the row group's row count.
inline std::string build_parquet(const std::vector<TestSchemaElement>& schema, std::int64_t rows,
                                 const std::vector<TestColumn>& columns) {
  std::string file = "PAR1";
  std::vector<std::int64_t> offsets, sizes, counts;
  for (const TestColumn& c : columns) {
    std::vector<std::uint8_t> page;
    const auto append_levels = [&](const std::vector<std::uint32_t>& levels, int max_level) {
      if (max_level == 0) return;
      const std::vector<std::uint8_t> rle = rle_levels(levels, max_level);
      for (int b = 0; b < 4; ++b) page.push_back(static_cast<std::uint8_t>(rle.size() >> (8 * b)));
      page.insert(page.end(), rle.begin(), rle.end());
    };
    append_levels(c.repetition, c.max_repetition);
    append_levels(c.definition, c.max_definition);
    for (const std::string& s : c.strings) {
      for (int b = 0; b < 4; ++b) page.push_back(static_cast<std::uint8_t>(s.size() >> (8 * b)));
      page.insert(page.end(), s.begin(), s.end());
    }
    for (std::int64_t v : c.integers) {
      for (int b = 0; b < 8; ++b) page.push_back(static_cast<std::uint8_t>(static_cast<std::uint64_t>(v) >> (8 * b)));
    }
    const std::int64_t entries =
        c.entries >= 0 ? c.entries
                       : static_cast<std::int64_t>(c.max_definition > 0   ? c.definition.size()
                                                   : c.max_repetition > 0 ? c.repetition.size()
                                                                          : c.strings.size() + c.integers.size());
    ThriftWriter h;
    h.begin_struct();
    h.i32(1, 0);  // DATA_PAGE
    h.i32(2, static_cast<std::int64_t>(page.size()));
    h.i32(3, static_cast<std::int64_t>(page.size()));
    h.begin_struct_field(5);
    h.i32(1, entries);
    h.i32(2, 0);  // PLAIN
    h.i32(3, 3);  // RLE
    h.i32(4, 3);
    h.end_struct();
    h.end_struct();
    offsets.push_back(static_cast<std::int64_t>(file.size()));
    file.append(h.bytes.begin(), h.bytes.end());
    file.append(page.begin(), page.end());
    sizes.push_back(static_cast<std::int64_t>(h.bytes.size() + page.size()));
    counts.push_back(entries);
  }
  ThriftWriter f;
  f.begin_struct();
  f.i32(1, 1);  // version
  f.list_header(2, 12, schema.size());
  for (const TestSchemaElement& e : schema) {
    f.begin_struct();
    if (e.type >= 0) f.i32(1, e.type);
    if (&e != &schema[0]) f.i32(3, static_cast<std::int32_t>(e.repetition));
    f.binary(4, e.name);
    if (e.num_children > 0) f.i32(5, e.num_children);
    if (e.converted_type >= 0) f.i32(6, e.converted_type);
    f.end_struct();
  }
  f.i64(3, rows);
  f.list_header(4, 12, 1);
  f.begin_struct();
  f.list_header(1, 12, columns.size());
  for (std::size_t i = 0; i < columns.size(); ++i) {
    f.begin_struct();
    f.i64(2, offsets[i]);
    f.begin_struct_field(3);
    f.i32(1, static_cast<std::int32_t>(columns[i].type));
    f.list_header(2, 5, 1);
    f.zigzag(0);
    f.list_header(3, 8, 1);
    f.raw_binary("x");
    f.i32(4, 0);  // UNCOMPRESSED
    f.i64(5, counts[i]);
    f.i64(6, sizes[i]);
    f.i64(7, sizes[i]);
    f.i64(9, offsets[i]);
    f.end_struct();
    f.end_struct();
  }
  std::int64_t total = 0;
  for (std::int64_t s : sizes) total += s;
  f.i64(2, total);
  f.i64(3, rows);
  f.end_struct();
  f.end_struct();
  file.append(f.bytes.begin(), f.bytes.end());
  for (int b = 0; b < 4; ++b) file.push_back(static_cast<char>(f.bytes.size() >> (8 * b)));
  return file + "PAR1";
}

}  // namespace nanochat::data::testing
