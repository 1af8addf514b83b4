#pragma once
// The chat server's counters, written in Prometheus' text exposition format for GET /metrics:
// requests by route and status, prompt and generated tokens, the generation rate, time to first
// token (a histogram), requests in flight, and the generator's slots and queue.

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <utility>

#include "nanochat/serve/generator.hpp"

namespace nanochat::serve {

class ServerMetrics {
 public:
  static constexpr std::array<double, 10> ttft_buckets{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

  void request_done(const std::string& route, int status) {
    std::lock_guard lock(mutex_);
    ++requests_[{route, status}];
  }
  // One choice: its tokens, and the seconds from its first token to its last (its decode time).
  void generated(std::int64_t prompt_tokens, std::int64_t completion_tokens, double decode_seconds) {
    std::lock_guard lock(mutex_);
    prompt_tokens_ += prompt_tokens;
    completion_tokens_ += completion_tokens;
    if (completion_tokens > 1) {
      decode_tokens_ += completion_tokens - 1;
      decode_seconds_ += decode_seconds;
    }
  }
  // Seconds from a request's arrival to its first token.
  void first_token(double seconds) {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < ttft_buckets.size(); ++i) ttft_counts_[i] += seconds <= ttft_buckets[i] ? 1 : 0;
    ++ttft_count_;
    ttft_sum_ += seconds;
  }
  void enter() {
    std::lock_guard lock(mutex_);
    ++in_flight_;
  }
  void leave() {
    std::lock_guard lock(mutex_);
    --in_flight_;
  }

  std::string prometheus(const GeneratorStats& g) const {
    std::lock_guard lock(mutex_);
    std::ostringstream o;
    o << "# HELP nanochat_requests_total HTTP requests answered, by route and status.\n"
      << "# TYPE nanochat_requests_total counter\n";
    for (const auto& [key, n] : requests_) {
      o << "nanochat_requests_total{route=\"" << key.first << "\",status=\"" << key.second << "\"} " << n << "\n";
    }
    o << "# HELP nanochat_prompt_tokens_total Prompt tokens of the completions served.\n"
      << "# TYPE nanochat_prompt_tokens_total counter\nnanochat_prompt_tokens_total " << prompt_tokens_ << "\n"
      << "# HELP nanochat_completion_tokens_total Tokens generated.\n"
      << "# TYPE nanochat_completion_tokens_total counter\nnanochat_completion_tokens_total " << completion_tokens_ << "\n"
      << "# HELP nanochat_tokens_per_second Decode rate of one reply: tokens after the first over the seconds after the first, all replies so far.\n"
      << "# TYPE nanochat_tokens_per_second gauge\nnanochat_tokens_per_second "
      << (decode_seconds_ > 0 ? static_cast<double>(decode_tokens_) / decode_seconds_ : 0.0) << "\n"
      << "# HELP nanochat_time_to_first_token_seconds Seconds from a request's arrival to its first token.\n"
      << "# TYPE nanochat_time_to_first_token_seconds histogram\n";
    for (std::size_t i = 0; i < ttft_buckets.size(); ++i) {
      o << "nanochat_time_to_first_token_seconds_bucket{le=\"" << ttft_buckets[i] << "\"} " << ttft_counts_[i] << "\n";
    }
    o << "nanochat_time_to_first_token_seconds_bucket{le=\"+Inf\"} " << ttft_count_ << "\n"
      << "nanochat_time_to_first_token_seconds_sum " << ttft_sum_ << "\n"
      << "nanochat_time_to_first_token_seconds_count " << ttft_count_ << "\n"
      << "# HELP nanochat_requests_in_flight Chat requests being answered now (queued or generating).\n"
      << "# TYPE nanochat_requests_in_flight gauge\nnanochat_requests_in_flight " << in_flight_ << "\n"
      << "# HELP nanochat_slots KV-cache slots: requests that can decode at once.\n"
      << "# TYPE nanochat_slots gauge\nnanochat_slots " << g.slots << "\n"
      << "# HELP nanochat_slots_in_use Slots decoding a request now.\n"
      << "# TYPE nanochat_slots_in_use gauge\nnanochat_slots_in_use " << g.slots_in_use << "\n"
      << "# HELP nanochat_requests_queued Requests waiting for a slot.\n"
      << "# TYPE nanochat_requests_queued gauge\nnanochat_requests_queued " << g.queued << "\n"
      << "# HELP nanochat_queue_capacity Waiting requests beyond which a request is refused (429).\n"
      << "# TYPE nanochat_queue_capacity gauge\nnanochat_queue_capacity " << g.queue_capacity << "\n"
      << "# HELP nanochat_prompt_tokens_reused_total Prompt tokens taken from a cached prefix instead of computed.\n"
      << "# TYPE nanochat_prompt_tokens_reused_total counter\nnanochat_prompt_tokens_reused_total " << g.prompt_tokens_reused << "\n";
    return o.str();
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, std::int64_t> requests_;
  std::int64_t prompt_tokens_ = 0, completion_tokens_ = 0, decode_tokens_ = 0;
  double decode_seconds_ = 0;
  std::array<std::int64_t, ttft_buckets.size()> ttft_counts_{};
  std::int64_t ttft_count_ = 0;
  double ttft_sum_ = 0;
  std::int64_t in_flight_ = 0;
};

}  // namespace nanochat::serve
