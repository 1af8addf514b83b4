#pragma once
// Hands a completion's pieces from the thread that generates it to the thread that writes the
// HTTP response. The writer waits until generation starts (first token) or ends, so a request
// refused before its first token can still get its own status; then it takes pieces as they
// come, and marks the client gone when a write fails, which cancels generation at the next token.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "nanochat/serve/chat_completion.hpp"

namespace nanochat::serve {

class ReplyChannel final : public ReplyOutput {
 public:
  // Generating side.
  void started() override {
    std::lock_guard lock(mutex_);
    started_ = true;
    ready_.notify_all();
  }
  bool emit(std::string_view piece) override {
    std::lock_guard lock(mutex_);
    if (gone_) return false;
    pending_ += piece;
    ready_.notify_all();
    return true;
  }
  bool alive() const override {
    std::lock_guard lock(mutex_);
    return !gone_;
  }
  // Generation is over; `refused` when it never started and the request gets an error status.
  void close(std::optional<HttpReply> refused = std::nullopt) {
    std::lock_guard lock(mutex_);
    closed_ = true;
    refused_ = std::move(refused);
    ready_.notify_all();
  }

  // Writing side. Blocks until the first token or the end; true: it started.
  bool wait_start() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return started_ || closed_; });
    return started_;
  }
  std::optional<HttpReply> refused() const {
    std::lock_guard lock(mutex_);
    return refused_;
  }
  enum class Next { pieces, idle, closed };
  // Everything emitted since the last call; idle when nothing came within `wait`; closed once
  // generation is over and all was taken.
  Next next(std::string& out, std::chrono::milliseconds wait) {
    std::unique_lock lock(mutex_);
    ready_.wait_for(lock, wait, [&] { return !pending_.empty() || closed_; });
    if (!pending_.empty()) {
      out = std::move(pending_);
      pending_.clear();
      return Next::pieces;
    }
    return closed_ ? Next::closed : Next::idle;
  }
  void client_gone() {
    std::lock_guard lock(mutex_);
    gone_ = true;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::string pending_;
  std::optional<HttpReply> refused_;
  bool started_ = false, closed_ = false, gone_ = false;
};

}  // namespace nanochat::serve
