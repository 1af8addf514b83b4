#pragma once
// What `download --tasks` fetches: every split of hub_splits from the Hub's parquet export
// (data/hub_parquet.hpp) into hub_split_dir(split) as 0000.parquet, 0001.parquet, ... in the
// listing's order, and nanochat's identity_conversations.jsonl into BASE; with words_alpha, also
// dwyl's words_alpha.txt into BASE (which the spelling tasks then read by default). Each file goes
// through data::download_files: a temporary name, renamed once whole and checked (shards have
// parquet's framing, the identity file parses as CustomJSON, the word list holds words), retries
// with backoff, and files already present skipped. A split whose listing fails is reported and the
// others still download. Only URLs under the Hub endpoint get the HF_TOKEN header.

#include <cstddef>
#include <filesystem>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "nanochat/data/downloader.hpp"
#include "nanochat/data/http_client.hpp"
#include "nanochat/data/hub_parquet.hpp"
#include "nanochat/tasks/custom_json.hpp"
#include "nanochat/tasks/hub_datasets.hpp"
#include "nanochat/tasks/spelling_bee.hpp"

namespace nanochat::tasks {

// Where each item comes from; tests point them at a local server.
struct TaskDataSources {
  data::HubEndpoint hub = data::hub_endpoint_from_environment();
  std::string identity_url{kIdentityConversationsUrl};
  std::string words_alpha_url{kWordsAlphaUrl};
};

struct TaskDataRequest {
  bool chat_datasets = true;  // every split of hub_splits and identity_conversations.jsonl
  bool words_alpha = false;   // dwyl's words_alpha.txt
};

struct TaskDownloadFailure {
  std::string item;   // "openai/gsm8k main/train" (its listing), "... main/train 0000.parquet", a file name
  std::string error;  // the last attempt's error
};

struct TaskDownloadReport {
  int downloaded = 0;
  int skipped = 0;  // already present
  std::vector<TaskDownloadFailure> failed;
};

inline constexpr std::size_t kMaxHubListingBytes = 1 << 20;  // a listing is a few URLs per shard

inline TaskDownloadReport download_task_data(const TaskDataRequest& request, const TaskDataSources& sources,
                                             const data::DownloadOptions& options) {
  TaskDownloadReport report;
  std::vector<data::FileDownload> files;
  const auto hub_token_for = [&](const std::string& url) {
    return url.starts_with(sources.hub.url + "/") ? sources.hub.token : std::string();
  };
  if (request.chat_datasets) {
    // The listings first, options.workers at a time (offline, each waits out its retries).
    std::vector<std::vector<std::string>> shard_urls(hub_splits.size());
    std::vector<std::optional<std::string>> listing_errors(hub_splits.size());
    std::mutex progress_mutex;
    const auto progress = [&](const auto&... parts) {
      if (!options.progress) return;
      std::lock_guard lock(progress_mutex);
      ((*options.progress << parts), ...) << "\n" << std::flush;
    };
    data::for_each_download(hub_splits.size(), options, [&](data::HttpClient& http, std::size_t i) {
      const HubSplit& split = hub_splits[i];
      const std::string listing_url = data::hub_parquet_listing_url(sources.hub, split.repo, split.config, split.split);
      listing_errors[i] = data::retry_download(
          options,
          [&] {
            shard_urls[i] = data::parse_hub_parquet_listing(
                http.get_to_string(listing_url, kMaxHubListingBytes, hub_token_for(listing_url)), listing_url);
          },
          [&](int attempt, const std::string& why) {
            progress("Attempt ", attempt, "/", options.max_attempts, " to list ", hub_split_name(split),
                     " failed: ", why);
          });
      if (!listing_errors[i]) progress("Listed ", hub_split_name(split), ": ", shard_urls[i].size(), " shard(s)");
    });
    for (std::size_t i = 0; i < hub_splits.size(); ++i) {
      const HubSplit& split = hub_splits[i];
      const std::string name = hub_split_name(split);
      if (listing_errors[i]) {
        report.failed.push_back({name, *listing_errors[i]});
        continue;
      }
      for (std::size_t k = 0; k < shard_urls[i].size(); ++k) {
        const std::string file = data::hub_shard_file_name(k);
        files.push_back({shard_urls[i][k], hub_split_dir(split) / file, cat(name, " ", file),
                         data::check_parquet_framing, hub_token_for(shard_urls[i][k])});
      }
    }
    files.push_back({sources.identity_url, default_identity_conversations(), "identity_conversations.jsonl",
                     [](const std::filesystem::path& path) { CustomJSON check(path); }, ""});
  }
  if (request.words_alpha) {
    files.push_back({sources.words_alpha_url, words_alpha_path(), "words_alpha.txt",
                     [](const std::filesystem::path& path) { read_word_list(path); }, ""});
  }
  const data::FilesReport done = data::download_files(files, options);
  report.downloaded = done.downloaded;
  report.skipped = done.skipped;
  for (const data::FileFailure& failure : done.failed) {
    report.failed.push_back({files[failure.file].name, failure.error});
  }
  return report;
}

}  // namespace nanochat::tasks
