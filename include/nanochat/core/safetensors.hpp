#pragma once
// Reader and writer of the safetensors format: an 8-byte little-endian header length N, N bytes of
// JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then
// the data section. Reading validates as strictly as the reference (Rust) implementation: the
// tensors must tile the data section exactly, so overlaps, gaps and trailing bytes are all errors.
// Every problem is an Error naming the file; nothing in a file can make the reader crash.
//
// The header is read with the pull json::Reader rather than as a document tree because the format
// needs what a tree hides: exact 64-bit offsets, duplicate keys detected, key order.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "nanochat/core/atomic_file.hpp"
#include "nanochat/core/dtype.hpp"
#include "nanochat/core/error.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/core/shape.hpp"
#include "nanochat/core/utf8.hpp"

namespace nanochat {

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  std::span<const std::byte> bytes;  // numel * size_of(dtype) bytes, aligned for the dtype
};

namespace detail {

inline std::optional<DType> safetensors_dtype(std::string_view name) {
  for (DType t : {DType::f32, DType::bf16, DType::i32, DType::i64, DType::u8}) {
    if (name_of(t) == name) return t;
  }
  return std::nullopt;
}

// One tensor entry of a header as written, before it is checked against the data section.
struct SafetensorsEntry {
  std::string name;
  std::string dtype;
  std::vector<std::uint64_t> shape;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;  // in header order
  std::map<std::string, std::string> metadata;
};

// A shape or data_offsets: a few exact integers (a long array is a corrupt header, not a shape).
inline std::vector<std::uint64_t> read_uint_array(json::Reader& in) {
  std::vector<std::uint64_t> values;
  in.read_array([&] {
    if (values.size() == 64) in.fail("array is too long");
    values.push_back(in.read_uint64());
  });
  return values;
}

inline SafetensorsEntry read_entry(json::Reader& in, std::string name) {
  SafetensorsEntry e;
  e.name = std::move(name);
  bool has_dtype = false, has_shape = false, has_offsets = false;
  in.read_object([&](const std::string& key) {
    if (key == "dtype" && !has_dtype) {
      if (in.peek() != '"') in.fail("dtype of '", e.name, "' must be a string");
      e.dtype = in.read_string();
      has_dtype = true;
    } else if (key == "shape" && !has_shape) {
      e.shape = read_uint_array(in);
      has_shape = true;
    } else if (key == "data_offsets" && !has_offsets) {
      const std::vector<std::uint64_t> offsets = read_uint_array(in);
      if (offsets.size() != 2) in.fail("data_offsets of '", e.name, "' must be [begin, end]");
      e.begin = offsets[0];
      e.end = offsets[1];
      has_offsets = true;
    } else {
      in.fail("unexpected or repeated key '", key, "' in tensor '", e.name, "'");
    }
  });
  if (!has_dtype || !has_shape || !has_offsets)
    in.fail("tensor '", e.name, "' needs dtype, shape and data_offsets");
  return e;
}

// Reads exactly the header's grammar: a top-level object of tensor entries (objects with
// "dtype": string, "shape": [uint...], "data_offsets": [uint, uint]) and an optional
// "__metadata__" object of strings. The header must be UTF-8 and lone surrogates are rejected,
// as the reference reader does.
inline SafetensorsHeader parse_safetensors_header(std::string_view text, std::string_view file) {
  const std::string source = cat("safetensors file ", file);
  NANOCHAT_CHECK(is_valid_utf8(text), source, ": the header is not valid UTF-8");
  json::Reader in(text, source, json::LoneSurrogate::reject, "header");
  SafetensorsHeader header;
  std::set<std::string, std::less<>> seen;
  in.read_object([&](std::string key) {
    if (!seen.insert(key).second) in.fail("duplicate entry '", key, "'");
    if (key == "__metadata__") {
      in.read_object([&](std::string mkey) {
        if (header.metadata.contains(mkey)) in.fail("duplicate metadata key '", mkey, "'");
        if (in.peek() != '"') in.fail("metadata value of '", mkey, "' must be a string");
        std::string value = in.read_string();
        header.metadata.emplace(std::move(mkey), std::move(value));
      });
    } else {
      header.entries.push_back(read_entry(in, std::move(key)));
    }
  });
  in.finish();
  return header;
}

}  // namespace detail

class SafetensorsFile {
 public:
  // The reference implementation's limit; a larger header is a corrupt length field.
  static constexpr std::uint64_t max_header_bytes = 100'000'000;

