// libFuzzer entry: any byte string handed to the parquet reader must either decode or raise
// nanochat::Error; AddressSanitizer turns every out-of-bounds access into a failure.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "nanochat/data/parquet_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nanochat::data;
  // Tight limits keep corrupt size fields from asking for gigabytes (a real shard needs far less
  // than these per page only in the fuzzer's tiny inputs).
  ParquetOptions options{.max_page_bytes = std::size_t{16} << 20, .max_page_values = std::size_t{1} << 20};
  try {
    ParquetReader reader(std::make_unique<MemorySource>(data, size, "fuzz.parquet"), options);
    std::vector<std::string> values;
    for (std::size_t g = 0; g < reader.num_row_groups(); ++g) {
      for (std::size_t c = 0; c < reader.column_names().size(); ++c) {
        values.clear();
        try {
          reader.read_strings(g, c, values);
        } catch (const nanochat::Error&) {
        }
      }
    }
  } catch (const nanochat::Error&) {
  }
  return 0;
}
