#pragma once
// A Parquet reader for flat files of string columns, the shape of nanochat's FineWeb-EDU shards.
// It reads the footer once, then one column chunk of one row group at a time with pread, so a
// 100 MB shard never sits in memory. Supported: zstd/snappy/gzip/uncompressed pages; PLAIN,
// dictionary (PLAIN_DICTIONARY, RLE_DICTIONARY), DELTA_LENGTH_BYTE_ARRAY and DELTA_BYTE_ARRAY
// encodings; data pages v1 and v2; REQUIRED and OPTIONAL columns; empty row groups and files.
// Nulls are skipped and counted. Every length and offset is checked before it is used.

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/data/byte_source.hpp"
#include "nanochat/data/codecs.hpp"
#include "nanochat/data/delta_encoding.hpp"
#include "nanochat/data/parquet_metadata.hpp"
#include "nanochat/data/rle_hybrid.hpp"
#include "nanochat/data/thrift_compact.hpp"

namespace nanochat::data {

struct ParquetOptions {
  // Largest decompressed page or metadata block accepted, and the most bytes a DELTA_BYTE_ARRAY
  // page may expand to (its shared prefixes are stored once); bounds memory on corrupt headers.
  std::size_t max_page_bytes = std::size_t{1} << 30;
  // Most values accepted in one page (a run of nulls costs almost no bytes, so bytes alone
  // do not bound it).
  std::size_t max_page_values = std::size_t{1} << 26;
};

class ParquetReader {
 public:
  explicit ParquetReader(const std::filesystem::path& path, ParquetOptions options = {})
      : ParquetReader(std::make_unique<FileSource>(path), options) {}

  explicit ParquetReader(std::unique_ptr<ByteSource> source, ParquetOptions options = {})
      : source_(std::move(source)), options_(options) {
    read_footer();
  }

  const std::string& name() const { return source_->name(); }
  std::size_t num_row_groups() const { return meta_.row_groups.size(); }
  std::int64_t num_rows() const { return meta_.num_rows; }
  std::int64_t row_group_rows(std::size_t row_group) const {
    check_row_group(row_group);
    return meta_.row_groups[row_group].num_rows;
  }
  const std::vector<std::string>& column_names() const { return column_names_; }

  std::size_t column_index(std::string_view column) const {
    for (std::size_t i = 0; i < column_names_.size(); ++i) {
      if (column_names_[i] == column) return i;
    }
    NANOCHAT_FAIL(name(), ": no column named '", column, "'");
  }

