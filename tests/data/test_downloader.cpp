// The shard downloader and `download --tasks` (the Hub's parquet listings, nanochat's extra
// files) against a loopback server that injects faults. Nothing here contacts another host:
// every URL is http://127.0.0.1:<port> or http://localhost:<port>.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "loopback_server.hpp"
#include "nanochat/data/downloader.hpp"
#include "nanochat/data/hub_parquet.hpp"
#include "nanochat/tasks/hub_datasets.hpp"
#include "nanochat/tasks/task_data_download.hpp"
#include "scoped_env.hpp"
#include "temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using namespace nanochat::data;
using nanochat::data::testing::Fault;
using nanochat::data::testing::LoopbackServer;
using nanochat::data::testing::TempDir;

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

const fs::path kFixtures = fs::path(NANOCHAT_FIXTURES) / "data" / "parquet";

// Serves three distinct fixture files as shards 0, 1, 2.
std::vector<std::string> serve_shards(LoopbackServer& server) {
  std::vector<std::string> bodies;
  for (const char* fixture : {"zstd_plain_v1", "snappy_dict_v2", "gzip_plain_v2"}) {
    bodies.push_back(slurp(kFixtures / (std::string(fixture) + ".parquet")));
    server.add_file("/" + shard_name(static_cast<int>(bodies.size() - 1)), bodies.back());
  }
  return bodies;
}

// Fast retries; records the waits instead of sleeping them.
struct Recorder {
  std::mutex mutex;
  std::vector<long> waits_ms;
  std::ostringstream log;
};

DownloadOptions fast_options(LoopbackServer& server, Recorder& recorder) {
  // A proxy from the environment must not see loopback requests (curl would route them there).
  for (const char* variable : {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"}) ::unsetenv(variable);
  DownloadOptions options;
  options.base_url = server.base_url();
  options.workers = 2;
  options.max_attempts = 3;
  options.backoff = std::chrono::milliseconds(5);
  options.http.connect_timeout_s = 5;
  options.http.stall_timeout_s = 5;
  options.progress = &recorder.log;
  options.sleep = [&recorder](std::chrono::milliseconds wait) {
    std::lock_guard lock(recorder.mutex);
    recorder.waits_ms.push_back(static_cast<long>(wait.count()));
  };
  return options;
}

bool has_temp_files(const fs::path& dir) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".tmp") return true;
  }
  return false;
}

}  // namespace

TEST_CASE("data.download: shard names and the -n selection follow nanochat") {
  CHECK(shard_name(0) == "shard_00000.parquet");
  CHECK(shard_name(1822) == "shard_01822.parquet");
  CHECK(first_shards(3) == std::vector<int>{0, 1, 2});
  CHECK(first_shards(-1).size() == 1823);
  CHECK(first_shards(5000).size() == 1823);
  CHECK(std::string(kShardMirror) ==
        "https://huggingface.co/datasets/karpathy/fineweb-edu-100b-shuffle/resolve/main");
  TempDir dir;
  CHECK_THROWS_WITH_AS(download_shards({1823}, dir.path()), doctest::Contains("outside 0..1822"), nanochat::Error);
}

TEST_CASE("data.download: a 500, a cut connection and a corrupt body are each retried to success") {
  LoopbackServer server;
  auto bodies = serve_shards(server);
  server.script("/shard_00000.parquet", {Fault::http_500});
  server.script("/shard_00001.parquet", {Fault::cut});
  server.script("/shard_00002.parquet", {Fault::corrupt, Fault::http_500});
  TempDir dir;
  Recorder recorder;
  auto report = download_shards({0, 1, 2}, dir.path(), fast_options(server, recorder));

  CHECK(report.downloaded == 3);
  CHECK(report.failed.empty());
  for (int i = 0; i < 3; ++i) {
    CAPTURE(i);
    CHECK(slurp(dir.path() / shard_name(i)) == bodies[static_cast<std::size_t>(i)]);
  }
  CHECK(server.requests("/shard_00000.parquet") == 2);
  CHECK(server.requests("/shard_00001.parquet") == 2);
  CHECK(server.requests("/shard_00002.parquet") == 3);
  CHECK_FALSE(has_temp_files(dir.path()));
  std::string log = recorder.log.str();
  CHECK(log.find("Downloaded 3/3") != std::string::npos);
  CHECK(log.find("500") != std::string::npos);  // the HTTP error is reported
  CHECK(log.find("PAR1") != std::string::npos);  // the corrupt body failed the parquet check
}

