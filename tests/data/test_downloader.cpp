// The shard downloader against a loopback server that injects faults. Nothing here contacts
// another host: every URL is http://127.0.0.1:<port>.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "loopback_server.hpp"
#include "nanochat/data/downloader.hpp"
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