  static SafetensorsFile load(const std::filesystem::path& path) {
    SafetensorsFile f;
    f.path_ = path.string();
    const std::string& file = f.path_;
    std::error_code ec;
    const std::uintmax_t file_size = std::filesystem::file_size(path, ec);
    NANOCHAT_CHECK(!ec, "safetensors file ", file, ": cannot read: ", ec.message());
    std::ifstream in(path, std::ios::binary);
    NANOCHAT_CHECK(in.good(), "safetensors file ", file, ": cannot open");
    NANOCHAT_CHECK(file_size >= 8, "safetensors file ", file, ": truncated: ", file_size,
                   " bytes, shorter than the 8-byte header length");

    unsigned char len_bytes[8];
    in.read(reinterpret_cast<char*>(len_bytes), 8);
    NANOCHAT_CHECK(in.good(), "safetensors file ", file, ": error reading the header length");
    std::uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
    NANOCHAT_CHECK(header_len <= max_header_bytes, "safetensors file ", file, ": header length ",
                   header_len, " exceeds the format's limit of ", max_header_bytes, " bytes");
    NANOCHAT_CHECK(header_len <= file_size - 8, "safetensors file ", file,
                   ": truncated: the header claims ", header_len, " bytes but only ",
                   file_size - 8, " follow the length field");

    std::string header_text(header_len, '\0');
    in.read(header_text.data(), static_cast<std::streamsize>(header_len));
    NANOCHAT_CHECK(in.good(), "safetensors file ", file, ": error reading the header");
    detail::SafetensorsHeader header = detail::parse_safetensors_header(header_text, file);

    // operator new[] aligns to at least 16 bytes, so offsets that are multiples of the element
    // size give aligned tensors; the rare misaligned one is copied below.
    const std::uint64_t data_size = file_size - 8 - header_len;
    f.data_.reset(new std::byte[data_size > 0 ? data_size : 1]);
    in.read(reinterpret_cast<char*>(f.data_.get()), static_cast<std::streamsize>(data_size));
    NANOCHAT_CHECK(in.good(), "safetensors file ", file,
                   ": error reading the data section");

    f.build_index(std::move(header), data_size);
    return f;
  }

  SafetensorsFile(SafetensorsFile&&) noexcept = default;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept = default;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }

  bool contains(std::string_view name) const { return index_.find(name) != index_.end(); }

  const SafetensorsTensor& at(std::string_view name) const {
    const auto it = index_.find(name);
    NANOCHAT_CHECK(it != index_.end(), "safetensors file ", path_, " has no tensor '", name,
                   "' (it holds ", tensors_.size(), " tensors)");
    return tensors_[it->second];
  }

  // The tensor's elements; T must be the stored type (no conversion happens here).
  template <class T>
  std::span<const T> values(std::string_view name) const {
    const SafetensorsTensor& t = at(name);
    NANOCHAT_CHECK(t.dtype == dtype_of<T>(), "safetensors file ", path_, ": tensor '", name,
                   "' is ", name_of(t.dtype), " but ", name_of(dtype_of<T>()), " was requested");
    return {reinterpret_cast<const T*>(t.bytes.data()), static_cast<std::size_t>(t.shape.numel())};
  }

  // In data order (by offset), which for files this library writes is the order given to save.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;

  void build_index(detail::SafetensorsHeader header, std::uint64_t data_size) {
    const std::string& file = path_;
    metadata_ = std::move(header.metadata);
    std::vector<detail::SafetensorsEntry>& entries = header.entries;
    // Stable sort keeps header order between zero-size tensors at the same offset.
    std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t expected_begin = 0;
    std::string previous = "the start of the data section";
    for (detail::SafetensorsEntry& e : entries) {
      const std::optional<DType> dtype = detail::safetensors_dtype(e.dtype);
      NANOCHAT_CHECK(dtype.has_value(), "safetensors file ", file, ": tensor '", e.name,
                     "' has unsupported dtype '", e.dtype, "' (supported: F32, BF16, I32, I64, U8)");
      NANOCHAT_CHECK(e.shape.size() <= static_cast<std::size_t>(max_rank), "safetensors file ",
                     file, ": tensor '", e.name, "' has rank ", e.shape.size(),
                     ", more than the supported ", max_rank);
      // The product of the nonzero extents, in bytes, must fit Shape's int64: checked over the
      // nonzero ones so that an empty tensor's other extents cannot be absurd either.
      std::uint64_t nonzero_bytes = size_of(*dtype);
      bool empty = false;
      for (std::uint64_t extent : e.shape) {
        empty = empty || extent == 0;
        if (extent == 0) continue;
        NANOCHAT_CHECK(nonzero_bytes <= static_cast<std::uint64_t>(INT64_MAX) / extent, "safetensors file ", file,
                       ": tensor '", e.name, "' has a shape whose size overflows");
        nonzero_bytes *= extent;
      }
      const std::uint64_t bytes = empty ? 0 : nonzero_bytes;
      NANOCHAT_CHECK(e.begin <= e.end, "safetensors file ", file, ": tensor '", e.name,
                     "' has data_offsets [", e.begin, ", ", e.end, "] with begin after end");
      NANOCHAT_CHECK(e.end <= data_size, "safetensors file ", file, ": tensor '", e.name,
                     "' ends at byte ", e.end, " but the data section has only ", data_size,
                     " bytes (truncated file?)");
      NANOCHAT_CHECK(e.end - e.begin == bytes, "safetensors file ", file, ": tensor '", e.name,
                     "' spans ", e.end - e.begin, " bytes but its ", e.dtype, " shape needs ",
                     bytes);
      NANOCHAT_CHECK(e.begin >= expected_begin, "safetensors file ", file, ": tensor '", e.name,
                     "' at byte ", e.begin, " overlaps ", previous, " ending at ", expected_begin);
      NANOCHAT_CHECK(e.begin == expected_begin, "safetensors file ", file, ": gap of ",
                     e.begin - expected_begin, " bytes before tensor '", e.name, "'");
      expected_begin = e.end;
      previous = "tensor '" + e.name + "'";

      SafetensorsTensor t;
      t.name = std::move(e.name);
      t.dtype = *dtype;
      t.shape = make_shape(e.shape);
      const std::byte* p = data_.get() + e.begin;
      if (reinterpret_cast<std::uintptr_t>(p) % size_of(*dtype) != 0) {
        auto& copy = misaligned_.emplace_back(new std::byte[bytes]);
        std::memcpy(copy.get(), p, bytes);
        p = copy.get();
      }
      t.bytes = {p, static_cast<std::size_t>(bytes)};
      index_.emplace(t.name, tensors_.size());
      tensors_.push_back(std::move(t));
    }
    NANOCHAT_CHECK(expected_begin == data_size, "safetensors file ", file, ": ",
                   data_size - expected_begin, " bytes after the last tensor's data");
  }

  static Shape make_shape(const std::vector<std::uint64_t>& e) {
    const auto x = [&](std::size_t i) { return static_cast<std::int64_t>(e[i]); };
    switch (e.size()) {
      case 0: return Shape{};
      case 1: return Shape{x(0)};
      case 2: return Shape{x(0), x(1)};
      case 3: return Shape{x(0), x(1), x(2)};
      default: return Shape{x(0), x(1), x(2), x(3)};
    }
  }

  std::string path_;
  std::unique_ptr<std::byte[]> data_;
  std::vector<std::unique_ptr<std::byte[]>> misaligned_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, std::size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