  // Appends the non-null values of one string column of one row group to out, in row order, and
  // returns how many nulls it skipped (an empty string is a value, not a null).
  std::size_t read_strings(std::size_t row_group, std::size_t column, std::vector<std::string>& out) {
    check_row_group(row_group);
    NANOCHAT_CHECK(column < column_names_.size(), name(), ": column ", column, " out of range (",
                   column_names_.size(), " columns)");
    const auto& group = meta_.row_groups[row_group];
    const auto& chunk = group.columns[column];
    std::string what = cat(name(), ": row group ", row_group, ", column '", column_names_[column], "'");
    NANOCHAT_CHECK(chunk.has_metadata, what, ": column chunk has no metadata");
    NANOCHAT_CHECK(chunk.type == parquet::PhysicalType::byte_array, what, ": physical type ", chunk.type,
                   " is not BYTE_ARRAY");
    NANOCHAT_CHECK(chunk.num_values == group.num_rows, what, ": holds ", chunk.num_values,
                   " values but the row group has ", group.num_rows, " rows");
    const auto& leaf = meta_.schema[column + 1];
    NANOCHAT_CHECK(leaf.repetition != parquet::Repetition::repeated, what,
                   ": repeated columns are not supported");
    max_definition_ = leaf.repetition == parquet::Repetition::optional ? 1 : 0;
    // An empty chunk has no pages to read, and writers leave its offsets as placeholders
    // (pyarrow writes data_page_offset 0 for a zero-row file).
    if (chunk.num_values == 0) return 0;

    load_chunk(chunk, what);
    dictionary_.clear();
    std::size_t first_out = out.size();
    std::size_t nulls = 0;
    std::size_t pos = 0;
    std::size_t data_pages = 0;
    std::int64_t values_read = 0;
    while (values_read < chunk.num_values) {
      NANOCHAT_CHECK(pos < chunk_.size(), what, ": column chunk ends after ", values_read, " of ",
                     chunk.num_values, " values");
      CompactReader header_in(chunk_.data() + pos, chunk_.size() - pos,
                              cat(what, ": page header at chunk offset ", pos));
      parquet::PageHeader header = parquet::read_page_header(header_in);
      pos += header_in.consumed();
      auto compressed = static_cast<std::size_t>(header.compressed_size);
      NANOCHAT_CHECK(compressed <= chunk_.size() - pos, what, ": page at chunk offset ", pos,
                     " claims ", compressed, " bytes but only ", chunk_.size() - pos, " remain");
      NANOCHAT_CHECK(static_cast<std::size_t>(header.uncompressed_size) <= options_.max_page_bytes,
                     what, ": page of ", header.uncompressed_size, " bytes exceeds the ",
                     options_.max_page_bytes, "-byte limit");
      const std::uint8_t* body = chunk_.data() + pos;
      std::size_t page_offset = pos;
      pos += compressed;
      switch (header.type) {
        case parquet::PageType::dictionary_page:
          read_dictionary_page(header, body, chunk.codec, what);
          break;
        case parquet::PageType::data_page:
        case parquet::PageType::data_page_v2: {
          NANOCHAT_CHECK(header.num_values >= 0 && header.num_values <= chunk.num_values - values_read,
                         what, ": data page holds ", header.num_values, " values, more than the ",
                         chunk.num_values - values_read, " left in the chunk");
          nulls += read_data_page(header, body, chunk.codec,
                                  cat(what, ": data page ", data_pages++, " at chunk offset ", page_offset),
                                  out);
          values_read += header.num_values;
          break;
        }
        case parquet::PageType::index_page: break;  // carries no values
        default: NANOCHAT_FAIL(what, ": page at chunk offset ", page_offset, " has page type ", header.type);
      }
    }
    NANOCHAT_CHECK(out.size() - first_out + nulls == static_cast<std::size_t>(group.num_rows), what,
                   ": decoded ", out.size() - first_out, " values and ", nulls, " nulls for ", group.num_rows,
                   " rows");
    return nulls;
  }

  // The non-null values of one column of one row group.
  std::vector<std::string> read_strings(std::size_t row_group, std::string_view column) {
    std::vector<std::string> out;
    read_strings(row_group, column_index(column), out);
    return out;
  }

 private:
  void check_row_group(std::size_t row_group) const {
    NANOCHAT_CHECK(row_group < meta_.row_groups.size(), name(), ": row group ", row_group,
                   " out of range (", meta_.row_groups.size(), " row groups)");
  }

  void read_footer() {
    constexpr std::uint64_t kMagic = 4;
    std::uint64_t size = source_->size();
    NANOCHAT_CHECK(size >= 2 * kMagic + 4, name(), ": ", size,
                   " bytes is too short to be a parquet file");
    std::uint8_t head[4];
    std::uint8_t tail[8];
    source_->read_checked(0, 4, head, "leading magic");
    source_->read_checked(size - 8, 8, tail, "footer length and magic");
    NANOCHAT_CHECK(std::memcmp(head, "PAR1", 4) == 0, name(), ": does not start with PAR1 (not a parquet file)");
    NANOCHAT_CHECK(std::memcmp(tail + 4, "PAR1", 4) == 0, name(),
                   ": does not end with PAR1 (truncated or not a parquet file)");
    std::uint64_t footer = std::uint64_t{tail[0]} | std::uint64_t{tail[1]} << 8 |
                           std::uint64_t{tail[2]} << 16 | std::uint64_t{tail[3]} << 24;
    NANOCHAT_CHECK(footer <= size - 2 * kMagic - 4, name(), ": footer length ", footer,
                   " exceeds the file (", size, " bytes)");
    NANOCHAT_CHECK(footer <= options_.max_page_bytes, name(), ": footer of ", footer,
                   " bytes exceeds the limit");
    data_end_ = size - 8 - footer;
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(footer));
    source_->read_checked(data_end_, bytes.size(), bytes.data(), "footer");
    CompactReader in(bytes.data(), bytes.size(), cat(name(), ": footer"));
    meta_ = parquet::read_file_metadata(in);
    check_schema();
  }

