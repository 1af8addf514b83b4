// Nested parquet against pyarrow: every fixture written by tests/reference/make_nested_parquet_fixtures.py
// (the Hugging Face datasets' schemas, every leaf type, lists of lists, structs of lists, nulls at
// every level, legacy 2-level lists) must assemble to exactly the rows pyarrow read back. Files
// that contradict their schema, damaged files and unsupported shapes must fail with an Error that
// names the file and the problem, never crash or allocate without bound.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "data/parquet_builder.hpp"
#include "error_text.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/data/parquet_records.hpp"

namespace {

namespace fs = std::filesystem;
namespace json = nanochat::json;
using nanochat::data::MemorySource;
using nanochat::data::ParquetOptions;
using nanochat::data::ParquetReader;
using nanochat::data::read_field;
using nanochat::data::parquet::PhysicalType;
using nanochat::data::parquet::Repetition;
using nanochat::data::testing::build_parquet;
using nanochat::data::testing::TestColumn;
using nanochat::data::testing::TestSchemaElement;

const fs::path kDir = fs::path(NANOCHAT_FIXTURES) / "data" / "parquet_nested";

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A JSON value as compact text with keys sorted (json::Object is ordered) and numbers exact, so
// two values are equal iff their texts are, and a mismatch prints readably.
std::string dump(const json::Value& v) {
  if (v.is_null()) return "null";
  if (const bool* b = std::get_if<bool>(&v.data)) return *b ? "true" : "false";
  if (const double* d = std::get_if<double>(&v.data)) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.17g", *d);
    return buffer;
  }
  if (v.is_string()) return json::quote(v.string("value"));
  std::string out;
  if (v.is_array()) {
    for (const json::Value& e : v.array("value")) out += (out.empty() ? "" : ",") + dump(e);
    return "[" + out + "]";
  }
  for (const auto& [key, member] : v.object("value")) out += (out.empty() ? "" : ",") + json::quote(key) + ":" + dump(member);
  return "{" + out + "}";
}

const json::Value& expected() {
  static const json::Value value = json::parse(slurp(kDir / "expected.json"), "expected.json");
  return value;
}

ParquetReader open_bytes(const std::string& bytes, const std::string& name, ParquetOptions options = {}) {
  return ParquetReader(std::make_unique<MemorySource>(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(),
                                                      name),
                       options);
}

// Every field of every row group, assembled.
void read_every_field(ParquetReader& reader) {
  for (std::size_t g = 0; g < reader.num_row_groups(); ++g) {
    for (std::size_t field : reader.schema().root().children) read_field(reader, g, reader.schema().nodes()[field].name);
  }
}

using nanochat::testing::error_of;

}  // namespace

TEST_CASE("data.parquet_nested: every fixture assembles to the rows pyarrow reads") {
  const json::Object& files = expected().object("expected");
  REQUIRE(files.size() == 17);
  std::size_t rows_seen = 0;
  for (const auto& [name, groups] : files) {
    CAPTURE(name);
    ParquetReader reader(kDir / (name + ".parquet"));
    const json::Array& want = groups.array("row groups");
    REQUIRE(reader.num_row_groups() == want.size());
    for (std::size_t g = 0; g < want.size(); ++g) {
      CAPTURE(g);
      const json::Array& rows = want[g].array("rows");
      REQUIRE(reader.row_group_rows(g) == static_cast<std::int64_t>(rows.size()));
      for (std::size_t field : reader.schema().root().children) {
        const std::string& field_name = reader.schema().nodes()[field].name;
        CAPTURE(field_name);
        const std::vector<json::Value> got = read_field(reader, g, field_name);
        REQUIRE(got.size() == rows.size());
        for (std::size_t r = 0; r < rows.size(); ++r) {
          CAPTURE(r);
          CHECK(dump(got[r]) == dump(*rows[r].find(field_name)));
        }
      }
      rows_seen += rows.size();
    }
  }
  CHECK(rows_seen > 1000);
}

