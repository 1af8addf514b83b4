#pragma once
// Dremel record assembly: the leaf columns of one top-level field (repetition and definition
// levels plus values, as ParquetReader::read_column returns them) back into one value per row,
// as JSON: a struct is an object, a list an array, a null null, a string a string, an integer
// or float a number, a boolean a bool. The field's shape comes from parquet_schema.hpp, so every
// nesting of structs, lists and optional fields reads the same way, whatever the dataset.
//
// Walking the shape, every leaf under a node sits at that node's first entry: a definition level
// below the node's says the node is null (or, for a list, empty) and each leaf under it spends
// one entry; after a list element, a repetition level equal to the list's says another element
// follows, a lower one that the list ends. The leaves under a node must agree on that; where
// they do not, or a level contradicts the schema, the error names the file, row group, field,
// row and column.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/data/parquet_reader.hpp"
#include "nanochat/data/parquet_schema.hpp"

namespace nanochat::data {

class FieldAssembler {
 public:
  // columns[i] is leaf shape.first_leaf + i of schema; their values are moved out as rows are built.
  FieldAssembler(const parquet::Schema& schema, const parquet::Shape& shape, std::vector<ColumnData>& columns,
                 std::string what)
      : schema_(schema), shape_(shape), what_(std::move(what)) {
    NANOCHAT_CHECK(columns.size() == shape.end_leaf - shape.first_leaf, what_, ": ", columns.size(),
                   " columns for a field of ", shape.end_leaf - shape.first_leaf, " leaves");
    for (std::size_t i = 0; i < columns.size(); ++i) {
      cursors_.push_back({&columns[i], &schema.leaf(shape.first_leaf + i)});
    }
  }

  // The next row's value; `row` numbers it in errors.
  json::Value next_row(std::size_t row) {
    row_ = row;
    for (Cursor& c : cursors_) {
      check(!c.done(), "column '", c.leaf->path, "' ends before this row");
      check(c.repetition() == 0, "column '", c.leaf->path, "' continues the previous row past the end of its shape ",
            "(repetition level ", c.repetition(), " where a row starts at 0)");
    }
    return assemble(shape_);
  }

  // Checks that the rows read used every entry of every column.
  void finish() const {
    for (const Cursor& c : cursors_) {
      if (c.done()) continue;
      check(c.repetition() == 0, "column '", c.leaf->path, "' continues the row past the end of its shape ",
            "(repetition level ", c.repetition(), ")");
      NANOCHAT_FAIL(what_, ": column '", c.leaf->path, "' has ", c.column->entries - c.entry,
                    " entries after the last row");
    }
  }

 private:
  struct Cursor {
    ColumnData* column;
    const parquet::SchemaNode* leaf;
    std::size_t entry = 0;
    std::size_t value = 0;

    bool done() const { return entry == column->entries; }
    std::uint32_t repetition() const {
      return column->repetition_levels.empty() ? 0 : column->repetition_levels[entry];
    }
    std::uint32_t definition() const {
      return column->definition_levels.empty() ? 0 : column->definition_levels[entry];
    }
  };

  template <class... Parts>
  void check(bool ok, const Parts&... parts) const {
    if (!ok) [[unlikely]]
      NANOCHAT_FAIL(what_, ": row ", row_, ": ", parts...);
  }

  Cursor& first(const parquet::Shape& s) { return cursors_[s.first_leaf - shape_.first_leaf]; }