TEST_CASE("data.download: a shard that keeps failing is given up after max_attempts with exponential backoff") {
  LoopbackServer server;
  serve_shards(server);
  server.always_fail("/shard_00001.parquet");
  TempDir dir;
  Recorder recorder;
  auto options = fast_options(server, recorder);
  options.workers = 1;  // one shard at a time, so the waits are in order
  auto report = download_shards({0, 1, 2}, dir.path(), options);

  CHECK(report.downloaded == 2);
  REQUIRE(report.failed.size() == 1);
  CHECK(report.failed[0].index == 1);
  CHECK(report.failed[0].error.find("500") != std::string::npos);
  CHECK(server.requests("/shard_00001.parquet") == 3);
  CHECK(recorder.waits_ms == std::vector<long>{5, 10});  // between attempts 1-2 and 2-3
  CHECK_FALSE(fs::exists(dir.path() / shard_name(1)));
  CHECK_FALSE(has_temp_files(dir.path()));
}

TEST_CASE("data.download: complete shards are skipped without a request") {
  LoopbackServer server;
  auto bodies = serve_shards(server);
  TempDir dir;
  dir.write(shard_name(1), bodies[1]);
  Recorder recorder;
  auto report = download_shards({0, 1, 2}, dir.path(), fast_options(server, recorder));
  CHECK(report.downloaded == 2);
  CHECK(report.skipped == 1);
  CHECK(server.requests("/shard_00001.parquet") == 0);

  auto again = download_shards({0, 1, 2}, dir.path(), fast_options(server, recorder));
  CHECK(again.skipped == 3);
  CHECK(server.requests("/shard_00000.parquet") == 1);
}

TEST_CASE("data.download: a missing shard (404) fails with the URL named") {
  LoopbackServer server;
  TempDir dir;
  Recorder recorder;
  auto report = download_shards({7}, dir.path(), fast_options(server, recorder));
  REQUIRE(report.failed.size() == 1);
  CHECK(report.failed[0].error.find("/shard_00007.parquet") != std::string::npos);
  CHECK(report.failed[0].error.find("404") != std::string::npos);
}

// ---- download --tasks: the Hub's parquet listings, nanochat's extra files ----

namespace {

namespace ts = nanochat::tasks;

using nanochat::testing::ScopedEnv;

std::string listing_path(const ts::HubSplit& split) {
  return nanochat::cat("/api/datasets/", split.repo, "/parquet/", split.config, "/", split.split);
}
std::string resolve_path(const ts::HubSplit& split, std::size_t k) {
  return nanochat::cat("/datasets/", split.repo, "/resolve/refs%2Fconvert%2Fparquet/", split.config, "/", split.split,
                       "/", hub_shard_file_name(k));
}

// The Hub as the test serves it: each split's listing names one shard URL on the API, which
// redirects to its `resolve` URL on refs/convert/parquet; openai/gsm8k main/train has a second
// shard whose redirect leaves for another host name (a CDN: "localhost", not 127.0.0.1), and
// HumanEval's listing names a URL on that other host directly.
struct FakeHub {
  std::map<std::string, std::vector<std::string>> shards;  // split name -> bodies in shard order
  std::string identity = slurp(fs::path(NANOCHAT_FIXTURES) / "tasks" / "identity.jsonl");
  std::string cdn_path = "/cdn/gsm8k-train-0001.parquet";
  std::string off_hub_path = "/elsewhere/humaneval-0000.parquet";

