#pragma once
// Page decompression for the codecs FineWeb-EDU-style shards use: zstd, snappy, gzip, none.
// Output sizes are known from the page header; a codec that produces any other size is an error.

#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "nanochat/core/error.hpp"
#include "nanochat/data/parquet_metadata.hpp"

namespace nanochat::data {

// Decompresses `in` into exactly `out_size` bytes at `out`. `what` names the page for errors.
inline void decompress(parquet::Codec codec, const std::uint8_t* in, std::size_t in_size,
                       std::uint8_t* out, std::size_t out_size, const std::string& what) {
  switch (codec) {
    case parquet::Codec::uncompressed:
      NANOCHAT_CHECK(in_size == out_size, what, ": uncompressed page holds ", in_size,
                     " bytes but its header says ", out_size);
      if (out_size != 0) std::memcpy(out, in, out_size);
      return;
    case parquet::Codec::zstd: {
      std::size_t got = ZSTD_decompress(out, out_size, in, in_size);
      NANOCHAT_CHECK(!ZSTD_isError(got), what, ": zstd: ", ZSTD_getErrorName(got));
      NANOCHAT_CHECK(got == out_size, what, ": zstd produced ", got, " bytes, header says ",
                     out_size);
      return;
    }
    case parquet::Codec::snappy: {
      std::size_t length = 0;
      NANOCHAT_CHECK(snappy_uncompressed_length(reinterpret_cast<const char*>(in), in_size,
                                                &length) == SNAPPY_OK,
                     what, ": snappy: corrupt length preamble");
      NANOCHAT_CHECK(length == out_size, what, ": snappy data decompresses to ", length,
                     " bytes, header says ", out_size);
      NANOCHAT_CHECK(snappy_uncompress(reinterpret_cast<const char*>(in), in_size,
                                       reinterpret_cast<char*>(out), &length) == SNAPPY_OK,
                     what, ": snappy: corrupt data");
      return;
    }
    case parquet::Codec::gzip: {
      NANOCHAT_CHECK(in_size <= UINT32_MAX && out_size <= UINT32_MAX, what,
                     ": gzip page larger than 4 GiB");
      z_stream stream{};
      // 16 + MAX_WBITS: parquet's GZIP is the gzip container, not raw zlib.
      NANOCHAT_CHECK(inflateInit2(&stream, 16 + MAX_WBITS) == Z_OK, what, ": zlib init failed");
      stream.next_in = const_cast<Bytef*>(in);
      stream.avail_in = static_cast<uInt>(in_size);
      stream.next_out = out;
      stream.avail_out = static_cast<uInt>(out_size);
      int status = inflate(&stream, Z_FINISH);
      std::size_t got = stream.total_out;
      inflateEnd(&stream);
      NANOCHAT_CHECK(status == Z_STREAM_END, what, ": gzip: ",
                     status == Z_BUF_ERROR ? "data longer or shorter than the header says"
                                           : "corrupt data");
      NANOCHAT_CHECK(got == out_size, what, ": gzip produced ", got, " bytes, header says ",
                     out_size);
      return;
    }
    default:
      NANOCHAT_FAIL(what, ": compression codec ", codec,
                    " is not supported (zstd, snappy, gzip and uncompressed are)");
  }
}

}  // namespace nanochat::data