struct TensorToSave {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  const void* data = nullptr;  // numel * size_of(dtype) contiguous bytes
};

// Writes the file atomically and durably (core/atomic_file.hpp: a crash never leaves a half file
// under the final name). Tensors are laid out in the given order; the header is padded with spaces so
// the data section starts 8-byte aligned.
inline void save_safetensors(const std::filesystem::path& path,
                             std::span<const TensorToSave> tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  const std::string file = path.string();
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      NANOCHAT_CHECK(is_valid_utf8(key) && is_valid_utf8(value), "safetensors file ", file,
                     ": metadata '", key, "' is not valid UTF-8 (no reader would take the file)");
      if (!first) header += ',';
      first = false;
      header += json::quote(key) + ':' + json::quote(value);
    }
    header += '}';
  }
  std::set<std::string_view> names;
  std::uint64_t offset = 0;
  for (const TensorToSave& t : tensors) {
    NANOCHAT_CHECK(!t.name.empty() && t.name != "__metadata__" && is_valid_utf8(t.name), "safetensors file ", file,
                   ": invalid tensor name '", t.name, "' (empty, reserved or not UTF-8)");
    NANOCHAT_CHECK(names.insert(t.name).second, "safetensors file ", file,
                   ": tensor name '", t.name, "' given twice");
    const auto bytes = static_cast<std::uint64_t>(t.shape.numel()) * size_of(t.dtype);
    NANOCHAT_CHECK(t.data != nullptr || bytes == 0, "safetensors file ", file, ": tensor '",
                   t.name, "' has no data");
    if (header.size() > 1) header += ',';
    header += json::quote(t.name) + ":{\"dtype\":\"";
    header += name_of(t.dtype);
    header += "\",\"shape\":[";
    for (int d = 0; d < t.shape.rank(); ++d) {
      if (d) header += ',';
      header += std::to_string(t.shape[d]);
    }
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + bytes) + "]}";
    offset += bytes;
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');

  unsigned char len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>(header.size() >> (8 * i));
  std::vector<std::span<const std::byte>> pieces{std::as_bytes(std::span(len_bytes)),
                                                 std::as_bytes(std::span(header.data(), header.size()))};
  for (const TensorToSave& t : tensors) {
    pieces.push_back({static_cast<const std::byte*>(t.data),
                      static_cast<std::size_t>(t.shape.numel()) * size_of(t.dtype)});
  }
  write_file_atomically(path, pieces);
}

}  // namespace nanochat
