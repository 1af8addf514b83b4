#pragma once
// The rows of a Hugging Face split as its parquet shards hold them: a directory's *.parquet in
// name order (a split may have several shards), or one file; each row a JSON object of the
// fields a reader asks for, assembled by data::read_field whatever their nesting (SmolTalk's
// list<struct>, MMLU's list<string>, ARC's struct of lists).

#include <cstddef>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/data/parquet_reader.hpp"
#include "nanochat/data/parquet_records.hpp"
#include "nanochat/tasks/hub_datasets.hpp"

namespace nanochat::tasks {

// The files a split path stands for: a directory's *.parquet in name order (a split may have
// several shards), or the file itself (parquet, or another format a reader knows by its
// extension). A missing path or a directory without parquet files is an Error whose remedy
// (dataset_remedy) names `download --tasks` and what goes there: the repository's shards, or
// `other_forms`.
inline std::vector<std::filesystem::path> split_files(const std::filesystem::path& path, std::string_view dataset,
                                                      std::string_view repo, std::string_view other_forms) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) return {path};
  const std::string contents = hub_split_contents(repo, other_forms);
  NANOCHAT_CHECK(std::filesystem::is_directory(path, ec), dataset, ": missing ", path.string(), "; ",
                 dataset_remedy(contents, path));
  return require_parquet_shards(path, dataset, contents);
}

// Calls on_row(row, where) for every row of the files in order: row an object holding `fields`
// (each a top-level field of every file), where "file: row N" (N from 0 in each file).
template <class OnRow>
void for_each_parquet_row(const std::vector<std::filesystem::path>& files, std::initializer_list<std::string_view> fields,
                          OnRow on_row) {
  for (const auto& file : files) {
    data::ParquetReader reader(file);
    std::size_t row_number = 0;
    for (std::size_t g = 0; g < reader.num_row_groups(); ++g) {
      std::vector<std::vector<json::Value>> columns;
      for (std::string_view field : fields) columns.push_back(data::read_field(reader, g, field));
      const auto rows = static_cast<std::size_t>(reader.row_group_rows(g));
      for (std::size_t r = 0; r < rows; ++r, ++row_number) {
        json::Object row;
        std::size_t f = 0;
        for (std::string_view field : fields) row.insert_or_assign(std::string(field), std::move(columns[f++][r]));
        on_row(json::Value{std::move(row)}, cat(file.string(), ": row ", row_number));
      }
    }
  }
}

}  // namespace nanochat::tasks
