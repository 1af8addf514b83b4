#pragma once
// The model a chat program (chat_cli, chat_eval, chat_web) talks to, from the flags they share:
// the checkpoint and tokenizer named by --checkpoint/-i/--model-tag/--step and --tokenizer, and
// --dtype's weights, bf16 (rounded once at load) or float. with_chat_weights() loads the weights
// into the Config the file names; with_chat_engine() hands an Engine over a GptDecoder on them to
// the program, so the programs differ only in what they do with it.

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>

#include "nanochat/core/bf16.hpp"
#include "nanochat/core/depth_dispatch.hpp"
#include "nanochat/core/error.hpp"
#include "nanochat/core/safetensors.hpp"
#include "nanochat/engine/checkpoint.hpp"
#include "nanochat/engine/engine.hpp"
#include "nanochat/model/gpt_decoder.hpp"
#include "nanochat/model/weights_file.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"

namespace nanochat::engine {

struct ChatModel {
  std::filesystem::path checkpoint, tokenizer_dir;
  SafetensorsFile file;
  tokenizer::Tokenizer tok;
  bool bf16_weights;

  static ChatModel open(const std::string& checkpoint, const std::string& source, const std::string& model_tag,
                        std::int64_t step, const std::string& tokenizer, const std::string& dtype) {
    NANOCHAT_CHECK(dtype == "bfloat16" || dtype == "float32", "--dtype ", dtype, " is unknown; use bfloat16 or float32");
    std::filesystem::path path = chat_checkpoint_path(checkpoint, source, model_tag, step);
    std::filesystem::path tok_dir = chat_tokenizer_dir(tokenizer);
    SafetensorsFile file = SafetensorsFile::load(path);
    tokenizer::Tokenizer tok = tokenizer::load_tokenizer(tok_dir);
    return {std::move(path), std::move(tok_dir), std::move(file), std::move(tok), dtype == "bfloat16"};
  }
};

// Calls fn.template operator()<C, W>(weights, sequence_len) with C the checkpoint's Config, W the
// weights' element type and the weights loaded on `backend`: what a program needs to build its own
// decoder (chat_web's slot pool) or, through with_engine, an Engine.
template <Backend B, class Fn>
decltype(auto) with_chat_weights(B& backend, const ChatModel& m, Fn&& fn) {
  return with_checkpoint_config(
      m.file, CompiledDepths{},
      [&]<Config C>(const SafetensorsFile& f, std::int64_t vocab, std::int64_t seq_len) -> decltype(auto) {
        check_tokenizer_vocab(m.tok.vocab_size(), m.tokenizer_dir, f, vocab);
        const auto run = [&]<class W>() -> decltype(auto) {
          GptWeights<C, B, W> weights(backend, vocab);
          load_weights(backend, weights, f);
          return fn.template operator()<C, W>(std::as_const(weights), seq_len);
        };
        return m.bf16_weights ? run.template operator()<bf16>() : run.template operator()<float>();
      });
}

// Calls fn(engine, context) with an Engine over a decoder of `rows` rows and `positions` positions
// of context (its memory follows the positions in use).
template <Config C, Backend B, class W, class Fn>
decltype(auto) with_engine(B& backend, const GptWeights<C, B, W>& weights, const tokenizer::Tokenizer& tok,
                           std::int64_t rows, std::int64_t positions, Fn&& fn) {
  GptDecoder<C, B, W> decoder(backend, weights, rows, positions);
  Engine engine(decoder, tok);
  return fn(engine, decoder.max_positions());
}

// Calls fn.template operator()<C, W>(engine, context) with an Engine over a decoder of `rows` rows
// whose context is nanochat's rotary table, 10 x sequence_len positions.
template <Backend B, class Fn>
decltype(auto) with_chat_engine(B& backend, const ChatModel& m, std::int64_t rows, Fn&& fn) {
  return with_chat_weights(backend, m, [&]<Config C, class W>(const GptWeights<C, B, W>& weights,
                                                              std::int64_t seq_len) -> decltype(auto) {
    return with_engine(backend, weights, m.tok, rows, 10 * seq_len,
                       [&](auto& engine, std::int64_t context) -> decltype(auto) {
                         return fn.template operator()<C, W>(engine, context);
                       });
  });
}

}  // namespace nanochat::engine
