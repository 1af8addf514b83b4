#pragma once
// nanochat's tokenizing distributed loader: every document is prefixed with BOS and the
// documents are concatenated into one token stream; each batch takes B*T+1 tokens, inputs are
// the first B*T as [B, T] and targets the same shifted by one (the extra token is consumed).
// Rank r of W reads groups r, r+W, ... of every shard in order (parquet row groups; for text
// and JSONL blocks of group_size documents). Worker threads tokenize whole groups ahead of the
// consumer; groups are handed out and consumed in sequence order, so the stream is the same for
// any thread count. Null documents (parquet nulls, JSONL null fields; "" is a document) are
// skipped and counted, and the log gets a line per shard pass that had any. Unlike nanochat
// (whose resume point is approximate and which hangs at the end of the training shards), the
// state is exact and the loader wraps into a new epoch.

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/limits.hpp"
#include "nanochat/data/document_source.hpp"
#include "nanochat/tokenizer/tokenizer.hpp"

namespace nanochat::data {

// Where the next batch starts; checkpoints store it, and a loader built with it yields exactly
// the batches the saved run would have produced next.
struct LoaderState {
  std::uint64_t epoch = 0;
  std::size_t shard = 0;   // index into the loader's shard list
  std::size_t group = 0;   // group within that shard (rank + k * world)
  std::size_t offset = 0;  // tokens of that group's stream already consumed
  bool operator==(const LoaderState&) const = default;
};

struct LoaderOptions {
  std::size_t batch_size = 1;  // B, rows per batch
  std::size_t seq_len = 2048;  // T
  std::size_t rank = 0;
  std::size_t world = 1;
  std::size_t threads = 2;   // tokenizing workers
  std::size_t prefetch = 4;  // groups tokenized ahead of the consumer (at least `threads`)
  CorpusOptions corpus;
  std::FILE* log = stderr;  // where skipped null documents are reported; nullptr: nowhere
};

class TokenLoader {
 public:
  TokenLoader(const tokenizer::Tokenizer& tok, std::vector<std::filesystem::path> shards,
              LoaderOptions options, std::optional<LoaderState> resume = std::nullopt)
      : tok_(tok), shards_(std::move(shards)), options_(std::move(options)), bos_(tok.bos_id()),
        state_(resume.value_or(LoaderState{0, 0, options_.rank, 0})),
        cursor_{state_.epoch, state_.shard, state_.group} {
    NANOCHAT_CHECK(!shards_.empty(), "loader: no shards");
    NANOCHAT_CHECK(options_.batch_size > 0 && options_.seq_len > 0, "loader: B and T must be positive");
    NANOCHAT_CHECK(options_.world > 0 && options_.rank < options_.world, "loader: rank ", options_.rank,
                   " outside world of ", options_.world);
    NANOCHAT_CHECK(options_.threads > 0 && options_.threads <= static_cast<std::size_t>(max_threads), "loader: ",
                   options_.threads, " threads; it takes 1 to ", max_threads);
    NANOCHAT_CHECK(state_.shard < shards_.size() && state_.group % options_.world == options_.rank,
                   "loader: resume state (shard ", state_.shard, ", group ", state_.group,
                   ") does not belong to rank ", options_.rank, " of ", options_.world, " over ",
                   shards_.size(), " shards");
    resume_group_ = resume.has_value();  // a saved state must name a group that exists
    options_.prefetch = std::max(options_.prefetch, options_.threads);
    workers_.reserve(options_.threads);  // so that only the thread start itself can throw below
    try {
      for (std::size_t t = 0; t < options_.threads; ++t) workers_.emplace_back([this] { work(); });
    } catch (const std::exception& e) {  // system_error, or bad_alloc for a thread's state
      // The destructor does not run for a constructor that throws: stop the workers started so
      // far here, else their std::thread objects terminate the process.
      stop_workers();
      NANOCHAT_FAIL("loader: cannot start ", options_.threads, " tokenizing threads (", workers_.size(),
                    " started): ", e.what());
    }
  }