  void check_schema() {
    const auto& schema = meta_.schema;
    NANOCHAT_CHECK(!schema.empty(), name(), ": footer has no schema");
    NANOCHAT_CHECK(schema[0].num_children >= 0 &&
                       static_cast<std::size_t>(schema[0].num_children) == schema.size() - 1,
                   name(), ": only flat schemas are supported (root has ", schema[0].num_children,
                   " children, schema has ", schema.size() - 1, " leaves)");
    for (std::size_t i = 1; i < schema.size(); ++i) {
      NANOCHAT_CHECK(schema[i].num_children == 0 && schema[i].type >= 0, name(), ": column '",
                     schema[i].name, "' is nested; only flat schemas are supported");
      column_names_.push_back(schema[i].name);
    }
    NANOCHAT_CHECK(meta_.num_rows >= 0, name(), ": negative row count ", meta_.num_rows);
    std::int64_t rows = 0;
    for (std::size_t g = 0; g < meta_.row_groups.size(); ++g) {
      const auto& group = meta_.row_groups[g];
      NANOCHAT_CHECK(group.columns.size() == column_names_.size(), name(), ": row group ", g,
                     " has ", group.columns.size(), " columns, schema has ", column_names_.size());
      NANOCHAT_CHECK(group.num_rows >= 0 && group.num_rows <= meta_.num_rows - rows, name(),
                     ": row group ", g, " row count ", group.num_rows, " is inconsistent with the file's ",
                     meta_.num_rows);
      rows += group.num_rows;
    }
    NANOCHAT_CHECK(rows == meta_.num_rows, name(), ": row groups hold ", rows,
                   " rows but the footer says ", meta_.num_rows);
  }

  // Reads the byte range of one column chunk (dictionary page first, when there is one).
  void load_chunk(const parquet::ColumnChunk& chunk, const std::string& what) {
    std::int64_t start = chunk.data_page_offset;
    if (chunk.dictionary_page_offset > 0 && chunk.dictionary_page_offset < start) {
      start = chunk.dictionary_page_offset;
    }
    NANOCHAT_CHECK(start >= 4 && static_cast<std::uint64_t>(start) < data_end_, what,
                   ": column chunk offset ", start, " lies outside the data region [4, ", data_end_, ")");
    NANOCHAT_CHECK(chunk.total_compressed_size > 0 &&
                       static_cast<std::uint64_t>(chunk.total_compressed_size) <=
                           data_end_ - static_cast<std::uint64_t>(start),
                   what, ": column chunk of ", chunk.total_compressed_size, " bytes at offset ", start,
                   " runs past the data region (ends at ", data_end_, ")");
    chunk_.resize(static_cast<std::size_t>(chunk.total_compressed_size));
    source_->read_checked(static_cast<std::uint64_t>(start), chunk_.size(), chunk_.data(), "column chunk");
  }

  void read_dictionary_page(const parquet::PageHeader& header, const std::uint8_t* body,
                            parquet::Codec codec, const std::string& what) {
    NANOCHAT_CHECK(dictionary_.empty(), what, ": second dictionary page");
    NANOCHAT_CHECK(header.encoding == parquet::Encoding::plain ||
                       header.encoding == parquet::Encoding::plain_dictionary,
                   what, ": dictionary page encoding ", header.encoding, " is not PLAIN");
    NANOCHAT_CHECK(header.num_values >= 0, what, ": negative dictionary size");
    dictionary_bytes_.resize(static_cast<std::size_t>(header.uncompressed_size));
    decompress(codec, body, static_cast<std::size_t>(header.compressed_size), dictionary_bytes_.data(),
               dictionary_bytes_.size(), cat(what, ": dictionary page"));
    PlainCursor cursor{dictionary_bytes_.data(), dictionary_bytes_.data() + dictionary_bytes_.size()};
    // Each entry takes at least its 4-byte length, which bounds a corrupt count.
    NANOCHAT_CHECK(static_cast<std::size_t>(header.num_values) <= dictionary_bytes_.size() / 4, what,
                   ": dictionary claims ", header.num_values, " entries in ", dictionary_bytes_.size(),
                   " bytes");
    dictionary_.reserve(static_cast<std::size_t>(header.num_values));
    for (std::int32_t i = 0; i < header.num_values; ++i) {
      dictionary_.push_back(cursor.next(what, "dictionary"));
    }
  }

