#pragma once
// Corpora behind one interface. A shard is one file of documents split into groups: parquet row
// groups, or for plain text and JSONL blocks of `group_size` documents (1024, a FineWeb-EDU row
// group). Readers see groups only, so ranks can stride over them the same way for every format.
// Text and JSONL shards index their document boundaries once on open and then read one group's
// byte range at a time, like parquet.

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/data/byte_source.hpp"
#include "nanochat/data/parquet_reader.hpp"

namespace nanochat::data {

// How a plain-text file is cut into documents.
enum class TextSplit {
  line,        // every non-blank line is a document
  paragraph,   // runs of non-blank lines separated by blank lines (kept joined by '\n')
  file,        // the whole file is one document
};

struct CorpusOptions {
  std::string parquet_column = "text";
  std::string jsonl_field = "text";
  TextSplit text_split = TextSplit::paragraph;
  std::size_t group_size = 1024;  // documents per group for text and JSONL shards
};

class DocumentShard {
 public:
  virtual ~DocumentShard() = default;
  virtual const std::string& name() const = 0;
  virtual std::size_t num_groups() const = 0;
  // Replaces out with the documents of one group, in file order, and returns how many null
  // values it skipped (parquet nulls and JSONL null fields are no documents; "" is one).
  virtual std::size_t read_group(std::size_t group, std::vector<std::string>& out) = 0;
};

class ParquetShard final : public DocumentShard {
 public:
  ParquetShard(const std::filesystem::path& path, const std::string& column)
      : reader_(path), column_(reader_.column_index(column)) {}

  const std::string& name() const override { return reader_.name(); }
  std::size_t num_groups() const override { return reader_.num_row_groups(); }
  std::size_t read_group(std::size_t group, std::vector<std::string>& out) override {
    out.clear();
    return reader_.read_strings(group, column_, out);
  }

 private:
  ParquetReader reader_;
  std::size_t column_;
};

// Shared by text and JSONL: documents are byte ranges of the file, found once on open.
class IndexedTextShard : public DocumentShard {
 public:
  const std::string& name() const override { return file_.name(); }
  std::size_t num_groups() const override {
    return (spans_.size() + group_size_ - 1) / group_size_;
  }

  std::size_t read_group(std::size_t group, std::vector<std::string>& out) override {
    NANOCHAT_CHECK(group < num_groups(), name(), ": group ", group, " out of range (", num_groups(),
                   " groups)");
    std::size_t first = group * group_size_;
    std::size_t last = std::min(spans_.size(), first + group_size_);
    std::uint64_t begin = spans_[first].begin;
    std::uint64_t end = spans_[last - 1].end;
    buffer_.resize(static_cast<std::size_t>(end - begin));
    file_.read_checked(begin, buffer_.size(), reinterpret_cast<std::uint8_t*>(buffer_.data()), "document group");
    out.clear();
    out.reserve(last - first);
    std::size_t nulls = 0;
    for (std::size_t d = first; d < last; ++d) {
      std::string_view raw(buffer_.data() + (spans_[d].begin - begin),
                           static_cast<std::size_t>(spans_[d].end - spans_[d].begin));
      if (auto text = decode(raw, d)) out.push_back(std::move(*text));
      else ++nulls;
    }
    return nulls;
  }

 protected:
  struct Span {
    std::uint64_t begin;
    std::uint64_t end;
  };

  IndexedTextShard(const std::filesystem::path& path, std::size_t group_size)
      : file_(path), group_size_(group_size) {
    NANOCHAT_CHECK(group_size > 0, name(), ": group size must be positive");
  }

  // Calls on_line(begin, end, blank) for every line; end excludes "\n" and a trailing "\r",
  // blank says the line holds only spaces, tabs and "\r". Streams the file in blocks so
  // indexing a large file does not load it.
  template <class OnLine>
  void for_each_line(OnLine&& on_line) {
    constexpr std::size_t kBlock = std::size_t{1} << 20;
    std::vector<char> block(kBlock);
    std::uint64_t line_begin = 0;
    bool blank = true;
    bool after_cr = false;
    for (std::uint64_t offset = 0; offset < file_.size(); offset += kBlock) {
      auto n = static_cast<std::size_t>(std::min<std::uint64_t>(kBlock, file_.size() - offset));
      file_.read(offset, n, reinterpret_cast<std::uint8_t*>(block.data()));
      for (std::size_t i = 0; i < n; ++i) {
        char c = block[i];
        if (c == '\n') {
          std::uint64_t end = offset + i;
          on_line(line_begin, after_cr ? end - 1 : end, blank);
          line_begin = end + 1;
          blank = true;
          after_cr = false;
          continue;
        }
        after_cr = c == '\r';
        if (c != ' ' && c != '\t' && c != '\r') blank = false;
      }
    }
    if (line_begin < file_.size()) on_line(line_begin, after_cr ? file_.size() - 1 : file_.size(), blank);
  }

  // A document's text, or nullopt for a null one (skipped and counted, as parquet nulls are).
  virtual std::optional<std::string> decode(std::string_view raw, std::size_t document) = 0;