  ~TokenLoader() {
    {
      std::lock_guard lock(mutex_);
      report_nulls();  // of the shard the run stopped in
    }
    stop_workers();
  }
  TokenLoader(const TokenLoader&) = delete;
  TokenLoader& operator=(const TokenLoader&) = delete;

  // Fills inputs and targets with B*T ids each, row-major [B, T]. Rethrows a worker's error
  // (e.g. a corrupt shard) when the stream reaches the group that caused it.
  void next(std::vector<std::int32_t>& inputs, std::vector<std::int32_t>& targets) {
    if (error_) std::rethrow_exception(error_);  // the stream ended there; workers have stopped
    std::size_t count = options_.batch_size * options_.seq_len;
    inputs.resize(count);
    targets.resize(count);
    for (std::size_t i = 0; i <= count; ++i) {
      if (position_ == current_.tokens.size()) take_next_group();
      auto token = static_cast<std::int32_t>(current_.tokens[position_++]);
      if (i < count) inputs[i] = token;
      if (i > 0) targets[i - 1] = token;
    }
    state_ = {current_.epoch, current_.shard, current_.group, position_};
  }

  const LoaderState& state() const { return state_; }
  // Null values skipped so far in the groups read (which run ahead of the batches by `prefetch`).
  std::size_t null_documents_skipped() {
    std::lock_guard lock(mutex_);
    return null_documents_;
  }
  std::uint64_t epoch() const { return state_.epoch; }

 private:
  void stop_workers() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

  struct Group {
    std::uint64_t epoch = 0;
    std::size_t shard = 0;
    std::size_t group = 0;
    std::vector<tokenizer::TokenId> tokens;
    std::exception_ptr error;
  };

  struct Cursor {
    std::uint64_t epoch;
    std::size_t shard;
    std::size_t group;
  };