TEST_CASE("data.parquet_nested: the fixtures hold the shapes and encodings they are meant to") {
  // Guards against a generator change that would quietly stop testing something.
  ParquetReader smoltalk(kDir / "smoltalk_zstd_dict_v1.parquet");
  CHECK(smoltalk.column_names() ==
        std::vector<std::string>{"messages.list.element.content", "messages.list.element.role", "source"});
  CHECK(smoltalk.num_row_groups() == 2);
  std::size_t nulls = 0, empties = 0;
  for (std::size_t g = 0; g < smoltalk.num_row_groups(); ++g) {
    for (const json::Value& row : read_field(smoltalk, g, "messages")) {
      nulls += row.is_null();
      empties += row.is_array() && row.array("row").empty();
    }
  }
  CHECK(nulls > 0);
  CHECK(empties > 0);
  ParquetReader legacy(kDir / "legacy_lists.parquet");
  CHECK(legacy.column_names() == std::vector<std::string>{"a.array", "b.list.x", "b.list.y", "c", "d.array.s", "e.e_tuple.s"});
  ParquetReader aux(kDir / "mmlu_auxiliary_train.parquet");
  CHECK(aux.column_names() == std::vector<std::string>{"train.answer", "train.choices.list.item", "train.question", "train.subject"});
  ParquetReader types(kDir / "types_dict_v2.parquet");
  CHECK(types.schema().leaf(types.column_index("grid.list.element.list.element")).max_repetition == 2);
  CHECK(types.schema().leaf(types.column_index("items.list.element.scores.list.element")).max_definition == 6);
}

TEST_CASE("data.parquet_nested: flat columns of a nested file still read through read_strings") {
  ParquetReader reader(kDir / "smoltalk_snappy_plain_v2.parquet");
  const json::Array& groups = expected().find("smoltalk_snappy_plain_v2")->array("groups");
  for (std::size_t g = 0; g < reader.num_row_groups(); ++g) {
    std::vector<std::string> want;
    std::size_t nulls = 0;
    for (const json::Value& row : groups[g].array("rows")) {
      const json::Value& source = *row.find("source");
      if (source.is_null()) {
        ++nulls;
      } else {
        want.push_back(source.string("source"));
      }
    }
    std::vector<std::string> got;
    CHECK(reader.read_strings(g, reader.column_index("source"), got) == nulls);
    CHECK(got == want);
  }
  std::vector<std::string> out;
  CHECK_THROWS_WITH_AS(reader.read_strings(0, 0, out),
                       doctest::Contains("column 'messages.list.element.content': a nested column (repetition level up to 1"),
                       nanochat::Error);
}

TEST_CASE("data.parquet_nested: a MAP column is refused by name and the file's other columns still read") {
  ParquetReader reader(kDir / "map_column.parquet");
  CHECK_THROWS_WITH_AS(read_field(reader, 0, "m"), doctest::Contains("map_column.parquet: field 'm' is a MAP"),
                       nanochat::Error);
  CHECK(reader.read_strings(0, "text") == std::vector<std::string>{"a", "b"});
  CHECK(dump(read_field(reader, 0, "text")[1]) == "\"b\"");
  CHECK_THROWS_WITH_AS(read_field(reader, 0, "nope"),
                       doctest::Contains("map_column.parquet: no field named 'nope' (the fields are: m, text)"),
                       nanochat::Error);
}

TEST_CASE("data.parquet_nested: an INT64 a double cannot hold is an error, not a rounded number") {
  ParquetReader reader(kDir / "int64_beyond_double.parquet");
  CHECK_THROWS_WITH_AS(read_field(reader, 0, "big"),
                       doctest::Contains("field 'big': row 1: column 'big' holds 1152921504606846976, which a JSON number"),
                       nanochat::Error);
}

TEST_CASE("data.parquet_nested: every truncation of a nested file fails cleanly") {
  for (const char* name : {"smoltalk_gzip_dict_v2", "types_delta_split_v2", "legacy_lists"}) {
    CAPTURE(name);
    const std::string bytes = slurp(kDir / (std::string(name) + ".parquet"));
    for (std::size_t cut = 0; cut < bytes.size(); cut += 61) {
      CAPTURE(cut);
      CHECK(error_of([&] {
              ParquetReader reader = open_bytes(bytes.substr(0, cut), "cut.parquet");
              read_every_field(reader);
            }).find("cut.parquet") != std::string::npos);
    }
  }
}