  // unlisted: a split whose listing the server does not have (it answers 404).
  explicit FakeHub(LoopbackServer& server, std::string_view unlisted = "") {
    const char* fixtures[] = {"zstd_plain_v1", "snappy_dict_v2", "gzip_plain_v2"};
    std::size_t next = 0;
    for (const ts::HubSplit& split : ts::hub_splits) {
      const std::string name = ts::hub_split_name(split);
      const bool two = name == "openai/gsm8k main/train";
      std::string listing = "[";
      for (std::size_t k = 0; k < (two ? 2u : 1u); ++k) {
        const std::string body = slurp(kFixtures / (std::string(fixtures[next++ % 3]) + ".parquet"));
        shards[name].push_back(body);
        const std::string api = nanochat::cat(listing_path(split), "/", k, ".parquet");
        if (name == "openai/openai_humaneval openai_humaneval/test") {  // listed off the Hub endpoint
          listing += nanochat::cat("\"http://localhost:", server.port(), off_hub_path, "\"");
          server.add_file(off_hub_path, body);
          continue;
        }
        listing += nanochat::cat(k ? ", " : "", "\"", server.base_url(), api, "\"");
        if (k == 1) {
          server.add_redirect(api, nanochat::cat("http://localhost:", server.port(), cdn_path));
          server.add_file(cdn_path, body);
        } else {
          server.add_redirect(api, resolve_path(split, k));
          server.add_file(resolve_path(split, k), body);
        }
      }
      if (name != unlisted) server.add_file(listing_path(split), listing + "]");
    }
    server.add_file("/identity_conversations.jsonl", identity);
    server.add_file("/words_alpha.txt", "apple\r\nbanana\r\ncherry\r\n");
  }
};

ts::TaskDataSources loopback_sources(LoopbackServer& server) {
  ts::TaskDataSources sources;
  sources.hub = {server.base_url(), "hf_secret"};
  sources.identity_url = server.base_url() + "/identity_conversations.jsonl";
  sources.words_alpha_url = server.base_url() + "/words_alpha.txt";
  return sources;
}

bool has_temp_files_below(const fs::path& dir) {
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.path().extension() == ".tmp") return true;
  }
  return false;
}

const ts::HubSplit& split_named(std::string_view name) {
  for (const ts::HubSplit& split : ts::hub_splits) {
    if (ts::hub_split_name(split) == name) return split;
  }
  throw std::runtime_error("no split " + std::string(name));
}

}  // namespace

TEST_CASE("data.hub: the listing URL, HF_ENDPOINT and HF_TOKEN as huggingface_hub reads them") {
  {
    ScopedEnv endpoint("HF_ENDPOINT", "https://hf-mirror.example//");
    ScopedEnv token("HF_TOKEN", "hf_abc");
    const HubEndpoint hub = hub_endpoint_from_environment();
    CHECK(hub.url == "https://hf-mirror.example");
    CHECK(hub.token == "hf_abc");
    CHECK(hub_parquet_listing_url(hub, "allenai/ai2_arc", "ARC-Easy", "train") ==
          "https://hf-mirror.example/api/datasets/allenai/ai2_arc/parquet/ARC-Easy/train");
  }
  {
    ScopedEnv endpoint("HF_ENDPOINT", "");
    ::unsetenv("HF_TOKEN");
    const HubEndpoint hub = hub_endpoint_from_environment();
    CHECK(hub.url == "https://huggingface.co");
    CHECK(hub.token.empty());
  }
  ScopedEnv endpoint("HF_ENDPOINT", "hf-mirror.example");
  CHECK_THROWS_WITH_AS(hub_endpoint_from_environment(), doctest::Contains("not an http:// or https:// URL"),
                       nanochat::Error);
  CHECK(hub_shard_file_name(0) == "0000.parquet");
  CHECK(hub_shard_file_name(12) == "0012.parquet");
}