  // Makes current_ the next group with a token left to consume (skipping empty parquet row
  // groups, and on the first call the tokens a resumed run had already consumed).
  void take_next_group() {
    do {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return ready_.count(consume_seq_) != 0; });
      auto node = ready_.extract(consume_seq_);
      ++consume_seq_;
      lock.unlock();
      changed_.notify_all();
      current_ = std::move(node.mapped());
      position_ = 0;
      if (!current_.error && first_group_ && state_.offset > current_.tokens.size()) {
        current_.error = std::make_exception_ptr(Error(cat(
            "loader: resume offset ", state_.offset, " exceeds the ", current_.tokens.size(), " tokens of ",
            shards_[current_.shard].string(), " group ", current_.group)));
      }
      if (current_.error) {
        error_ = current_.error;
        std::rethrow_exception(error_);
      }
      if (first_group_) position_ = state_.offset;
      first_group_ = false;
      check_stream_has_tokens();
    } while (position_ == current_.tokens.size());
  }

  // Groups without a token (every document null, a row group of 0 rows) are passed over; when
  // two whole epochs pass without a token there is none to find, and waiting would never end.
  void check_stream_has_tokens() {
    if (!current_.tokens.empty()) {
      empty_since_epoch_.reset();
      return;
    }
    if (!empty_since_epoch_) empty_since_epoch_ = current_.epoch;
    if (current_.epoch < *empty_since_epoch_ + 2) return;
    error_ = std::make_exception_ptr(Error(cat(
        "loader: the ", shards_.size(), " shard", shards_.size() == 1 ? "" : "s", " (", shards_.front().string(),
        shards_.size() == 1 ? "" : ", ...", ") hold no document for rank ", options_.rank, " of ", options_.world,
        ": every value is null or every row group empty")));
    std::rethrow_exception(error_);
  }

  // Claims the next group of this rank and reads its documents; called with mutex_ held.
  std::size_t claim(Group& out, std::vector<std::string>& documents) {
    std::size_t empty_wraps = 0;
    while (true) {
      if (!shard_) shard_ = open_shard(shards_[cursor_.shard], options_.corpus);
      if (resume_group_) {
        resume_group_ = false;
        NANOCHAT_CHECK(cursor_.group < shard_->num_groups(), "loader: resume state names group ",
                       cursor_.group, " but ", shard_->name(), " has ", shard_->num_groups());
      }
      if (cursor_.group < shard_->num_groups()) {
        out.epoch = cursor_.epoch;
        out.shard = cursor_.shard;
        out.group = cursor_.group;
        std::size_t nulls = shard_->read_group(cursor_.group, documents);
        shard_nulls_ += nulls;
        null_documents_ += nulls;
        cursor_.group += options_.world;
        return next_seq_++;
      }
      report_nulls();
      shard_.reset();
      cursor_.group = options_.rank;
      if (++cursor_.shard == shards_.size()) {
        cursor_.shard = 0;
        ++cursor_.epoch;
        // Two wraps in a row without a group: this rank has nothing to read at all.
        NANOCHAT_CHECK(++empty_wraps < 2, "loader: rank ", options_.rank, " of ", options_.world,
                       " has no groups in the ", shards_.size(), " shards");
      }
    }
  }

  // One log line for the current shard's pass if it skipped nulls; called with mutex_ held.
  void report_nulls() {
    if (shard_nulls_ > 0 && options_.log != nullptr) {
      std::fprintf(options_.log, "loader: skipped %zu null document%s in %s (epoch %llu, rank %zu)\n", shard_nulls_,
                   shard_nulls_ == 1 ? "" : "s", shards_[cursor_.shard].string().c_str(),
                   static_cast<unsigned long long>(cursor_.epoch), options_.rank);
      std::fflush(options_.log);
    }
    shard_nulls_ = 0;
  }

  void work() {
    std::vector<std::string> documents;
    while (true) {
      Group group;
      std::size_t seq = 0;
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return stop_ || (!failed_ && next_seq_ < consume_seq_ + options_.prefetch); });
        if (stop_) return;
        try {
          seq = claim(group, documents);
        } catch (...) {
          failed_ = true;  // the cursor may be mid-shard; nothing after this group is produced
          group.error = std::current_exception();
          ready_[next_seq_] = std::move(group);
          lock.unlock();
          changed_.notify_all();
          continue;
        }
      }
      try {
        for (const auto& document : documents) {
          group.tokens.push_back(bos_);
          tok_.encode_into(document, group.tokens);
        }
      } catch (...) {
        group.error = std::current_exception();
      }
      {
        std::lock_guard lock(mutex_);
        ready_[seq] = std::move(group);
      }
      changed_.notify_all();
    }
  }

  const tokenizer::Tokenizer& tok_;
  std::vector<std::filesystem::path> shards_;
  LoaderOptions options_;
  tokenizer::TokenId bos_;

  // Consumer side (the thread calling next()).
  LoaderState state_;
  Group current_;
  std::size_t position_ = 0;
  bool first_group_ = true;
  std::exception_ptr error_;

  // Shared with the workers, under mutex_.
  std::mutex mutex_;
  std::condition_variable changed_;
  bool stop_ = false;
  bool failed_ = false;
  Cursor cursor_;
  bool resume_group_ = false;
  std::unique_ptr<DocumentShard> shard_;
  std::optional<std::uint64_t> empty_since_epoch_;  // epoch of the first of the latest run of empty groups
  std::size_t shard_nulls_ = 0;     // nulls skipped in this pass over shard_
  std::size_t null_documents_ = 0;  // nulls skipped in all groups read
  std::size_t next_seq_ = 0;     // next group sequence number to claim
  std::size_t consume_seq_ = 0;  // next sequence number the consumer takes
  std::map<std::size_t, Group> ready_;
  std::vector<std::thread> workers_;
};

}  // namespace nanochat::data
