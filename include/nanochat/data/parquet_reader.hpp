#pragma once
// A Parquet reader: flat string columns (nanochat's FineWeb-EDU shards) through a fast path, and
// any leaf column of a nested schema as Dremel's striped form (repetition and definition levels
// plus the non-null values), which parquet_records.hpp assembles back into rows. It reads the
// footer once, then one column chunk of one row group at a time with pread, so a 100 MB shard
// never sits in memory. Supported: zstd/snappy/gzip/uncompressed pages; data pages v1 and v2
// with RLE/bit-packed levels; the value encodings of parquet_values.hpp; empty row groups and
// files. Every length, offset and level is checked before it is used.

#include <bit>
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
#include "nanochat/data/parquet_metadata.hpp"
#include "nanochat/data/parquet_schema.hpp"
#include "nanochat/data/parquet_values.hpp"
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
  // Most entries (levels) read_column accepts in one column chunk: a few bytes of RLE runs can
  // claim millions of list elements, each of which costs memory once assembled.
  std::size_t max_column_entries = std::size_t{1} << 24;
};

// One leaf column of one row group in Dremel's striped form: entry i has repetition level
// repetition_levels[i] and definition level definition_levels[i] (a vector is empty when the
// leaf's maximum level is 0: every entry is then at level 0); entries at the leaf's maximum
// definition level carry the next value of `values`, the others are nulls or empty lists.
struct ColumnData {
  std::vector<std::uint32_t> repetition_levels;
  std::vector<std::uint32_t> definition_levels;
  ColumnValues values;
  std::size_t entries = 0;
};

class ParquetReader {
 public:
  explicit ParquetReader(const std::filesystem::path& path, ParquetOptions options = {})
      : ParquetReader(std::make_unique<FileSource>(path), options) {}

  explicit ParquetReader(std::unique_ptr<ByteSource> source, ParquetOptions options = {})
      : source_(std::move(source)), options_(options), values_(options.max_page_bytes) {
    read_footer();
  }

  const std::string& name() const { return source_->name(); }
  const ParquetOptions& options() const { return options_; }
  const parquet::Schema& schema() const { return schema_; }
  std::size_t num_row_groups() const { return meta_.row_groups.size(); }
  std::int64_t num_rows() const { return meta_.num_rows; }
  std::int64_t row_group_rows(std::size_t row_group) const {
    check_row_group(row_group);
    return meta_.row_groups[row_group].num_rows;
  }
  // The leaf columns' dotted paths, in column chunk order; for a flat file, the column names.
  const std::vector<std::string>& column_names() const { return column_names_; }

  std::size_t column_index(std::string_view column) const {
    for (std::size_t i = 0; i < column_names_.size(); ++i) {
      if (column_names_[i] == column) return i;
    }
    NANOCHAT_FAIL(name(), ": no column named '", column, "'");
  }

  // Appends the non-null values of one flat string column of one row group to out, in row order,
  // and returns how many nulls it skipped (an empty string is a value, not a null).
  std::size_t read_strings(std::size_t row_group, std::size_t column, std::vector<std::string>& out) {
    const ChunkRef ref = chunk_ref(row_group, column);
    const std::string& what = ref.what;
    const parquet::SchemaNode& leaf = schema_.leaf(column);
    NANOCHAT_CHECK(ref.chunk.type == parquet::PhysicalType::byte_array, what, ": physical type ", ref.chunk.type,
                   " is not BYTE_ARRAY");
    NANOCHAT_CHECK(leaf.max_repetition == 0 && leaf.max_definition <= 1, what,
                   ": a nested column (repetition level up to ", leaf.max_repetition, ", definition level up to ",
                   leaf.max_definition, "); read_strings reads flat ones, read_column and read_field nested ones");
    NANOCHAT_CHECK(ref.chunk.num_values == ref.group.num_rows, what, ": holds ", ref.chunk.num_values,
                   " values but the row group has ", ref.group.num_rows, " rows");
    // An empty chunk has no pages to read, and writers leave its offsets as placeholders
    // (pyarrow writes data_page_offset 0 for a zero-row file).
    if (ref.chunk.num_values == 0) return 0;
    const std::size_t first_out = out.size();
    std::size_t nulls = 0;
    for_each_data_page(ref, [&](const parquet::PageHeader& header, const std::uint8_t* body,
                                const std::string& page_what) {
      const auto count = static_cast<std::size_t>(header.num_values);
      definitions_.resize(count);
      const PageValues page = read_levels(header, body, ref.chunk.codec, page_what, leaf, nullptr, definitions_.data());
      // Nulls are skipped, so only the present values are decoded, in order; a page of nulls
      // only has nothing to decode, whatever its values section holds.
      if (page.present > 0) values_.decode_strings(header.encoding, page.begin, page.end, page.present, page_what, out);
      nulls += count - page.present;
    });
    NANOCHAT_CHECK(out.size() - first_out + nulls == static_cast<std::size_t>(ref.group.num_rows), what,
                   ": decoded ", out.size() - first_out, " values and ", nulls, " nulls for ", ref.group.num_rows,
                   " rows");
    return nulls;
  }

