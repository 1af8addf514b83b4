// Downloads FineWeb-EDU shards like `python -m nanochat.dataset -n N -w W`, and with --tasks the
// chat stages' datasets (what nanochat's load_dataset calls and speedrun.sh fetch).
//   download [-n N] [-w W] [--base-url URL] [--dir DIR] [--tasks] [--words-alpha]
// -n: first N shards (-1 = all 1823; default all, or none when --tasks or --words-alpha is given);
// -w: parallel downloads (default 4); --base-url: shard mirror (default nanochat's); --dir: shard
// target (default $NANOCHAT_BASE_DIR/base_data); --tasks: every Hugging Face split in
// tasks/hub_datasets.hpp into $NANOCHAT_BASE_DIR/task_data/hub/<repo>/<config>/<split>/ and
// identity_conversations.jsonl into $NANOCHAT_BASE_DIR (HF_ENDPOINT and HF_TOKEN are honoured as
// by huggingface_hub); --words-alpha: nanochat's word list into $NANOCHAT_BASE_DIR/words_alpha.txt.
#include <cstdlib>
#include <iostream>
#include <string>

#include "nanochat/core/flags.hpp"
#include "nanochat/core/limits.hpp"
#include "nanochat/data/downloader.hpp"
#include "nanochat/data/paths.hpp"
#include "nanochat/tasks/task_data_download.hpp"

int main(int argc, char** argv) {
  using namespace nanochat::data;
  constexpr int kShardsUnset = -2;  // -n not given: all shards, unless only task data was asked for
  int n = kShardsUnset;
  bool tasks = false;
  bool words_alpha = false;
  DownloadOptions options;
  options.progress = &std::cout;
  std::string dir_flag;
  nanochat::Flags flags("download", "FineWeb-EDU shards, like python -m nanochat.dataset -n N -w W, and the chat datasets");
  flags.add("--num-shards", n, "download the first N shards (-1: all 1823; -2: all, or none with --tasks/--words-alpha)", 'n')
      .add("--workers", options.workers, "parallel downloads", {1, static_cast<int>(nanochat::max_threads)}, 'w')
      .add("--base-url", options.base_url, "the shard mirror")
      .add("--dir", dir_flag, "shard directory (default $NANOCHAT_BASE_DIR/base_data)")
      .add("--tasks", tasks, "also the chat stages' Hugging Face splits and identity_conversations.jsonl")
      .add("--words-alpha", words_alpha, "also nanochat's word list, dwyl's words_alpha.txt");
  try {
    if (!flags.parse(argc, argv)) return EXIT_SUCCESS;
    NANOCHAT_CHECK(n >= kShardsUnset, "flag --num-shards: ", n, " is not a shard count (-1 means all)");
    bool ok = true;
    if (n != kShardsUnset || !(tasks || words_alpha)) {
      const std::filesystem::path dir = dir_flag.empty() ? shard_dir() : std::filesystem::path(dir_flag);
      auto indices = first_shards(n == kShardsUnset ? -1 : n);
      std::cout << "Downloading " << indices.size() << " shards to " << dir.string() << " with "
                << options.workers << " workers\n";
      auto report = download_shards(indices, dir, options);
      std::cout << "Done: " << report.downloaded << " downloaded, " << report.skipped
                << " already present, " << report.failed.size() << " failed\n";
      for (const auto& failure : report.failed) {
        std::cerr << shard_name(failure.index) << ": " << failure.error << "\n";
      }
      ok = report.failed.empty();
    }
    if (tasks || words_alpha) {
      namespace ts = nanochat::tasks;
      const ts::TaskDataSources sources;
      std::cout << "Downloading task data from " << sources.hub.url << " to " << base_dir().string() << "\n";
      auto report = ts::download_task_data({.chat_datasets = tasks, .words_alpha = words_alpha}, sources, options);
      std::cout << "Done: " << report.downloaded << " downloaded, " << report.skipped << " already present, "
                << report.failed.size() << " failed\n";
      for (const auto& failure : report.failed) std::cerr << failure.item << ": " << failure.error << "\n";
      ok = ok && report.failed.empty();
    }
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;
  } catch (const std::exception& e) {
    std::cerr << "download: " << e.what() << "\n";
    return EXIT_FAILURE;
  }
}