  json::Value assemble(const parquet::Shape& s) {
    const std::uint32_t level = first(s).definition();
    if (level < static_cast<std::uint32_t>(s.present_level)) {
      check(s.nullable, "column '", first(s).leaf->path, "' has definition level ", level, " where '",
            node_path(s), "' is required (level ", s.present_level, ")");
      skip(s, level);
      return json::Value{nullptr};
    }
    switch (s.kind) {
      case parquet::Shape::Kind::leaf: return take_value(first(s));
      case parquet::Shape::Kind::structure: {
        json::Object object;
        for (const parquet::Shape& member : s.children) object.insert_or_assign(member.name, assemble(member));
        return json::Value{std::move(object)};
      }
      case parquet::Shape::Kind::list: break;
    }
    json::Array elements;
    if (level < static_cast<std::uint32_t>(s.element_level)) {
      skip(s, level);
      return json::Value{std::move(elements)};
    }
    const auto repeat = static_cast<std::uint32_t>(s.repeat_level);
    for (;;) {
      elements.push_back(assemble(s.children[0]));
      // The next entry of every leaf under the list says whether another element follows.
      const bool more = !first(s).done() && first(s).repetition() == repeat;
      for (std::size_t i = s.first_leaf; i < s.end_leaf; ++i) {
        const Cursor& c = cursors_[i - shape_.first_leaf];
        const std::uint32_t next = c.done() ? 0 : c.repetition();
        check(next <= repeat, "column '", c.leaf->path, "' has repetition level ", next, " after element ",
              elements.size() - 1, " of '", node_path(s), "', deeper than that list's level ", repeat);
        check((next == repeat) == more, "columns '", first(s).leaf->path, "' and '", c.leaf->path,
              "' disagree on whether '", node_path(s), "' has more than ", elements.size(), " elements");
      }
      if (!more) break;
      check(first(s).definition() >= static_cast<std::uint32_t>(s.element_level), "column '", first(s).leaf->path,
            "' starts element ", elements.size(), " of '", node_path(s), "' with definition level ",
            first(s).definition(), ", below the element's ", s.element_level);
    }
    return json::Value{std::move(elements)};
  }

  // A null or empty node: every leaf under it holds one entry at the same definition level.
  void skip(const parquet::Shape& s, std::uint32_t level) {
    for (std::size_t i = s.first_leaf; i < s.end_leaf; ++i) {
      Cursor& c = cursors_[i - shape_.first_leaf];
      check(c.definition() == level, "columns '", first(s).leaf->path, "' and '", c.leaf->path,
            "' disagree on the definition level of '", node_path(s), "' (", level, " and ", c.definition(), ")");
      ++c.entry;
    }
  }

  json::Value take_value(Cursor& c) {
    ++c.entry;
    const std::size_t v = c.value++;
    ColumnValues& values = c.column->values;
    switch (static_cast<parquet::PhysicalType>(c.leaf->physical_type)) {
      case parquet::PhysicalType::byte_array: return json::Value{std::move(values.strings[v])};
      case parquet::PhysicalType::boolean: return json::Value{values.booleans[v] != 0};
      case parquet::PhysicalType::f32:
      case parquet::PhysicalType::f64: return json::Value{values.reals[v]};
      default: {
        // JSON numbers are doubles here: an integer beyond 2^53 would silently change.
        const std::int64_t n = values.integers[v];
        check(n >= -(std::int64_t{1} << 53) && n <= (std::int64_t{1} << 53), "column '", c.leaf->path, "' holds ",
              n, ", which a JSON number (a double) cannot hold exactly");
        return json::Value{static_cast<double>(n)};
      }
    }
  }

  const std::string& node_path(const parquet::Shape& s) const { return schema_.nodes()[s.node].path; }

  const parquet::Schema& schema_;
  const parquet::Shape& shape_;
  std::vector<Cursor> cursors_;
  std::string what_;
  std::size_t row_ = 0;
};

// One value per row of one row group: the top-level field's, assembled from its leaf columns.
inline std::vector<json::Value> read_field(ParquetReader& reader, std::size_t row_group, std::string_view field) {
  const parquet::Schema& schema = reader.schema();
  const parquet::Shape shape = schema.shape(schema.field(field));
  std::vector<ColumnData> columns(shape.end_leaf - shape.first_leaf);
  for (std::size_t i = 0; i < columns.size(); ++i) reader.read_column(row_group, shape.first_leaf + i, columns[i]);
  FieldAssembler assembler(schema, shape, columns, cat(reader.name(), ": row group ", row_group, ", field '", field, "'"));
  const auto rows = static_cast<std::size_t>(reader.row_group_rows(row_group));
  std::vector<json::Value> out;
  out.reserve(rows);
  for (std::size_t row = 0; row < rows; ++row) out.push_back(assembler.next_row(row));
  assembler.finish();
  return out;
}

}  // namespace nanochat::data