  FileSource file_;
  std::size_t group_size_;
  std::vector<Span> spans_;
  std::vector<char> buffer_;

};

class TextShard final : public IndexedTextShard {
 public:
  TextShard(const std::filesystem::path& path, TextSplit split, std::size_t group_size)
      : IndexedTextShard(path, group_size) {
    if (split == TextSplit::file) {
      if (file_.size() > 0) spans_.push_back({0, file_.size()});
      return;
    }
    bool in_paragraph = false;
    for_each_line([&](std::uint64_t begin, std::uint64_t end, bool blank) {
      if (blank) {
        in_paragraph = false;
      } else if (split == TextSplit::paragraph && in_paragraph) {
        spans_.back().end = end;
      } else {
        spans_.push_back({begin, end});
        in_paragraph = true;
      }
    });
  }

 private:
  // Paragraphs keep their inner line breaks; "\r\n" inside them becomes "\n".
  std::optional<std::string> decode(std::string_view raw, std::size_t) override {
    std::string out;
    out.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\r' && i + 1 < raw.size() && raw[i + 1] == '\n') continue;
      out += raw[i];
    }
    return out;
  }
};

class JsonlShard final : public IndexedTextShard {
 public:
  JsonlShard(const std::filesystem::path& path, std::string field, std::size_t group_size)
      : IndexedTextShard(path, group_size), field_(std::move(field)) {
    for_each_line([&](std::uint64_t begin, std::uint64_t end, bool blank) {
      if (!blank) spans_.push_back({begin, end});
    });
  }

 private:
  // Only the field is decoded; other values are checked while skipped, without building a tree.
  // A lone surrogate is kept (as its 3 bytes) because Python's json.loads keeps it too; a repeated
  // field gives its last value, as json.loads does. A null field is a null document.
  std::optional<std::string> decode(std::string_view raw, std::size_t document) override {
    const std::string what = cat(name(), ": document ", document);
    json::Reader in(raw, what, json::LoneSurrogate::keep);
    std::optional<std::string> out;
    bool found = false;
    in.read_object([&](const std::string& key) {
      if (key != field_) return in.skip_value();
      found = true;
      if (in.accept_null()) return out.reset();
      if (in.peek() != '"') in.fail("field '", field_, "' is neither a string nor null");
      out = in.read_string();
    });
    in.finish();
    NANOCHAT_CHECK(found, what, ": has no field '", field_, "'");
    return out;
  }

  std::string field_;
};

inline bool is_shard_file(const std::filesystem::path& path) {
  auto ext = path.extension();
  return ext == ".parquet" || ext == ".jsonl" || ext == ".txt";
}

// Opens a shard by its extension: .parquet, .jsonl or .txt.
inline std::unique_ptr<DocumentShard> open_shard(const std::filesystem::path& path,
                                                 const CorpusOptions& options = {}) {
  auto ext = path.extension();
  if (ext == ".parquet") return std::make_unique<ParquetShard>(path, options.parquet_column);
  if (ext == ".jsonl") return std::make_unique<JsonlShard>(path, options.jsonl_field, options.group_size);
  if (ext == ".txt") return std::make_unique<TextShard>(path, options.text_split, options.group_size);
  NANOCHAT_FAIL(path.string(), ": unknown corpus format (expected .parquet, .jsonl or .txt)");
}

// The shard files of a directory in name order, as nanochat's list_parquet_files (temporary
// downloads, which end in ".tmp", are not shards).
inline std::vector<std::filesystem::path> list_shards(const std::filesystem::path& dir) {
  NANOCHAT_CHECK(std::filesystem::is_directory(dir), dir.string(), ": not a directory");
  std::vector<std::filesystem::path> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file() && is_shard_file(entry.path())) out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

enum class Split { train, val };

// nanochat's split: the last shard is validation, all others are training.
inline std::vector<std::filesystem::path> split_shards(std::vector<std::filesystem::path> shards,
                                                       Split split) {
  NANOCHAT_CHECK(shards.size() >= 2, "a corpus needs at least two shards (train + val), got ",
                 shards.size());
  if (split == Split::val) return {shards.back()};
  shards.pop_back();
  return shards;
}

// One group of documents and where it came from.
struct DocumentGroup {
  std::size_t shard = 0;
  std::size_t group = 0;
  std::vector<std::string> documents;
  std::size_t null_documents = 0;  // nulls of the group, skipped
};

// Walks groups start, start + step, ... of every shard in order (nanochat's
// parquets_iter_batched); rank r of W uses start = r, step = W.
class DocumentIterator {
 public:
  DocumentIterator(std::vector<std::filesystem::path> shards, CorpusOptions options = {},
                   std::size_t start = 0, std::size_t step = 1)
      : shards_(std::move(shards)), options_(std::move(options)), start_(start), step_(step),
        next_group_(start) {
    NANOCHAT_CHECK(step > 0, "document iterator step must be positive");
  }

  // Fills out with the next group; false when every shard is done.
  bool next(DocumentGroup& out) {
    while (shard_index_ < shards_.size()) {
      if (!shard_) shard_ = open_shard(shards_[shard_index_], options_);
      if (next_group_ < shard_->num_groups()) {
        out.shard = shard_index_;
        out.group = next_group_;
        out.null_documents = shard_->read_group(next_group_, out.documents);
        next_group_ += step_;
        return true;
      }
      shard_.reset();
      ++shard_index_;
      next_group_ = start_;
    }
    return false;
  }

 private:
  std::vector<std::filesystem::path> shards_;
  CorpusOptions options_;
  std::size_t start_;
  std::size_t step_;
  std::size_t shard_index_ = 0;
  std::size_t next_group_;
  std::unique_ptr<DocumentShard> shard_;
};

}  // namespace nanochat::data