TEST_CASE("data.parquet_nested: single-byte corruption of a nested file never crashes") {
  // An uncompressed file, so the flips reach the level and value decoders directly.
  for (const char* name : {"types_plain_v1", "smoltalk_none_plain_v1"}) {
    CAPTURE(name);
    const std::string original = slurp(kDir / (std::string(name) + ".parquet"));
    std::size_t errors = 0;
    for (std::size_t i = 0; i < original.size(); i += 5) {
      std::string bytes = original;
      bytes[i] = static_cast<char>(bytes[i] ^ 0x5a);
      try {
        ParquetReader reader = open_bytes(bytes, "flip.parquet", {.max_page_bytes = 1 << 20, .max_page_values = 1 << 16});
        read_every_field(reader);
      } catch (const nanochat::Error& error) {
        CHECK(std::string(error.what()).find("flip.parquet") != std::string::npos);
        ++errors;
      }
    }
    CHECK(errors > 0);
  }
}

namespace {

// messages: list<struct<content: string, role: string>>, SmolTalk's shape, all levels explicit:
// content and role have max definition level 4 (messages, list, element, leaf) and repetition 1.
std::vector<TestSchemaElement> smoltalk_schema() {
  return {{"schema", Repetition::required, -1, 1},
          {"messages", Repetition::optional, -1, 1, 3},
          {"list", Repetition::repeated, -1, 1},
          {"element", Repetition::optional, -1, 2},
          {"content", Repetition::optional, 6},
          {"role", Repetition::optional, 6}};
}

TestColumn strings(std::vector<std::uint32_t> repetition, std::vector<std::uint32_t> definition,
                   std::vector<std::string> values) {
  return {.type = PhysicalType::byte_array, .max_repetition = 1, .max_definition = 4, .repetition = std::move(repetition),
          .definition = std::move(definition), .strings = std::move(values)};
}

std::string read_messages(const std::string& file, ParquetOptions options = {}) {
  ParquetReader reader = open_bytes(file, "crafted.parquet", options);
  std::string out;
  for (const json::Value& row : read_field(reader, 0, "messages")) out += dump(row) + "\n";
  return out;
}

}  // namespace

TEST_CASE("data.parquet_nested: hand-built levels assemble as Dremel's rules say") {
  // Row 0: two messages; row 1: null; row 2: empty; row 3: a null message, then one whose role is null.
  const std::string file = build_parquet(
      smoltalk_schema(), 4,
      {strings({0, 1, 0, 0, 0, 1}, {4, 4, 0, 1, 2, 4}, {"hi", "hello", "ok"}),
       strings({0, 1, 0, 0, 0, 1}, {4, 4, 0, 1, 2, 3}, {"user", "assistant"})});
  CHECK(read_messages(file) ==
        "[{\"content\":\"hi\",\"role\":\"user\"},{\"content\":\"hello\",\"role\":\"assistant\"}]\n"
        "null\n[]\n[null,{\"content\":\"ok\",\"role\":null}]\n");
}