TEST_CASE("data.hub: a malformed listing is an error naming the listing's URL") {
  const std::string url = "https://huggingface.co/api/datasets/openai/gsm8k/parquet/main/train";
  CHECK(parse_hub_parquet_listing("[\"https://h/0.parquet\", \"http://h/1.parquet\"]", url) ==
        std::vector<std::string>{"https://h/0.parquet", "http://h/1.parquet"});
  const auto error_of = [&](std::string_view body) {
    try {
      parse_hub_parquet_listing(body, url);
    } catch (const nanochat::Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  for (std::string_view body : {"[\"https://h/0.parquet\"", "<html>rate limited</html>", "{\"train\": []}", "[]",
                                "[3]", "[\"file:///etc/passwd\"]", "{\"error\": \"Repository not found\"}"}) {
    CAPTURE(body);
    const std::string error = error_of(body);
    CHECK(error.starts_with(url));
    CHECK(error != "(no error)");
  }
  CHECK(error_of("[]").find("names no parquet shards") != std::string::npos);
  CHECK(error_of("[\"file:///etc/passwd\"]").find("not an http:// or https:// URL") != std::string::npos);
  CHECK(error_of("{\"error\": \"Repository not found\"}").find("Repository not found") != std::string::npos);
  CHECK(error_of("{\"train\": []}").find("expected a JSON array") != std::string::npos);
  CHECK(error_of("<html>rate limited</html>").find("invalid JSON") != std::string::npos);
}

TEST_CASE("tasks.download: every split's shards land in its directory through redirects, and the token goes to the Hub only") {
  LoopbackServer server;
  FakeHub hub(server);
  TempDir base;
  ScopedEnv base_dir("NANOCHAT_BASE_DIR", base.path().string());
  Recorder recorder;
  const auto options = fast_options(server, recorder);
  const auto report = ts::download_task_data({.chat_datasets = true, .words_alpha = true}, loopback_sources(server), options);

  for (const auto& failure : report.failed) MESSAGE(failure.item, ": ", failure.error);
  CHECK(report.failed.empty());
  CHECK(report.downloaded == 16 + 2);  // 15 splits, one of them in 2 shards; identity; words
  for (const ts::HubSplit& split : ts::hub_splits) {
    const std::string name = ts::hub_split_name(split);
    CAPTURE(name);
    const auto files = ts::hub_split_files(split, "test");
    REQUIRE(files.size() == hub.shards[name].size());
    for (std::size_t k = 0; k < files.size(); ++k) {
      CHECK(files[k] == base.path() / "task_data" / "hub" / split.repo / split.config / split.split / hub_shard_file_name(k));
      CHECK(slurp(files[k]) == hub.shards[name][k]);
    }
    CHECK(server.last_request(listing_path(split)).find("Authorization: Bearer hf_secret") != std::string::npos);
  }
  const ts::HubSplit& gsm8k = split_named("openai/gsm8k main/train");
  CHECK(server.last_request(resolve_path(gsm8k, 0)).find("Authorization: Bearer hf_secret") != std::string::npos);
  CHECK_FALSE(server.last_request(hub.cdn_path).empty());  // the redirect to the other host was followed
  CHECK(server.last_request(hub.cdn_path).find("Authorization") == std::string::npos);
  CHECK_FALSE(server.last_request(hub.off_hub_path).empty());
  CHECK(server.last_request(hub.off_hub_path).find("Authorization") == std::string::npos);
  CHECK(server.last_request("/identity_conversations.jsonl").find("Authorization") == std::string::npos);
  CHECK(slurp(base.path() / "identity_conversations.jsonl") == hub.identity);
  CHECK(ts::default_word_list() == base.path() / "words_alpha.txt");
  CHECK(ts::read_word_list(ts::default_word_list()) == std::vector<std::string>{"apple", "banana", "cherry"});
  CHECK_FALSE(has_temp_files_below(base.path()));
  CHECK(recorder.log.str().find("Listed openai/gsm8k main/train: 2 shard(s)") != std::string::npos);

  // Again: everything present is skipped without a request; only the listings are asked again.
  const auto again = ts::download_task_data({.chat_datasets = true, .words_alpha = true}, loopback_sources(server), options);
  CHECK(again.failed.empty());
  CHECK(again.skipped == 18);
  CHECK(again.downloaded == 0);
  CHECK(server.requests(resolve_path(gsm8k, 0)) == 1);
  CHECK(server.requests(listing_path(gsm8k)) == 2);
}

TEST_CASE("tasks.download: a split whose listing fails is reported by name and the others still download") {
  LoopbackServer server;
  FakeHub hub(server, "openai/openai_humaneval openai_humaneval/test");
  const ts::HubSplit& humaneval = split_named("openai/openai_humaneval openai_humaneval/test");
  const ts::HubSplit& dev = split_named("cais/mmlu all/dev");
  server.add_file(listing_path(dev), "[\"http://127.0.0.1/0.parquet\",");  // cut JSON
  TempDir base;
  ScopedEnv base_dir("NANOCHAT_BASE_DIR", base.path().string());
  Recorder recorder;
  const auto report = ts::download_task_data({}, loopback_sources(server), fast_options(server, recorder));

  REQUIRE(report.failed.size() == 2);
  CHECK(report.failed[0].item == "cais/mmlu all/dev");
  CHECK(report.failed[0].error.find(server.base_url() + listing_path(dev) + ": invalid JSON") != std::string::npos);
  CHECK(report.failed[1].item == "openai/openai_humaneval openai_humaneval/test");
  CHECK(report.failed[1].error.find("404") != std::string::npos);
  CHECK(report.failed[1].error.find(server.base_url() + listing_path(humaneval)) != std::string::npos);
  CHECK(report.downloaded == 16 - 2 + 1);  // the other 13 splits' 14 shards, and identity
  CHECK_FALSE(fs::exists(ts::hub_split_dir(humaneval)));
  CHECK(ts::hub_split_files(split_named("cais/mmlu all/test"), "MMLU").size() == 1);
}

TEST_CASE("tasks.download: a corrupt shard is retried, and one that stays corrupt leaves no file") {
  LoopbackServer server;
  FakeHub hub(server);
  const ts::HubSplit& test = split_named("openai/gsm8k main/test");
  const ts::HubSplit& arc = split_named("allenai/ai2_arc ARC-Easy/train");
  server.script(resolve_path(test, 0), {Fault::corrupt});
  server.script(resolve_path(arc, 0), {Fault::corrupt, Fault::corrupt, Fault::corrupt});
  TempDir base;
  ScopedEnv base_dir("NANOCHAT_BASE_DIR", base.path().string());
  Recorder recorder;
  const auto report = ts::download_task_data({}, loopback_sources(server), fast_options(server, recorder));

  REQUIRE(report.failed.size() == 1);
  CHECK(report.failed[0].item == "allenai/ai2_arc ARC-Easy/train 0000.parquet");
  CHECK(report.failed[0].error.find("PAR1") != std::string::npos);
  CHECK(server.requests(resolve_path(arc, 0)) == 3);
  CHECK_FALSE(fs::exists(ts::hub_split_dir(arc) / "0000.parquet"));
  CHECK(slurp(ts::hub_split_dir(test) / "0000.parquet") == hub.shards["openai/gsm8k main/test"][0]);
  CHECK(server.requests(resolve_path(test, 0)) == 2);
  CHECK_FALSE(has_temp_files_below(base.path()));
  CHECK(recorder.log.str().find("Attempt 1/3 for openai/gsm8k main/test 0000.parquet failed") != std::string::npos);
}

TEST_CASE("data.http: an API answer longer than its limit is an error, not a memory hog") {
  LoopbackServer server;
  server.add_file("/big", std::string(5000, 'x'));
  HttpClient http;
  CHECK(http.get_to_string(server.base_url() + "/big", 5000).size() == 5000);
  CHECK_THROWS_WITH_AS(http.get_to_string(server.base_url() + "/big", 4999),
                       doctest::Contains("/big: the answer exceeds 4999 bytes"), nanochat::Error);
}
