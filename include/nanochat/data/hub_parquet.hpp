#pragma once
// Where the Hugging Face Hub serves a dataset split as parquet. One scheme covers every
// repository, config and split: the Hub API's parquet listing,
//   GET <endpoint>/api/datasets/<repo>/parquet/<config>/<split>
// answers a JSON array of URLs, one per shard in shard order, each of the form
// <endpoint>/api/datasets/<repo>/parquet/<config>/<split>/<k>.parquet, which redirects to
// <endpoint>/datasets/<repo>/resolve/refs%2Fconvert%2Fparquet/<config>/<split>/<kkkk>.parquet
// (the refs/convert/parquet branch) and from there to the CDN. Source: the dataset viewer's
// "List Parquet files" guide, section "Using the Hugging Face Hub API"
// (https://huggingface.co/docs/dataset-viewer/parquet). For a dataset published as parquet
// that branch holds the original files (new ones only when their row groups are too big).
//
// Not `resolve/main/<path>`: on main each repository names and lays out its files its own way
// (openai/gsm8k main/train-00000-of-00001.parquet, cais/mmlu all/test-00000-of-00001.parquet,
// smol-smoltalk data/...), so fetching from main would take a table of file names per repository.
//
// Endpoint and token as huggingface_hub reads them: HF_ENDPOINT (default https://huggingface.co,
// trailing '/' dropped) and HF_TOKEN (a bearer token; none by default). check_parquet_framing
// vets a downloaded shard.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/data/byte_source.hpp"

namespace nanochat::data {

struct HubEndpoint {
  std::string url = "https://huggingface.co";
  std::string token;  // empty: anonymous requests
};

inline HubEndpoint hub_endpoint_from_environment() {
  HubEndpoint hub;
  if (const char* endpoint = std::getenv("HF_ENDPOINT"); endpoint != nullptr && *endpoint != '\0') {
    hub.url = endpoint;
    while (!hub.url.empty() && hub.url.back() == '/') hub.url.pop_back();
    NANOCHAT_CHECK(hub.url.starts_with("http://") || hub.url.starts_with("https://"), "HF_ENDPOINT '", endpoint,
                   "' is not an http:// or https:// URL");
  }
  if (const char* token = std::getenv("HF_TOKEN"); token != nullptr) hub.token = token;
  return hub;
}

inline std::string hub_parquet_listing_url(const HubEndpoint& hub, std::string_view repo, std::string_view config,
                                           std::string_view split) {
  return cat(hub.url, "/api/datasets/", repo, "/parquet/", config, "/", split);
}

// The shard URLs of a listing, in shard order; anything but a non-empty JSON array of http(s)
// URLs is an Error naming the listing's URL.
inline std::vector<std::string> parse_hub_parquet_listing(std::string_view body, std::string_view listing_url) {
  const json::Value listing = json::parse(body, listing_url);
  if (const json::Value* error = listing.find("error"); error != nullptr && error->is_string()) {
    NANOCHAT_FAIL(listing_url, ": the Hub answered with an error: ", error->string("error"));
  }
  NANOCHAT_CHECK(listing.is_array(), listing_url, ": expected a JSON array of parquet shard URLs");
  std::vector<std::string> urls;
  for (const json::Value& entry : listing.array("listing")) {
    const std::string what = cat(listing_url, ": entry ", urls.size());
    const std::string& url = entry.string(what);
    NANOCHAT_CHECK(url.starts_with("http://") || url.starts_with("https://"), what, " '", url,
                   "' is not an http:// or https:// URL");
    urls.push_back(url);
  }
  NANOCHAT_CHECK(!urls.empty(), listing_url, ": the listing names no parquet shards");
  return urls;
}

// The local name of the listing's shard k, as the refs/convert/parquet branch names it; the
// fixed width keeps name order equal to shard order.
inline std::string hub_shard_file_name(std::size_t k) {
  NANOCHAT_CHECK(k < 10000, "Hub parquet shard ", k, ": more than 10,000 shards in one split");
  char name[16];
  std::snprintf(name, sizeof name, "%04zu.parquet", k);
  return name;
}

// Throws unless path looks like a whole parquet file: "PAR1" at both ends and a footer length
// that fits, so a damaged or cut body is retried. Only the framing: a split's schema may hold
// nested or integer columns (SmolTalk's messages, MMLU's choices) that ParquetReader, which the
// FineWeb downloader opens its shards with, reads or refuses on its own terms.
inline void check_parquet_framing(const std::filesystem::path& path) {
  FileSource file(path);
  const std::uint64_t size = file.size();
  NANOCHAT_CHECK(size >= 12, path.string(), ": ", size, " bytes is too short to be a parquet file");
  std::uint8_t head[4], tail[8];
  file.read_checked(0, 4, head, "leading magic");
  file.read_checked(size - 8, 8, tail, "footer length and magic");
  NANOCHAT_CHECK(std::memcmp(head, "PAR1", 4) == 0 && std::memcmp(tail + 4, "PAR1", 4) == 0, path.string(),
                 ": does not start and end with PAR1 (damaged, cut, or not a parquet file)");
  const std::uint64_t footer = std::uint64_t{tail[0]} | std::uint64_t{tail[1]} << 8 | std::uint64_t{tail[2]} << 16 |
                               std::uint64_t{tail[3]} << 24;
  NANOCHAT_CHECK(footer <= size - 12, path.string(), ": footer length ", footer, " exceeds the file (", size,
                 " bytes)");
}

}  // namespace nanochat::data