TEST_CASE("data.parquet_nested: levels that contradict the schema or each other are errors naming the row") {
  const auto schema = smoltalk_schema();
  const TestColumn role = strings({0, 1, 0}, {4, 4, 4}, {"user", "assistant", "user"});
  SUBCASE("a definition level above the maximum") {
    const std::string file = build_parquet(schema, 2, {strings({0, 1, 0}, {4, 4, 5}, {"a", "b"}), role});
    CHECK_THROWS_WITH_AS(read_messages(file), doctest::Contains("definition level 5 of entry 2 exceeds the column's maximum 4"),
                         nanochat::Error);
  }
  SUBCASE("a repetition level wider than the level's bit width") {
    const std::string file = build_parquet(schema, 2, {strings({0, 3, 0}, {4, 4, 4}, {"a", "b", "c"}), role});
    CHECK_THROWS_WITH_AS(read_messages(file), doctest::Contains("column 'messages.list.element.content': data page 0 at "
                                                                "chunk offset 17: RLE run value 3 does not fit in 1 bits"),
                         nanochat::Error);
  }
  SUBCASE("a column chunk that starts inside a row") {
    const std::string file = build_parquet(schema, 2, {strings({1, 1, 0}, {4, 4, 4}, {"a", "b", "c"}), role});
    CHECK_THROWS_WITH_AS(read_messages(file),
                         doctest::Contains("column 'messages.list.element.content': the first entry has repetition level 1"),
                         nanochat::Error);
  }
  SUBCASE("leaves of one struct that disagree on a list's length") {
    const std::string file = build_parquet(schema, 2, {strings({0, 0, 1}, {4, 4, 4}, {"a", "b", "c"}), role});
    CHECK_THROWS_WITH_AS(read_messages(file),
                         doctest::Contains("crafted.parquet: row group 0, field 'messages': row 0: columns "
                                           "'messages.list.element.content' and 'messages.list.element.role' disagree "
                                           "on whether 'messages' has more than 1 elements"),
                         nanochat::Error);
  }
  SUBCASE("leaves that disagree on a null") {
    const std::string file = build_parquet(schema, 2, {strings({0, 0}, {0, 4}, {"a"}), strings({0, 0}, {1, 4}, {"b"})});
    CHECK_THROWS_WITH_AS(read_messages(file), doctest::Contains("row 0: columns 'messages.list.element.content' and "
                                                                "'messages.list.element.role' disagree on the definition "
                                                                "level of 'messages' (0 and 1)"),
                         nanochat::Error);
  }
  SUBCASE("an element that says it is absent in the middle of a list") {
    const std::string file =
        build_parquet(schema, 1, {strings({0, 1}, {4, 1}, {"a"}), strings({0, 1}, {4, 1}, {"user"})});
    CHECK_THROWS_WITH_AS(read_messages(file),
                         doctest::Contains("row 0: column 'messages.list.element.content' starts element 1 of "
                                           "'messages' with definition level 1, below the element's 2"),
                         nanochat::Error);
  }
  SUBCASE("more rows in the levels than in the row group") {
    const std::string file = build_parquet(schema, 1, {strings({0, 0}, {4, 4}, {"a", "b"}), strings({0, 0}, {4, 4}, {"c", "d"})});
    CHECK_THROWS_WITH_AS(read_messages(file), doctest::Contains("repetition levels start 2 rows, the row group has 1"),
                         nanochat::Error);
  }
}

TEST_CASE("data.parquet_nested: a repetition level deeper than its place in the row is an error") {
  // grid: list<list<int64>> (max repetition 2). Row 0 is [[]] closed by a level-2 entry that would
  // continue the inner list, but the outer list was empty: the entry belongs to no list.
  const std::vector<TestSchemaElement> schema = {{"schema", Repetition::required, -1, 1},
                                                 {"grid", Repetition::optional, -1, 1, 3},
                                                 {"list", Repetition::repeated, -1, 1},
                                                 {"element", Repetition::optional, -1, 1, 3},
                                                 {"list", Repetition::repeated, -1, 1},
                                                 {"element", Repetition::optional, 2}};
  const auto grid = [&](std::vector<std::uint32_t> repetition, std::vector<std::uint32_t> definition,
                        std::vector<std::int64_t> values) {
    return build_parquet(schema, 1,
                         {{.type = PhysicalType::int64, .max_repetition = 2, .max_definition = 5,
                           .repetition = std::move(repetition), .definition = std::move(definition),
                           .integers = std::move(values)}});
  };
  const auto read = [](const std::string& file) {
    ParquetReader reader = open_bytes(file, "grid.parquet");
    return dump(read_field(reader, 0, "grid")[0]);
  };
  CHECK(read(grid({0, 2, 1}, {5, 5, 3}, {7, 8})) == "[[7,8],[]]");
  CHECK_THROWS_WITH_AS(read(grid({0, 2}, {1, 5}, {7})),
                       doctest::Contains("grid.parquet: row group 0, field 'grid': row 0: column 'grid.list.element.list.element' "
                                         "continues the row past the end of its shape (repetition level 2)"),
                       nanochat::Error);
  CHECK_THROWS_WITH_AS(read(grid({0, 2}, {2, 5}, {7})),
                       doctest::Contains("row 0: column 'grid.list.element.list.element' has repetition level 2 after "
                                         "element 0 of 'grid', deeper than that list's level 1"),
                       nanochat::Error);
}

TEST_CASE("data.parquet_nested: a list of billions of elements in a few bytes is refused before it is built") {
  // A page claiming 2^31 - 1 entries: one RLE run of repetition level 1 encodes that in 5 bytes,
  // a single row with a list of that length. The reader must refuse it from the counts.
  TestColumn content = strings({0}, {4}, {});
  content.entries = INT32_MAX;
  TestColumn role = content;
  const std::string file = build_parquet(smoltalk_schema(), 1, {content, role});
  CHECK_THROWS_WITH_AS(read_messages(file), doctest::Contains("column chunk holds 2147483647 entries, more than the 16777216-entry limit"),
                       nanochat::Error);
  CHECK_THROWS_WITH_AS(read_messages(file, {.max_column_entries = std::size_t{1} << 40}),
                       doctest::Contains("2147483647 values exceed the 67108864-value limit"), nanochat::Error);
  // Within the limits, a page that claims more entries than its levels hold runs out of levels.
  content.entries = 1000;
  role.entries = 1000;
  CHECK_THROWS_WITH_AS(read_messages(build_parquet(smoltalk_schema(), 1, {content, role})),
                       doctest::Contains("RLE/bit-packed data ends before all values are read"), nanochat::Error);
}

