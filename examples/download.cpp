// Downloads FineWeb-EDU shards like `python -m nanochat.dataset -n N -w W`.
//   download [-n N] [-w W] [--base-url URL] [--dir DIR]
// -n: first N shards (default -1 = all 1823); -w: parallel downloads (default 4);
// --base-url: mirror (default nanochat's); --dir: target (default $NANOCHAT_BASE_DIR/base_data).
#include <cstdlib>
#include <iostream>
#include <string>

#include "nanochat/core/flags.hpp"
#include "nanochat/core/limits.hpp"
#include "nanochat/data/downloader.hpp"
#include "nanochat/data/paths.hpp"

int main(int argc, char** argv) {
  using namespace nanochat::data;
  int n = -1;
  DownloadOptions options;
  options.progress = &std::cout;
  std::string dir_flag;
  nanochat::Flags flags("download", "FineWeb-EDU shards, like python -m nanochat.dataset -n N -w W");
  flags.add("--num-shards", n, "download the first N shards (-1: all 1823)", 'n')
      .add("--workers", options.workers, "parallel downloads", {1, static_cast<int>(nanochat::max_threads)}, 'w')
      .add("--base-url", options.base_url, "the shard mirror")
      .add("--dir", dir_flag, "target directory (default $NANOCHAT_BASE_DIR/base_data)");
  try {
    if (!flags.parse(argc, argv)) return EXIT_SUCCESS;
    const std::filesystem::path dir = dir_flag.empty() ? shard_dir() : std::filesystem::path(dir_flag);
    auto indices = first_shards(n);
    std::cout << "Downloading " << indices.size() << " shards to " << dir.string() << " with "
              << options.workers << " workers\n";
    auto report = download_shards(indices, dir, options);
    std::cout << "Done: " << report.downloaded << " downloaded, " << report.skipped
              << " already present, " << report.failed.size() << " failed\n";
    for (const auto& failure : report.failed) {
      std::cerr << shard_name(failure.index) << ": " << failure.error << "\n";
    }
    return report.failed.empty() ? EXIT_SUCCESS : EXIT_FAILURE;
  } catch (const std::exception& e) {
    std::cerr << "download: " << e.what() << "\n";
    return EXIT_FAILURE;
  }
}