  // The non-null values of one flat string column of one row group.
  std::vector<std::string> read_strings(std::size_t row_group, std::string_view column) {
    std::vector<std::string> out;
    read_strings(row_group, column_index(column), out);
    return out;
  }

  // Replaces out with one leaf column of one row group, levels and values (any nesting).
  void read_column(std::size_t row_group, std::size_t column, ColumnData& out) {
    const ChunkRef ref = chunk_ref(row_group, column);
    const std::string& what = ref.what;
    const parquet::SchemaNode& leaf = schema_.leaf(column);
    NANOCHAT_CHECK(static_cast<std::int32_t>(ref.chunk.type) == leaf.physical_type, what, ": column chunk type ",
                   ref.chunk.type, " differs from the schema's ", static_cast<parquet::PhysicalType>(leaf.physical_type));
    NANOCHAT_CHECK(ref.chunk.num_values >= 0 &&
                       static_cast<std::uint64_t>(ref.chunk.num_values) <= options_.max_column_entries,
                   what, ": column chunk holds ", ref.chunk.num_values, " entries, more than the ",
                   options_.max_column_entries, "-entry limit (ParquetOptions::max_column_entries)");
    if (leaf.max_repetition == 0) {
      NANOCHAT_CHECK(ref.chunk.num_values == ref.group.num_rows, what, ": holds ", ref.chunk.num_values,
                     " values but the row group has ", ref.group.num_rows, " rows");
    }
    out.repetition_levels.clear();
    out.definition_levels.clear();
    out.values.clear();
    out.entries = 0;
    if (ref.chunk.num_values == 0) {
      NANOCHAT_CHECK(ref.group.num_rows == 0, what, ": no entries for ", ref.group.num_rows, " rows");
      return;
    }
    for_each_data_page(ref, [&](const parquet::PageHeader& header, const std::uint8_t* body,
                                const std::string& page_what) {
      const auto count = static_cast<std::size_t>(header.num_values);
      std::uint32_t* repetition = nullptr;
      std::uint32_t* definition = nullptr;
      if (leaf.max_repetition > 0) {
        out.repetition_levels.resize(out.entries + count);
        repetition = out.repetition_levels.data() + out.entries;
      }
      if (leaf.max_definition > 0) {
        out.definition_levels.resize(out.entries + count);
        definition = out.definition_levels.data() + out.entries;
      }
      const PageValues page = read_levels(header, body, ref.chunk.codec, page_what, leaf, repetition, definition);
      if (page.present > 0) values_.decode(header.encoding, page.begin, page.end, page.present, page_what, out.values);
      out.entries += count;
    });
    if (leaf.max_repetition > 0) {
      NANOCHAT_CHECK(out.repetition_levels[0] == 0, what, ": the first entry has repetition level ",
                     out.repetition_levels[0], ", but a row starts at 0");
      std::size_t rows = 0;
      for (std::uint32_t level : out.repetition_levels) rows += level == 0;
      NANOCHAT_CHECK(rows == static_cast<std::size_t>(ref.group.num_rows), what, ": repetition levels start ", rows,
                     " rows, the row group has ", ref.group.num_rows);
    }
  }

 private:
  struct ChunkRef {
    const parquet::RowGroup& group;
    const parquet::ColumnChunk& chunk;
    std::string what;  // "file: row group g, column 'path'"
  };

  // The values section of a data page, after its levels, and how many values it holds.
  struct PageValues {
    const std::uint8_t* begin;
    const std::uint8_t* end;
    std::size_t present;
  };

  void check_row_group(std::size_t row_group) const {
    NANOCHAT_CHECK(row_group < meta_.row_groups.size(), name(), ": row group ", row_group,
                   " out of range (", meta_.row_groups.size(), " row groups)");
  }

