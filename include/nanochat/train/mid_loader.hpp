#pragma once
// mid_train's loader (spec §5.4): rank r of W renders conversations r, r+W, ... of a task with
// render_conversation and appends all their tokens (the mask is ignored) to one stream; each
// batch takes B*T+1 tokens of it, cut as in pretraining (inputs the first B*T as [B, T], targets
// the same shifted by one; the extra token is consumed). Past the task's end the cursor wraps
// (cursor -= size, as nanochat's) into a new epoch.
//
// The position is exact and small, in data::LoaderState's terms (the task is one shard whose
// groups are single conversations): epoch, group = the conversation being read, offset = its
// tokens already consumed. A loader built with a saved state re-renders that conversation and
// yields exactly the batches that would have followed.
//
// next() says whether the batch read from the last conversation of the epoch: nanochat ends the
// run when the batch about to be trained has (its generator sets last_step while rendering it).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/data/token_loader.hpp"
#include "nanochat/tasks/task.hpp"
#include "nanochat/tokenizer/chat_template.hpp"

namespace nanochat {

struct ConversationLoaderOptions {
  std::size_t batch_size = 1;  // B, rows per batch
  std::size_t seq_len = 2048;  // T
  std::size_t rank = 0;
  std::size_t world = 1;
  std::size_t max_render_tokens = 2048;  // render_conversation's limit (nanochat's default)
};

namespace loader_detail {

inline void check_options(const tasks::Task& task, const ConversationLoaderOptions& o, const char* who) {
  NANOCHAT_CHECK(task.size() > 0, who, ": task ", task.name(), " has no examples");
  NANOCHAT_CHECK(o.batch_size > 0 && o.seq_len > 0 && o.world > 0 && o.max_render_tokens > 0, who,
                 ": batch size, sequence length, world size and render limit must be positive");
  NANOCHAT_CHECK(o.rank < o.world, who, ": rank ", o.rank, " is not below the world size ", o.world);
  NANOCHAT_CHECK(o.rank < task.size(), who, ": rank ", o.rank, " has no example of task ", task.name(), " (",
                 task.size(), " examples)");
}

// A saved position must point into this task: another mixture (or a corrupt meta file) is named.
inline void check_state(const tasks::Task& task, const data::LoaderState& s, const char* who) {
  NANOCHAT_CHECK(s.shard == 0 && s.group < task.size(), who, ": the saved position (shard ", s.shard,
                 ", conversation ", s.group, ") is outside task ", task.name(), " of ", task.size(),
                 " conversations; was the checkpoint trained on another mixture?");
}

}  // namespace loader_detail

class MidLoader {
 public:
  MidLoader(const tokenizer::Tokenizer& tok, tasks::TaskPtr task, ConversationLoaderOptions options,
            std::optional<data::LoaderState> resume = std::nullopt)
      : tok_(&tok), task_(std::move(task)), o_(options) {
    NANOCHAT_CHECK(task_ != nullptr, "MidLoader: no task");
    loader_detail::check_options(*task_, o_, "MidLoader");
    position_ = resume.value_or(data::LoaderState{0, 0, o_.rank, 0});
    loader_detail::check_state(*task_, position_, "MidLoader");
    render_current();
    NANOCHAT_CHECK(position_.offset <= current_.size(), "MidLoader: the saved position has consumed ",
                   position_.offset, " tokens of conversation ", position_.group, ", which renders to ",
                   current_.size(), "; was the checkpoint trained with another tokenizer or mixture?");
  }

  // Fills inputs and targets with B*T tokens each; true when the batch read from the last
  // conversation of an epoch.
  bool next(std::vector<std::int32_t>& inputs, std::vector<std::int32_t>& targets) {
    const std::size_t needed = o_.batch_size * o_.seq_len + 1;
    chunk_.clear();
    bool touched_last = false;
    while (chunk_.size() < needed) {
      if (position_.offset == current_.size()) advance();
      const std::size_t take = std::min(needed - chunk_.size(), current_.size() - position_.offset);
      chunk_.insert(chunk_.end(), current_.begin() + static_cast<std::ptrdiff_t>(position_.offset),
                    current_.begin() + static_cast<std::ptrdiff_t>(position_.offset + take));
      position_.offset += take;
      touched_last = touched_last || is_last_of_epoch(position_.group);
    }
    inputs.assign(chunk_.begin(), chunk_.end() - 1);
    targets.assign(chunk_.begin() + 1, chunk_.end());
    return touched_last;
  }

  const data::LoaderState& state() const { return position_; }
  // nanochat's approximate progress: the index of the next conversation to render over the size.
  double epoch_progress() const {
    return std::min(1.0, static_cast<double>(position_.group + o_.world) / static_cast<double>(task_->size()));
  }

 private:
  bool is_last_of_epoch(std::size_t index) const { return index + o_.world >= task_->size(); }

  void advance() {
    position_.group += o_.world;
    if (position_.group >= task_->size()) {
      position_.group -= task_->size();
      ++position_.epoch;
    }
    position_.offset = 0;
    render_current();
  }

  void render_current() {
    const auto rendered =
        tokenizer::render_conversation(*tok_, task_->example(position_.group).conversation, o_.max_render_tokens);
    current_.assign(rendered.ids.begin(), rendered.ids.end());
  }

  const tokenizer::Tokenizer* tok_;
  tasks::TaskPtr task_;
  ConversationLoaderOptions o_;
  data::LoaderState position_;
  std::vector<std::int32_t> current_, chunk_;
};

}  // namespace nanochat