  // Decodes one data page, appending its non-null values to out; returns its null count.
  std::size_t read_data_page(const parquet::PageHeader& header, const std::uint8_t* body, parquet::Codec codec,
                             const std::string& page_what, std::vector<std::string>& out) {
    auto count = static_cast<std::size_t>(header.num_values);
    NANOCHAT_CHECK(count <= options_.max_page_values, page_what, ": ", count, " values exceed the ",
                   options_.max_page_values, "-value limit");
    auto compressed = static_cast<std::size_t>(header.compressed_size);
    auto uncompressed = static_cast<std::size_t>(header.uncompressed_size);
    const std::uint8_t* values = nullptr;
    const std::uint8_t* values_end = nullptr;
    definitions_.resize(count);
    if (header.type == parquet::PageType::data_page) {
      page_.resize(uncompressed);
      decompress(codec, body, compressed, page_.data(), uncompressed, page_what);
      values = page_.data();
      values_end = page_.data() + uncompressed;
      if (max_definition_ > 0) {
        NANOCHAT_CHECK(header.definition_level_encoding == parquet::Encoding::rle, page_what,
                       ": definition levels use encoding ", header.definition_level_encoding, ", not RLE");
        NANOCHAT_CHECK(uncompressed >= 4, page_what, ": too short for its definition levels");
        std::size_t length = std::size_t{values[0]} | std::size_t{values[1]} << 8 |
                             std::size_t{values[2]} << 16 | std::size_t{values[3]} << 24;
        NANOCHAT_CHECK(length <= uncompressed - 4, page_what, ": definition levels of ", length,
                       " bytes overrun the ", uncompressed, "-byte page");
        RleHybridDecoder(values + 4, length, 1, page_what).decode(definitions_.data(), count);
        values += 4 + length;
      }
    } else {
      NANOCHAT_CHECK(header.repetition_levels_length == 0, page_what,
                     ": repetition levels in a flat column");
      NANOCHAT_CHECK(header.definition_levels_length >= 0 &&
                         static_cast<std::size_t>(header.definition_levels_length) <= compressed &&
                         static_cast<std::size_t>(header.definition_levels_length) <= uncompressed,
                     page_what, ": definition levels of ", header.definition_levels_length,
                     " bytes overrun the page");
      auto levels = static_cast<std::size_t>(header.definition_levels_length);
      if (max_definition_ > 0) {
        RleHybridDecoder(body, levels, 1, page_what).decode(definitions_.data(), count);
      } else {
        NANOCHAT_CHECK(levels == 0, page_what, ": definition levels in a REQUIRED column");
      }
      // v2 stores the levels uncompressed; only the values section goes through the codec.
      page_.resize(uncompressed - levels);
      decompress(header.is_compressed ? codec : parquet::Codec::uncompressed, body + levels,
                 compressed - levels, page_.data(), page_.size(), page_what);
      values = page_.data();
      values_end = page_.data() + page_.size();
    }
    std::size_t present = count;
    if (max_definition_ > 0) {
      present = 0;
      for (std::size_t i = 0; i < count; ++i) {
        NANOCHAT_CHECK(definitions_[i] <= 1, page_what, ": definition level ", definitions_[i],
                       " exceeds the maximum 1");
        present += definitions_[i];
      }
    }
    // Nulls are skipped, so only the present values are decoded, in order; a page of nulls only
    // has nothing to decode, whatever its values section holds.
    if (present == 0) return count;
    out.reserve(out.size() + present);
    switch (header.encoding) {
      case parquet::Encoding::plain: {
        PlainCursor cursor{values, values_end};
        for (std::size_t i = 0; i < present; ++i) out.emplace_back(cursor.next(page_what, "value"));
        break;
      }
      case parquet::Encoding::plain_dictionary:
      case parquet::Encoding::rle_dictionary: {
        NANOCHAT_CHECK(values < values_end, page_what, ": dictionary-encoded page has no index bit width");
        int width = values[0];
        indices_.resize(present);
        RleHybridDecoder(values + 1, static_cast<std::size_t>(values_end - values - 1), width, page_what)
            .decode(indices_.data(), present);
        for (std::uint32_t index : indices_) {
          NANOCHAT_CHECK(index < dictionary_.size(), page_what, ": dictionary index ", index,
                         " out of range (dictionary has ", dictionary_.size(), " entries)");
          out.emplace_back(dictionary_[index]);
        }
        break;
      }
      case parquet::Encoding::delta_length_byte_array:
        read_delta_length(values, values_end, present, page_what, "", out);
        break;
      case parquet::Encoding::delta_byte_array: read_delta_strings(values, values_end, present, page_what, out); break;
      default:
        NANOCHAT_FAIL(page_what, ": value encoding ", header.encoding, " is not supported for ",
                      parquet::PhysicalType::byte_array,
                      " (PLAIN, PLAIN_DICTIONARY, RLE_DICTIONARY, DELTA_LENGTH_BYTE_ARRAY and DELTA_BYTE_ARRAY are)");
    }
    return count - present;
  }

