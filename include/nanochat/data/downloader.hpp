#pragma once
// Fetches FineWeb-EDU shards (shard_00000.parquet ... shard_01822.parquet) from nanochat's
// mirror, as `python -m nanochat.dataset -n N -w W` does: parallel workers, up to 5 attempts per
// shard with exponential backoff, download to a temporary name and rename when complete, skip
// shards already present. Beyond nanochat, each download must open as parquet before it is
// renamed, so a corrupt body is retried instead of poisoning training later.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/data/http_client.hpp"
#include "nanochat/data/parquet_reader.hpp"

namespace nanochat::data {

inline constexpr int kMaxShard = 1822;  // shards 0..1822 exist on the mirror
inline constexpr const char* kShardMirror =
    "https://huggingface.co/datasets/karpathy/fineweb-edu-100b-shuffle/resolve/main";

inline std::string shard_name(int index) {
  char name[32];
  std::snprintf(name, sizeof name, "shard_%05d.parquet", index);
  return name;
}

struct DownloadOptions {
  std::string base_url = kShardMirror;
  int workers = 4;
  int max_attempts = 5;
  // Attempt k (1-based) that fails waits backoff * 2^(k-1) before the next: 2, 4, 8, 16 s.
  std::chrono::milliseconds backoff{2000};
  HttpOptions http;
  std::ostream* progress = nullptr;  // "Downloaded k/n ..." lines when set
  // How to wait between attempts; tests replace it to observe the backoff without waiting.
  std::function<void(std::chrono::milliseconds)> sleep = [](std::chrono::milliseconds d) {
    std::this_thread::sleep_for(d);
  };
};

struct DownloadFailure {
  int index;
  std::string error;  // the last attempt's error
};

struct DownloadReport {
  int downloaded = 0;
  int skipped = 0;  // already present
  std::vector<DownloadFailure> failed;
};

// Downloads the given shard indices into dir (created if missing).
inline DownloadReport download_shards(const std::vector<int>& indices, const std::filesystem::path& dir,
                                      const DownloadOptions& options = {}) {
  NANOCHAT_CHECK(options.workers > 0 && options.max_attempts > 0,
                 "download: workers and max_attempts must be positive");
  for (int index : indices) {
    NANOCHAT_CHECK(index >= 0 && index <= kMaxShard, "download: shard index ", index,
                   " outside 0..", kMaxShard);
  }
  std::filesystem::create_directories(dir);
  DownloadReport report;
  std::mutex mutex;  // guards report and progress output
  std::atomic<std::size_t> next{0};
  int done = 0;
  auto total = indices.size();

  auto fetch_one = [&](HttpClient& http, int index) {
    auto name = shard_name(index);
    auto final_path = dir / name;
    if (std::filesystem::exists(final_path)) {
      std::lock_guard lock(mutex);
      ++report.skipped;
      ++done;
      return;
    }
    // Unique per process and shard, so concurrent downloaders never write the same file.
    auto temp_path = dir / (name + "." + std::to_string(::getpid()) + ".tmp");
    std::string url = options.base_url + "/" + name;
    std::string error;
    for (int attempt = 1; attempt <= options.max_attempts; ++attempt) {
      try {
        std::uint64_t bytes = http.get_to_file(url, temp_path);
        ParquetReader check(temp_path);  // a body that is not a whole parquet file fails here
        std::filesystem::rename(temp_path, final_path);
        std::lock_guard lock(mutex);
        ++report.downloaded;
        ++done;
        if (options.progress) {
          *options.progress << "Downloaded " << done << "/" << total << " (" << name << ", "
                            << static_cast<double>(bytes) / 1e6 << " MB)\n" << std::flush;
        }
        return;
      } catch (const std::exception& e) {
        error = e.what();
        std::error_code ignored;
        std::filesystem::remove(temp_path, ignored);
        if (options.progress) {
          std::lock_guard lock(mutex);
          *options.progress << "Attempt " << attempt << "/" << options.max_attempts << " for "
                            << name << " failed: " << error << "\n" << std::flush;
        }
      }
      if (attempt < options.max_attempts) options.sleep(options.backoff * (1 << (attempt - 1)));
    }
    std::lock_guard lock(mutex);
    report.failed.push_back({index, error});
    ++done;
  };

  auto worker = [&](HttpClient& http) {
    for (std::size_t i = next++; i < total; i = next++) {
      try {
        fetch_one(http, indices[i]);
      } catch (const std::exception& e) {  // e.g. the directory became unreadable
        std::lock_guard lock(mutex);
        report.failed.push_back({indices[i], e.what()});
        ++done;
      }
    }
  };
  // Clients are made here, not in the threads, so a failure to create one is thrown to the caller.
  auto count = std::min<std::size_t>(static_cast<std::size_t>(options.workers), std::max<std::size_t>(total, 1));
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (std::size_t t = 0; t < count; ++t) clients.push_back(std::make_unique<HttpClient>(options.http));
  std::vector<std::thread> threads;
  for (auto& client : clients) threads.emplace_back(worker, std::ref(*client));
  for (auto& thread : threads) thread.join();
  std::sort(report.failed.begin(), report.failed.end(),
            [](const DownloadFailure& a, const DownloadFailure& b) { return a.index < b.index; });
  return report;
}

// nanochat's `-n N`: the first min(N, 1823) shards; N < 0 means all of them.
inline std::vector<int> first_shards(int n) {
  int count = n < 0 ? kMaxShard + 1 : std::min(n, kMaxShard + 1);
  std::vector<int> out(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) out[static_cast<std::size_t>(i)] = i;
  return out;
}

}  // namespace nanochat::data
