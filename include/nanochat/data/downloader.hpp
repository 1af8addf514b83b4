#pragma once
// Fetches files in parallel with retries (download_files), and with it FineWeb-EDU shards
// (shard_00000.parquet ... shard_01822.parquet) from nanochat's mirror, as
// `python -m nanochat.dataset -n N -w W` does: parallel workers, up to 5 attempts per shard with
// exponential backoff, download to a temporary name and rename when complete, skip shards
// already present. Beyond nanochat, each download must open as parquet before it is
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
#include <optional>
#include <ostream>
#include <stdexcept>
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

// Runs attempt() until it returns, at most options.max_attempts times, waiting backoff * 2^(k-1)
// after failed attempt k; on_failure sees each failed attempt (k, its error). Returns nothing on
// success, else the last attempt's error.
inline std::optional<std::string> retry_download(const DownloadOptions& options,
                                                 const std::function<void()>& attempt,
                                                 const std::function<void(int, const std::string&)>& on_failure) {
  std::string error;
  for (int k = 1; k <= options.max_attempts; ++k) {
    try {
      attempt();
      return std::nullopt;
    } catch (const std::exception& e) {
      error = e.what();
      on_failure(k, error);
    }
    if (k < options.max_attempts) options.sleep(options.backoff * (1 << (k - 1)));
  }
  return error;
}

// Calls job(http, i) for every i in 0..count-1 on min(options.workers, count) threads, each with
// its own HttpClient (a curl handle serves one thread). job must catch its own errors.
inline void for_each_download(std::size_t count, const DownloadOptions& options,
                              const std::function<void(HttpClient&, std::size_t)>& job) {
  NANOCHAT_CHECK(options.workers > 0 && options.max_attempts > 0,
                 "download: workers and max_attempts must be positive");
  std::atomic<std::size_t> next{0};
  auto worker = [&](HttpClient& http) {
    for (std::size_t i = next++; i < count; i = next++) job(http, i);
  };
  // Clients are made here, not in the threads, so a failure to create one is thrown to the caller.
  auto threads_wanted = std::min<std::size_t>(static_cast<std::size_t>(options.workers), std::max<std::size_t>(count, 1));
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (std::size_t t = 0; t < threads_wanted; ++t) clients.push_back(std::make_unique<HttpClient>(options.http));
  std::vector<std::thread> threads;
  for (auto& client : clients) threads.emplace_back(worker, std::ref(*client));
  for (auto& thread : threads) thread.join();
}

// One file to fetch: the body of url goes to a temporary name beside path and is renamed to path
// once it is whole and passes check.
struct FileDownload {
  std::string url;
  std::filesystem::path path;
  std::string name;  // in progress lines and errors: "shard_00012.parquet"
  // Throws when the downloaded file is not usable (a corrupt body); the attempt is then retried.
  std::function<void(const std::filesystem::path&)> check;
  std::string bearer_token;  // sent as "Authorization: Bearer ..." when not empty
};

struct FileFailure {
  std::size_t file;   // position in the list given to download_files
  std::string error;  // the last attempt's error
};

struct FilesReport {
  int downloaded = 0;
  int skipped = 0;  // already present
  std::vector<FileFailure> failed;  // in list order
};

// Fetches files with options.workers parallel downloads; a file already at its path is skipped
// without a request.
inline FilesReport download_files(const std::vector<FileDownload>& files, const DownloadOptions& options) {
  FilesReport report;
  std::mutex mutex;  // guards report and progress output
  int done = 0;
  auto total = files.size();

  auto fetch_one = [&](HttpClient& http, const FileDownload& file) {
    if (std::filesystem::exists(file.path)) {
      std::lock_guard lock(mutex);
      ++report.skipped;
      ++done;
      return;
    }
    std::filesystem::create_directories(file.path.parent_path());
    // Unique per process and file, so concurrent downloaders never write the same file.
    auto temp_path = file.path;
    temp_path += "." + std::to_string(::getpid()) + ".tmp";
    std::uint64_t bytes = 0;
    const std::optional<std::string> error = retry_download(
        options,
        [&] {
          bytes = http.get_to_file(file.url, temp_path, file.bearer_token);
          if (file.check) file.check(temp_path);
          std::filesystem::rename(temp_path, file.path);
        },
        [&](int attempt, const std::string& why) {
          std::error_code ignored;
          std::filesystem::remove(temp_path, ignored);
          if (!options.progress) return;
          std::lock_guard lock(mutex);
          *options.progress << "Attempt " << attempt << "/" << options.max_attempts << " for " << file.name
                            << " failed: " << why << "\n" << std::flush;
        });
    if (error) throw std::runtime_error(*error);
    std::lock_guard lock(mutex);
    ++done;
    ++report.downloaded;
    if (options.progress) {
      *options.progress << "Downloaded " << done << "/" << total << " (" << file.name << ", "
                        << static_cast<double>(bytes) / 1e6 << " MB)\n" << std::flush;
    }
  };

  for_each_download(total, options, [&](HttpClient& http, std::size_t i) {
    try {
      fetch_one(http, files[i]);
    } catch (const std::exception& e) {  // every attempt failed, or the directory is unwritable
      std::lock_guard lock(mutex);
      report.failed.push_back({i, e.what()});
      ++done;
    }
  });
  std::sort(report.failed.begin(), report.failed.end(),
            [](const FileFailure& a, const FileFailure& b) { return a.file < b.file; });
  return report;
}

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
  for (int index : indices) {
    NANOCHAT_CHECK(index >= 0 && index <= kMaxShard, "download: shard index ", index,
                   " outside 0..", kMaxShard);
  }
  std::filesystem::create_directories(dir);
  std::vector<FileDownload> files;
  for (int index : indices) {
    const std::string name = shard_name(index);
    // A body that is not a whole parquet file fails to open.
    files.push_back({options.base_url + "/" + name, dir / name, name,
                     [](const std::filesystem::path& path) { ParquetReader check(path); }, ""});
  }
  const FilesReport files_report = download_files(files, options);
  DownloadReport report{files_report.downloaded, files_report.skipped, {}};
  for (const FileFailure& failure : files_report.failed) report.failed.push_back({indices[failure.file], failure.error});
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
