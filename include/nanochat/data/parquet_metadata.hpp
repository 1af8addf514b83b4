#pragma once
// The parts of Parquet's Thrift metadata (footer and page headers) the reader needs, decoded
// with CompactReader. Field ids follow parquet-format's parquet.thrift; fields
// we do not use are skipped, so files written by newer writers still parse.

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "nanochat/data/thrift_compact.hpp"

namespace nanochat::data::parquet {

enum class PhysicalType : std::int32_t {
  boolean = 0, int32 = 1, int64 = 2, int96 = 3, f32 = 4, f64 = 5, byte_array = 6,
  fixed_len_byte_array = 7,
};
enum class Repetition : std::int32_t { required = 0, optional = 1, repeated = 2 };
enum class Codec : std::int32_t {
  uncompressed = 0, snappy = 1, gzip = 2, lzo = 3, brotli = 4, lz4 = 5, zstd = 6, lz4_raw = 7,
};
enum class Encoding : std::int32_t {
  plain = 0, plain_dictionary = 2, rle = 3, bit_packed = 4, delta_binary_packed = 5,
  delta_length_byte_array = 6, delta_byte_array = 7, rle_dictionary = 8,
  byte_stream_split = 9,
};
enum class PageType : std::int32_t {
  data_page = 0, index_page = 1, dictionary_page = 2, data_page_v2 = 3,
};

// The one name table per enum, spelled as parquet.thrift does; errors print "NAME (number)"
// through the operator<< below, so a value read from a corrupt file still shows its number.
inline const char* name_of(PhysicalType type) {
  switch (type) {
    case PhysicalType::boolean: return "BOOLEAN";
    case PhysicalType::int32: return "INT32";
    case PhysicalType::int64: return "INT64";
    case PhysicalType::int96: return "INT96";
    case PhysicalType::f32: return "FLOAT";
    case PhysicalType::f64: return "DOUBLE";
    case PhysicalType::byte_array: return "BYTE_ARRAY";
    case PhysicalType::fixed_len_byte_array: return "FIXED_LEN_BYTE_ARRAY";
  }
  return "unknown";
}

inline const char* name_of(Repetition repetition) {
  switch (repetition) {
    case Repetition::required: return "REQUIRED";
    case Repetition::optional: return "OPTIONAL";
    case Repetition::repeated: return "REPEATED";
  }
  return "unknown";
}

inline const char* name_of(Codec codec) {
  switch (codec) {
    case Codec::uncompressed: return "UNCOMPRESSED";
    case Codec::snappy: return "SNAPPY";
    case Codec::gzip: return "GZIP";
    case Codec::lzo: return "LZO";
    case Codec::brotli: return "BROTLI";
    case Codec::lz4: return "LZ4";
    case Codec::zstd: return "ZSTD";
    case Codec::lz4_raw: return "LZ4_RAW";
  }
  return "unknown";
}

inline const char* name_of(Encoding encoding) {
  switch (encoding) {
    case Encoding::plain: return "PLAIN";
    case Encoding::plain_dictionary: return "PLAIN_DICTIONARY";
    case Encoding::rle: return "RLE";
    case Encoding::bit_packed: return "BIT_PACKED";
    case Encoding::delta_binary_packed: return "DELTA_BINARY_PACKED";
    case Encoding::delta_length_byte_array: return "DELTA_LENGTH_BYTE_ARRAY";
    case Encoding::delta_byte_array: return "DELTA_BYTE_ARRAY";
    case Encoding::rle_dictionary: return "RLE_DICTIONARY";
    case Encoding::byte_stream_split: return "BYTE_STREAM_SPLIT";
  }
  return "unknown";
}

inline const char* name_of(PageType type) {
  switch (type) {
    case PageType::data_page: return "DATA_PAGE";
    case PageType::index_page: return "INDEX_PAGE";
    case PageType::dictionary_page: return "DICTIONARY_PAGE";
    case PageType::data_page_v2: return "DATA_PAGE_V2";
  }
  return "unknown";
}

template <class E>
  requires requires(E e) { name_of(e); }
std::ostream& operator<<(std::ostream& out, E value) {
  return out << name_of(value) << " (" << static_cast<std::int32_t>(value) << ")";
}

// ConvertedType and LogicalType values the reader interprets (the annotations that change how
// a group's levels nest); the others (strings, dates, ...) do not change the shape.
inline constexpr std::int32_t kConvertedMap = 1, kConvertedMapKeyValue = 2, kConvertedList = 3;
inline constexpr std::int16_t kLogicalMap = 2, kLogicalList = 3;  // LogicalType union member ids

struct SchemaElement {
  std::int32_t type = -1;  // -1: a group node (no physical type)
  Repetition repetition = Repetition::required;
  std::string name;
  std::int32_t num_children = 0;
  std::int32_t converted_type = -1;  // -1 when absent
  std::int16_t logical_type = 0;     // the LogicalType union's member id; 0 when absent
};

struct ColumnChunk {
  PhysicalType type = static_cast<PhysicalType>(-1);  // -1: the metadata names none
  Codec codec = Codec::uncompressed;
  std::int64_t num_values = 0;
  std::int64_t total_compressed_size = 0;
  std::int64_t data_page_offset = -1;
  std::int64_t dictionary_page_offset = -1;  // -1 when absent
  bool has_metadata = false;
};

struct RowGroup {
  std::vector<ColumnChunk> columns;
  std::int64_t num_rows = 0;
};

struct FileMetaData {
  std::vector<SchemaElement> schema;
  std::int64_t num_rows = 0;
  std::vector<RowGroup> row_groups;
};

struct PageHeader {
  PageType type = PageType::data_page;
  std::int32_t uncompressed_size = -1;
  std::int32_t compressed_size = -1;
  std::int32_t num_values = -1;
  Encoding encoding = Encoding::plain;
  // v1 only: how the levels are encoded (RLE in every writer that matters).
  Encoding definition_level_encoding = Encoding::rle;
  Encoding repetition_level_encoding = Encoding::rle;
  // v2 only: level sections are stored uncompressed ahead of the (maybe compressed) values.
  std::int32_t num_nulls = 0;
  std::int32_t definition_levels_length = 0;
  std::int32_t repetition_levels_length = 0;
  bool is_compressed = true;
};

namespace detail {

inline std::int32_t read_int32(CompactReader& in, ThriftType type, const char* field) {
  std::int64_t value = in.read_int(type, field);
  NANOCHAT_CHECK(value >= INT32_MIN && value <= INT32_MAX, in.what(), ": field ", field,
                 " value ", value, " does not fit in 32 bits");
  return static_cast<std::int32_t>(value);
}

template <class T>
T read_enum(CompactReader& in, ThriftType type, const char* field) {
  return static_cast<T>(read_int32(in, type, field));
}

// Reads a list<struct>, calling read_one(in) for each element.
template <class ReadOne>
void read_struct_list(CompactReader& in, ThriftType type, const char* field, ReadOne&& read_one) {
  in.expect(type, ThriftType::list, field);
  ThriftType element;
  std::size_t size = in.read_list_header(element);
  in.expect(element, ThriftType::structure, field);
  for (std::size_t i = 0; i < size; ++i) read_one(in);
}

inline SchemaElement read_schema_element(CompactReader& in) {
  SchemaElement out;
  in.read_struct([&](std::int16_t id, ThriftType type) {
    switch (id) {
      case 1: out.type = read_int32(in, type, "SchemaElement.type"); break;
      case 3: out.repetition = read_enum<Repetition>(in, type, "SchemaElement.repetition_type"); break;
      case 4:
        in.expect(type, ThriftType::binary, "SchemaElement.name");
        out.name = std::string(in.read_binary());
        break;
      case 5: out.num_children = read_int32(in, type, "SchemaElement.num_children"); break;
      case 6: out.converted_type = read_int32(in, type, "SchemaElement.converted_type"); break;
      case 10:  // a union: the one field set says which logical type
        in.expect(type, ThriftType::structure, "SchemaElement.logicalType");
        in.read_struct([&](std::int16_t member, ThriftType t) {
          out.logical_type = member;
          in.skip(t);
        });
        break;
      default: in.skip(type);
    }
  });
  return out;
}

inline void read_column_metadata(CompactReader& in, ColumnChunk& out) {
  out.has_metadata = true;
  in.read_struct([&](std::int16_t id, ThriftType type) {
    switch (id) {
      case 1: out.type = read_enum<PhysicalType>(in, type, "ColumnMetaData.type"); break;
      case 4: out.codec = read_enum<Codec>(in, type, "ColumnMetaData.codec"); break;
      case 5: out.num_values = in.read_int(type, "ColumnMetaData.num_values"); break;
      case 7: out.total_compressed_size = in.read_int(type, "ColumnMetaData.total_compressed_size"); break;
      case 9: out.data_page_offset = in.read_int(type, "ColumnMetaData.data_page_offset"); break;
      case 11: out.dictionary_page_offset = in.read_int(type, "ColumnMetaData.dictionary_page_offset"); break;
      default: in.skip(type);
    }
  });
}

inline ColumnChunk read_column_chunk(CompactReader& in) {
  ColumnChunk out;
  in.read_struct([&](std::int16_t id, ThriftType type) {
    if (id == 3) {
      in.expect(type, ThriftType::structure, "ColumnChunk.meta_data");
      read_column_metadata(in, out);
    } else {
      in.skip(type);
    }
  });
  return out;
}

inline RowGroup read_row_group(CompactReader& in) {
  RowGroup out;
  in.read_struct([&](std::int16_t id, ThriftType type) {
    switch (id) {
      case 1:
        read_struct_list(in, type, "RowGroup.columns",
                         [&](CompactReader& r) { out.columns.push_back(read_column_chunk(r)); });
        break;
      case 3: out.num_rows = in.read_int(type, "RowGroup.num_rows"); break;
      default: in.skip(type);
    }
  });
  return out;
}

}  // namespace detail

inline FileMetaData read_file_metadata(CompactReader& in) {
  FileMetaData out;
  in.read_struct([&](std::int16_t id, ThriftType type) {
    switch (id) {
      case 2:
        detail::read_struct_list(in, type, "FileMetaData.schema", [&](CompactReader& r) {
          out.schema.push_back(detail::read_schema_element(r));
        });
        break;
      case 3: out.num_rows = in.read_int(type, "FileMetaData.num_rows"); break;
      case 4:
        detail::read_struct_list(in, type, "FileMetaData.row_groups", [&](CompactReader& r) {
          out.row_groups.push_back(detail::read_row_group(r));
        });
        break;
      default: in.skip(type);
    }
  });
  return out;
}

inline PageHeader read_page_header(CompactReader& in) {
  using detail::read_enum;
  using detail::read_int32;
  PageHeader out;
  bool has_type = false;
  in.read_struct([&](std::int16_t id, ThriftType type) {
    switch (id) {
      case 1:
        out.type = read_enum<PageType>(in, type, "PageHeader.type");
        has_type = true;
        break;
      case 2: out.uncompressed_size = read_int32(in, type, "PageHeader.uncompressed_page_size"); break;
      case 3: out.compressed_size = read_int32(in, type, "PageHeader.compressed_page_size"); break;
      case 5:  // DataPageHeader
        in.expect(type, ThriftType::structure, "PageHeader.data_page_header");
        in.read_struct([&](std::int16_t sub, ThriftType t) {
          switch (sub) {
            case 1: out.num_values = read_int32(in, t, "DataPageHeader.num_values"); break;
            case 2: out.encoding = read_enum<Encoding>(in, t, "DataPageHeader.encoding"); break;
            case 3:
              out.definition_level_encoding =
                  read_enum<Encoding>(in, t, "DataPageHeader.definition_level_encoding");
              break;
            case 4:
              out.repetition_level_encoding =
                  read_enum<Encoding>(in, t, "DataPageHeader.repetition_level_encoding");
              break;
            default: in.skip(t);
          }
        });
        break;
      case 7:  // DictionaryPageHeader
        in.expect(type, ThriftType::structure, "PageHeader.dictionary_page_header");
        in.read_struct([&](std::int16_t sub, ThriftType t) {
          switch (sub) {
            case 1: out.num_values = read_int32(in, t, "DictionaryPageHeader.num_values"); break;
            case 2: out.encoding = read_enum<Encoding>(in, t, "DictionaryPageHeader.encoding"); break;
            default: in.skip(t);
          }
        });
        break;
      case 8:  // DataPageHeaderV2
        in.expect(type, ThriftType::structure, "PageHeader.data_page_header_v2");
        in.read_struct([&](std::int16_t sub, ThriftType t) {
          switch (sub) {
            case 1: out.num_values = read_int32(in, t, "DataPageHeaderV2.num_values"); break;
            case 2: out.num_nulls = read_int32(in, t, "DataPageHeaderV2.num_nulls"); break;
            case 4: out.encoding = read_enum<Encoding>(in, t, "DataPageHeaderV2.encoding"); break;
            case 5:
              out.definition_levels_length =
                  read_int32(in, t, "DataPageHeaderV2.definition_levels_byte_length");
              break;
            case 6:
              out.repetition_levels_length =
                  read_int32(in, t, "DataPageHeaderV2.repetition_levels_byte_length");
              break;
            case 7: out.is_compressed = in.read_bool(t, "DataPageHeaderV2.is_compressed"); break;
            default: in.skip(t);
          }
        });
        break;
      default: in.skip(type);
    }
  });
  NANOCHAT_CHECK(has_type, in.what(), ": page header has no page type");
  NANOCHAT_CHECK(out.compressed_size >= 0 && out.uncompressed_size >= 0, in.what(),
                 ": page header has missing or negative sizes (compressed ", out.compressed_size,
                 ", uncompressed ", out.uncompressed_size, ")");
  return out;
}

}  // namespace nanochat::data::parquet