  ChunkRef chunk_ref(std::size_t row_group, std::size_t column) const {
    check_row_group(row_group);
    NANOCHAT_CHECK(column < column_names_.size(), name(), ": column ", column, " out of range (",
                   column_names_.size(), " columns)");
    const auto& group = meta_.row_groups[row_group];
    const auto& chunk = group.columns[column];
    std::string what = cat(name(), ": row group ", row_group, ", column '", column_names_[column], "'");
    NANOCHAT_CHECK(chunk.has_metadata, what, ": column chunk has no metadata");
    return {group, chunk, std::move(what)};
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
    std::uint64_t footer = load_le32(tail);
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
    schema_ = parquet::Schema(meta_.schema, name());
    for (std::size_t i = 0; i < schema_.num_leaves(); ++i) column_names_.push_back(schema_.leaf(i).path);
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

  // Walks the pages of a column chunk: reads its dictionary into values_ and calls
  // on_data_page(header, body, page_what) for each data page, until the chunk's values are read.
  template <class OnDataPage>
  void for_each_data_page(const ChunkRef& ref, OnDataPage&& on_data_page) {
    const parquet::ColumnChunk& chunk = ref.chunk;
    const std::string& what = ref.what;
    load_chunk(chunk, what);
    values_.start_chunk(chunk.type);
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
        case parquet::PageType::dictionary_page: {
          NANOCHAT_CHECK(header.encoding == parquet::Encoding::plain ||
                             header.encoding == parquet::Encoding::plain_dictionary,
                         what, ": dictionary page encoding ", header.encoding, " is not PLAIN");
          NANOCHAT_CHECK(header.num_values >= 0, what, ": negative dictionary size");
          dictionary_bytes_.resize(static_cast<std::size_t>(header.uncompressed_size));
          decompress(chunk.codec, body, compressed, dictionary_bytes_.data(), dictionary_bytes_.size(),
                     cat(what, ": dictionary page"));
          values_.read_dictionary(dictionary_bytes_, static_cast<std::size_t>(header.num_values), what);
          break;
        }
        case parquet::PageType::data_page:
        case parquet::PageType::data_page_v2: {
          NANOCHAT_CHECK(header.num_values >= 0 && header.num_values <= chunk.num_values - values_read,
                         what, ": data page holds ", header.num_values, " values, more than the ",
                         chunk.num_values - values_read, " left in the chunk");
          const std::string page_what = cat(what, ": data page ", data_pages++, " at chunk offset ", page_offset);
          NANOCHAT_CHECK(static_cast<std::size_t>(header.num_values) <= options_.max_page_values, page_what, ": ",
                         header.num_values, " values exceed the ", options_.max_page_values, "-value limit");
          on_data_page(header, body, page_what);
          values_read += header.num_values;
          break;
        }
        case parquet::PageType::index_page: break;  // carries no values
        default: NANOCHAT_FAIL(what, ": page at chunk offset ", page_offset, " has page type ", header.type);
      }
    }
  }

  // Decodes `count` levels of at most max_level (RLE/bit-packed hybrid, the bit width of
  // max_level) from [data, data + length) into out; `kind` says which levels for errors.
  static void decode_levels(const std::uint8_t* data, std::size_t length, int max_level, std::uint32_t* out,
                            std::size_t count, const std::string& what, const char* kind) {
    const int width = std::bit_width(static_cast<unsigned>(max_level));
    RleHybridDecoder(data, length, width, what).decode(out, count);
    // Widths hold up to 2^width - 1; a level above the maximum is corruption.
    if (max_level == (1 << width) - 1) return;
    for (std::size_t i = 0; i < count; ++i) {
      NANOCHAT_CHECK(out[i] <= static_cast<std::uint32_t>(max_level), what, ": ", kind, " level ", out[i],
                     " of entry ", i, " exceeds the column's maximum ", max_level);
    }
  }

  // A v1 page's level section: a 4-byte length, then the RLE/bit-packed levels. Returns its end.
  static const std::uint8_t* read_v1_levels(const std::uint8_t* pos, const std::uint8_t* end,
                                            parquet::Encoding encoding, int max_level, std::uint32_t* out,
                                            std::size_t count, const std::string& what, const char* kind) {
    NANOCHAT_CHECK(encoding == parquet::Encoding::rle, what, ": ", kind, " levels use encoding ", encoding,
                   ", not RLE");
    NANOCHAT_CHECK(end - pos >= 4, what, ": too short for its ", kind, " levels");
    const std::size_t length = load_le32(pos);
    NANOCHAT_CHECK(length <= static_cast<std::size_t>(end - pos - 4), what, ": ", kind, " levels of ", length,
                   " bytes overrun the page (", end - pos - 4, " bytes left)");
    decode_levels(pos + 4, length, max_level, out, count, what, kind);
    return pos + 4 + length;
  }

  // Decompresses one data page, decodes its levels into repetition and definition (each
  // header.num_values entries; pass nullptr where the leaf's maximum level is 0) and returns
  // its values section.
  PageValues read_levels(const parquet::PageHeader& header, const std::uint8_t* body, parquet::Codec codec,
                         const std::string& page_what, const parquet::SchemaNode& leaf, std::uint32_t* repetition,
                         std::uint32_t* definition) {
    const auto count = static_cast<std::size_t>(header.num_values);
    const auto compressed = static_cast<std::size_t>(header.compressed_size);
    const auto uncompressed = static_cast<std::size_t>(header.uncompressed_size);
    const int max_repetition = leaf.max_repetition;
    const int max_definition = leaf.max_definition;
    const std::uint8_t* values = nullptr;
    const std::uint8_t* values_end = nullptr;
    if (header.type == parquet::PageType::data_page) {
      page_.resize(uncompressed);
      decompress(codec, body, compressed, page_.data(), uncompressed, page_what);
      values = page_.data();
      values_end = page_.data() + uncompressed;
      if (max_repetition > 0) {
        values = read_v1_levels(values, values_end, header.repetition_level_encoding, max_repetition, repetition,
                                count, page_what, "repetition");
      }
      if (max_definition > 0) {
        values = read_v1_levels(values, values_end, header.definition_level_encoding, max_definition, definition,
                                count, page_what, "definition");
      }
    } else {
      // v2 stores the levels uncompressed ahead of the values; only the values go through the codec.
      const std::int64_t repetition_bytes = header.repetition_levels_length;
      const std::int64_t definition_bytes = header.definition_levels_length;
      NANOCHAT_CHECK(repetition_bytes >= 0 && definition_bytes >= 0 &&
                         static_cast<std::uint64_t>(repetition_bytes + definition_bytes) <= compressed &&
                         static_cast<std::uint64_t>(repetition_bytes + definition_bytes) <= uncompressed,
                     page_what, ": levels of ", repetition_bytes, " + ", definition_bytes, " bytes overrun the page");
      const auto levels = static_cast<std::size_t>(repetition_bytes + definition_bytes);
      if (max_repetition > 0) {
        decode_levels(body, static_cast<std::size_t>(repetition_bytes), max_repetition, repetition, count, page_what,
                      "repetition");
      } else {
        NANOCHAT_CHECK(repetition_bytes == 0, page_what, ": repetition levels in a column that repeats nothing");
      }
      if (max_definition > 0) {
        decode_levels(body + repetition_bytes, static_cast<std::size_t>(definition_bytes), max_definition,
                      definition, count, page_what, "definition");
      } else {
        NANOCHAT_CHECK(definition_bytes == 0, page_what, ": definition levels in a REQUIRED column");
      }
      page_.resize(uncompressed - levels);
      decompress(header.is_compressed ? codec : parquet::Codec::uncompressed, body + levels, compressed - levels,
                 page_.data(), page_.size(), page_what);
      values = page_.data();
      values_end = page_.data() + page_.size();
    }
    std::size_t present = count;
    if (max_definition > 0) {
      present = 0;
      const auto full = static_cast<std::uint32_t>(max_definition);
      for (std::size_t i = 0; i < count; ++i) present += definition[i] == full;
    }
    return {values, values_end, present};
  }

  std::unique_ptr<ByteSource> source_;
  ParquetOptions options_;
  parquet::FileMetaData meta_;
  parquet::Schema schema_;
  std::vector<std::string> column_names_;
  std::uint64_t data_end_ = 0;  // where the footer starts; column data lies before it
  // Buffers reused across row groups so steady-state reading does not allocate per page.
  std::vector<std::uint8_t> chunk_;
  std::vector<std::uint8_t> page_;
  std::vector<std::uint8_t> dictionary_bytes_;
  std::vector<std::uint32_t> definitions_;
  PageValueDecoder values_;
};

}  // namespace nanochat::data
