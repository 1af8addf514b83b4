// Downloads FineWeb-EDU shards like `python -m nanochat.dataset -n N -w W`.
//   download [-n N] [-w W] [--base-url URL] [--dir DIR]
// -n: first N shards (default -1 = all 1823); -w: parallel downloads (default 4);
// --base-url: mirror (default nanochat's); --dir: target (default $NANOCHAT_BASE_DIR/base_data).
#include <cstdlib>
#include <iostream>
#include <string>

#include "nanochat/data/downloader.hpp"
#include "nanochat/data/paths.hpp"

int main(int argc, char** argv) {
  using namespace nanochat::data;
  int n = -1;
  DownloadOptions options;
  options.progress = &std::cout;
  std::filesystem::path dir;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string flag = argv[i];
      NANOCHAT_CHECK(i + 1 < argc, "download: ", flag, " needs a value");
      std::string value = argv[++i];
      if (flag == "-n") n = std::stoi(value);
      else if (flag == "-w") options.workers = std::stoi(value);
      else if (flag == "--base-url") options.base_url = value;
      else if (flag == "--dir") dir = value;
      else NANOCHAT_FAIL("download: unknown flag ", flag, " (use -n, -w, --base-url, --dir)");
    }
    if (dir.empty()) dir = shard_dir();
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
    std::cerr << e.what() << "\n";
    return EXIT_FAILURE;
  }
}
