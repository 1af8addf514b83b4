#pragma once
// HTTP(S) GET of one URL into a file or a string, on libcurl (the shard mirror and the Hub are
// HTTPS and redirect to a CDN). One client per thread: a curl easy handle is not shareable, but
// it is reusable, which keeps connections alive across shards.

#include <curl/curl.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "nanochat/core/error.hpp"

namespace nanochat::data {

struct HttpOptions {
  long connect_timeout_s = 30;
  // Abort a transfer that moves less than 1 byte/s for this long (nanochat: 30 s timeout).
  long stall_timeout_s = 30;
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options = {}) : options_(options) {
    static std::once_flag global;
    std::call_once(global, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    handle_ = curl_easy_init();
    NANOCHAT_CHECK(handle_ != nullptr, "curl_easy_init failed");
  }
  ~HttpClient() { curl_easy_cleanup(handle_); }
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Writes the body of url to path (truncating it); returns the number of bytes written.
  // Throws on a transport error, an HTTP status >= 400, or a short body. Redirects are followed
  // (the Hub answers `resolve` URLs with a redirect to its CDN). A non-empty bearer_token goes
  // out as "Authorization: Bearer <token>"; curl does not repeat such a header to another host
  // or port on a redirect, so a token for the Hub never reaches the CDN.
  std::uint64_t get_to_file(const std::string& url, const std::filesystem::path& path,
                            std::string_view bearer_token = {}) {
    std::FILE* out = std::fopen(path.c_str(), "wb");
    NANOCHAT_CHECK(out != nullptr, path.string(), ": cannot create");
    Sink sink{out, 0};
    char error[CURL_ERROR_SIZE] = {};
    CURLcode code = perform(url, &HttpClient::write, &sink, bearer_token, error);
    bool closed = std::fclose(out) == 0;
    NANOCHAT_CHECK(closed && !sink.failed, path.string(), ": write failed (disk full?)");
    NANOCHAT_CHECK(code == CURLE_OK, "GET ", url, ": ", error[0] != '\0' ? error : curl_easy_strerror(code));
    return sink.bytes;
  }

  // The body of url (an API answer); one longer than max_bytes is an error, not a memory hog.
  std::string get_to_string(const std::string& url, std::size_t max_bytes, std::string_view bearer_token = {}) {
    TextSink sink{{}, max_bytes};
    char error[CURL_ERROR_SIZE] = {};
    CURLcode code = perform(url, &HttpClient::append, &sink, bearer_token, error);
    NANOCHAT_CHECK(!sink.too_long, "GET ", url, ": the answer exceeds ", max_bytes, " bytes");
    NANOCHAT_CHECK(code == CURLE_OK, "GET ", url, ": ", error[0] != '\0' ? error : curl_easy_strerror(code));
    return std::move(sink.text);
  }

 private:
  struct Sink {
    std::FILE* file;
    std::uint64_t bytes;
    bool failed = false;
  };
  struct TextSink {
    std::string text;
    std::size_t max_bytes;
    bool too_long = false;
  };

  CURLcode perform(const std::string& url, curl_write_callback on_data, void* sink, std::string_view bearer_token,
                   char* error) {
    curl_easy_reset(handle_);
    curl_easy_setopt(handle_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(handle_, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(handle_, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(handle_, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(handle_, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM-based timeouts
    curl_easy_setopt(handle_, CURLOPT_CONNECTTIMEOUT, options_.connect_timeout_s);
    curl_easy_setopt(handle_, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(handle_, CURLOPT_LOW_SPEED_TIME, options_.stall_timeout_s);
    curl_easy_setopt(handle_, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(handle_, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(handle_, CURLOPT_WRITEDATA, sink);
    curl_slist* headers = nullptr;
    if (!bearer_token.empty()) {
      const std::string header = "Authorization: Bearer " + std::string(bearer_token);
      headers = curl_slist_append(nullptr, header.c_str());
      NANOCHAT_CHECK(headers != nullptr, "GET ", url, ": out of memory for the request headers");
      curl_easy_setopt(handle_, CURLOPT_HTTPHEADER, headers);
    }
    CURLcode code = curl_easy_perform(handle_);
    curl_easy_setopt(handle_, CURLOPT_HTTPHEADER, nullptr);
    curl_slist_free_all(headers);
    return code;
  }

  static std::size_t write(char* data, std::size_t size, std::size_t count, void* user) {
    auto* sink = static_cast<Sink*>(user);
    std::size_t n = size * count;
    if (std::fwrite(data, 1, n, sink->file) != n) {
      sink->failed = true;
      return 0;  // tells curl to abort
    }
    sink->bytes += n;
    return n;
  }

  static std::size_t append(char* data, std::size_t size, std::size_t count, void* user) {
    auto* sink = static_cast<TextSink*>(user);
    std::size_t n = size * count;
    if (n > sink->max_bytes - sink->text.size()) {
      sink->too_long = true;
      return 0;
    }
    sink->text.append(data, n);
    return n;
  }

  HttpOptions options_;
  CURL* handle_ = nullptr;
};

}  // namespace nanochat::data
