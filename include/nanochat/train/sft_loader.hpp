#pragma once
// chat_sft's loader (spec §5.5): rank r of W takes conversations r, r+W, ... of a task, epoch
// after epoch, renders each with render_conversation and collates groups of B into a batch:
// row i's inputs are ids[:-1], its targets ids[1:] with -1 wherever mask[1:] is 0 (the model
// reads but does not produce those tokens), and the rest of the row is padding: input
// <|assistant_end|>, target -1.
//
// As nanochat's collate, each batch is as wide as its longest conversation minus one, at most
// T = seq_len: conversations are rendered to at most min(2048, T + 1) tokens (nanochat's 2048
// when T >= 2047). The model, planned for T, runs such a batch at its own width (model/gpt.hpp),
// so short conversations cost what they hold, not T positions each.
//
// The position, in data::LoaderState's terms (one shard whose groups are conversations): epoch
// and group = the next conversation to read; offset is always 0.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/loss.hpp"
#include "nanochat/data/token_loader.hpp"
#include "nanochat/tasks/task.hpp"
#include "nanochat/tokenizer/chat_template.hpp"
#include "nanochat/train/mid_loader.hpp"

namespace nanochat {

// Writes the rendered conversations as rows of `width` columns (width >= the longest minus one):
// inputs ids[:-1] then pad_id, targets ids[1:] with ignore_index where mask[1:] is 0 and in the
// padding. Returns the number of targets that are not ignored.
inline std::int64_t collate_sft_rows(std::span<const tokenizer::RenderedConversation> rows, std::int32_t pad_id,
                                     std::size_t width, std::vector<std::int32_t>& inputs,
                                     std::vector<std::int32_t>& targets) {
  inputs.assign(rows.size() * width, pad_id);
  targets.assign(rows.size() * width, ignore_index);
  std::int64_t supervised = 0;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const auto& ids = rows[r].ids;
    const auto& mask = rows[r].mask;
    NANOCHAT_CHECK(ids.size() >= 1 && ids.size() - 1 <= width && mask.size() == ids.size(), "collate_sft_rows: row ",
                   r, " has ", ids.size(), " tokens and ", mask.size(), " mask values for a width of ", width);
    for (std::size_t t = 0; t + 1 < ids.size(); ++t) {
      inputs[r * width + t] = static_cast<std::int32_t>(ids[t]);
      if (mask[t + 1] != 0) {
        targets[r * width + t] = static_cast<std::int32_t>(ids[t + 1]);
        ++supervised;
      }
    }
  }
  return supervised;
}

class SftLoader {
 public:
  SftLoader(const tokenizer::Tokenizer& tok, tasks::TaskPtr task, ConversationLoaderOptions options,
            std::optional<data::LoaderState> resume = std::nullopt)
      : tok_(&tok), task_(std::move(task)), o_(options),
        pad_id_(static_cast<std::int32_t>(tok.encode_special("<|assistant_end|>"))) {
    NANOCHAT_CHECK(task_ != nullptr, "SftLoader: no task");
    loader_detail::check_options(*task_, o_, "SftLoader");
    position_ = resume.value_or(data::LoaderState{0, 0, o_.rank, 0});
    loader_detail::check_state(*task_, position_, "SftLoader");
    NANOCHAT_CHECK(position_.offset == 0, "SftLoader: a saved position has offset 0, not ", position_.offset);
  }

  // Fills inputs and targets [B, width], width = the longest row's tokens minus one (<= T);
  // last_supervised() counts the targets not ignored. Returns false: SFT's horizon is counted in
  // steps and the loader repeats the task, so no batch ends it.
  bool next(std::vector<std::int32_t>& inputs, std::vector<std::int32_t>& targets) {
    rows_.clear();
    const std::size_t limit = std::min(o_.max_render_tokens, o_.seq_len + 1);
    for (std::size_t i = 0; i < o_.batch_size; ++i) {
      rows_.push_back(tokenizer::render_conversation(*tok_, task_->example(position_.group).conversation, limit));
      position_.group += o_.world;
      if (position_.group >= task_->size()) {  // nanochat restarts each epoch at the rank's first row
        position_.group = o_.rank;
        ++position_.epoch;
      }
    }
    std::size_t width = 1;
    for (const auto& row : rows_) width = std::max(width, row.ids.size() - 1);
    last_supervised_ = collate_sft_rows(rows_, pad_id_, width, inputs, targets);
    return false;
  }

  std::int64_t last_supervised() const { return last_supervised_; }
  const data::LoaderState& state() const { return position_; }

 private:
  const tokenizer::Tokenizer* tok_;
  tasks::TaskPtr task_;
  ConversationLoaderOptions o_;
  std::int32_t pad_id_;
  data::LoaderState position_;
  std::vector<tokenizer::RenderedConversation> rows_;
  std::int64_t last_supervised_ = 0;
};

}  // namespace nanochat