  // DELTA_LENGTH_BYTE_ARRAY: the `count` lengths (DELTA_BINARY_PACKED), then the bytes back to
  // back. Appends the values to out; returns the end of the bytes.
  const std::uint8_t* read_delta_length(const std::uint8_t* pos, const std::uint8_t* end, std::size_t count,
                                        const std::string& what, const char* kind, std::vector<std::string>& out) {
    const std::string lengths_what = cat(what, ": DELTA_LENGTH_BYTE_ARRAY", kind, " lengths");
    pos = decode_delta_binary_packed(pos, end, count, lengths_, lengths_what);
    for (std::int64_t length : lengths_) {
      NANOCHAT_CHECK(length >= 0 && static_cast<std::uint64_t>(length) <= static_cast<std::uint64_t>(end - pos),
                     lengths_what, ": value of ", length, " bytes runs past the end of the page (",
                     end - pos, " bytes left)");
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
      NANOCHAT_CHECK(total <= options_.max_page_bytes, what, ": DELTA_BYTE_ARRAY values exceed the ",
                     options_.max_page_bytes, "-byte limit");
      if (prefix > 0) value.insert(0, out[first + i - 1], 0, static_cast<std::size_t>(prefix));
    }
  }

  // Walks PLAIN-encoded BYTE_ARRAY values: a 4-byte little-endian length, then the bytes.
  struct PlainCursor {
    const std::uint8_t* pos;
    const std::uint8_t* end;
    std::string_view next(const std::string& what, const char* kind) {
      NANOCHAT_CHECK(end - pos >= 4, what, ": ", kind, " length runs past the end of the page");
      std::size_t length = std::size_t{pos[0]} | std::size_t{pos[1]} << 8 |
                           std::size_t{pos[2]} << 16 | std::size_t{pos[3]} << 24;
      pos += 4;
      NANOCHAT_CHECK(length <= static_cast<std::size_t>(end - pos), what, ": ", kind, " of ", length,
                     " bytes runs past the end of the page");
      std::string_view out(reinterpret_cast<const char*>(pos), length);
      pos += length;
      return out;
    }
  };

  std::unique_ptr<ByteSource> source_;
  ParquetOptions options_;
  parquet::FileMetaData meta_;
  std::vector<std::string> column_names_;
  std::uint64_t data_end_ = 0;  // where the footer starts; column data lies before it
  int max_definition_ = 0;
  // Buffers reused across row groups so steady-state reading does not allocate per page.
  std::vector<std::uint8_t> chunk_;
  std::vector<std::uint8_t> page_;
  std::vector<std::uint8_t> dictionary_bytes_;
  std::vector<std::string_view> dictionary_;
  std::vector<std::uint32_t> definitions_;
  std::vector<std::uint32_t> indices_;
  std::vector<std::int64_t> lengths_;
  std::vector<std::int64_t> prefixes_;
};

}  // namespace nanochat::data