TEST_CASE("data.parquet_nested: schemas the reader cannot represent are named errors") {
  const auto file_with = [](std::vector<TestSchemaElement> schema, TestColumn column) {
    return build_parquet(schema, 1, {column});
  };
  const TestColumn leaf{.type = PhysicalType::byte_array, .max_repetition = 0, .max_definition = 1, .definition = {1},
                        .strings = {"x"}};
  const TestColumn listed{.type = PhysicalType::byte_array, .max_repetition = 1, .max_definition = 2, .repetition = {0},
                          .definition = {2}, .strings = {"x"}};
  const auto field_error = [](const std::string& file) {
    return error_of([&] {
      ParquetReader reader = open_bytes(file, "shape.parquet");
      read_field(reader, 0, reader.schema().nodes()[reader.schema().root().children[0]].name);
    });
  };
  // A LIST group whose child is not repeated.
  CHECK(field_error(file_with({{"schema", Repetition::required, -1, 1},
                               {"l", Repetition::optional, -1, 1, 3},
                               {"element", Repetition::optional, 6}},
                              leaf))
            .find("shape.parquet: field 'l' is annotated LIST but is not a group with one REPEATED child") !=
        std::string::npos);
  // A repeated group annotated LIST.
  CHECK(field_error(file_with({{"schema", Repetition::required, -1, 1},
                               {"l", Repetition::repeated, -1, 1, 3},
                               {"element", Repetition::required, 6}},
                              {.type = PhysicalType::byte_array, .max_repetition = 1, .max_definition = 1,
                               .repetition = {0}, .definition = {1}, .strings = {"x"}}))
            .find("field 'l' is a REPEATED group annotated LIST") != std::string::npos);
  // A MAP annotation.
  CHECK(field_error(file_with({{"schema", Repetition::required, -1, 1},
                               {"m", Repetition::optional, -1, 1, 1},
                               {"key_value", Repetition::repeated, -1, 1},
                               {"key", Repetition::required, 6}},
                              listed))
            .find("field 'm' is a MAP") != std::string::npos);
  // Structural problems fail on open.
  const auto open_error = [](const std::string& file) {
    return error_of([&] { open_bytes(file, "tree.parquet"); });
  };
  CHECK(open_error(file_with({{"schema", Repetition::required, -1, 2}, {"a", Repetition::optional, 6}}, leaf))
            .find("tree.parquet: schema element 'schema' claims 2 children but 1 elements follow") != std::string::npos);
  CHECK(open_error(file_with({{"schema", Repetition::required, -1, 1}, {"g", Repetition::optional, -1, 0}}, leaf))
            .find("tree.parquet: field 'g' is a group with no children") != std::string::npos);
  CHECK(open_error(file_with({{"schema", Repetition::required, -1, 1}, {"a", static_cast<Repetition>(7), 6}}, leaf))
            .find("field 'a' has repetition unknown (7)") != std::string::npos);
  std::vector<TestSchemaElement> deep = {{"schema", Repetition::required, -1, 1}};
  for (int i = 0; i < 40; ++i) deep.push_back({"g", Repetition::required, -1, 1});
  deep.push_back({"a", Repetition::required, 6});
  CHECK(open_error(file_with(deep, {.type = PhysicalType::byte_array, .strings = {"x"}}))
            .find("tree.parquet: schema nests deeper than 32 levels") != std::string::npos);
  // A column whose physical type the reader does not decode.
  const std::string fixed = file_with({{"schema", Repetition::required, -1, 1}, {"f", Repetition::required, 7}},
                                      {.type = PhysicalType::fixed_len_byte_array, .entries = 1});
  CHECK(field_error(fixed).find("physical type FIXED_LEN_BYTE_ARRAY (7) is not supported") != std::string::npos);
}
