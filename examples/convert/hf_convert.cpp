// hf_convert: our checkpoints to and from the Hugging Face format that transformers'
// NanoChatForCausalLM loads (and mlx-lm and others that follow it).
//   hf_convert export [--checkpoint FILE | --source/--model-tag/--step] [--tokenizer DIR] --out DIR
//     writes DIR/config.json, generation_config.json, model.safetensors (fp32, or bf16 with
//     --dtype bfloat16; transformers' names),
//     tokenizer.json and tokenizer_config.json (with the chat template).
//   hf_convert import --hf DIR [--checkpoint FILE | --source/--model-tag/--step] [--tokenizer DIR]
//     writes our weights file and tokenizer directory from such a directory; under --source, a
//     complete checkpoint step (model_S with its meta_S, one save id) that chat_cli finds.
// Both replace existing files only with --force.
// What one side cannot represent is refused with the field that says so (docs/model.md).

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "nanochat/core/atomic_file.hpp"
#include "nanochat/core/flags.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/core/limits.hpp"
#include "nanochat/core/step_names.hpp"
#include "nanochat/data/paths.hpp"
#include "nanochat/engine/checkpoint.hpp"
#include "nanochat/model/hf_checkpoint.hpp"
#include "nanochat/tokenizer/hf_tokenizer.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"

using namespace nanochat;
namespace fs = std::filesystem;

namespace {

struct Options {
  std::string checkpoint, source = "sft", model_tag, tokenizer, out, hf, dtype = "float32";
  std::int64_t step = -1;
  bool force = false, allow_norm_eps = false;
};

fs::path tokenizer_dir(const Options& opt) {
  return opt.tokenizer.empty() ? data::base_dir() / "tokenizer" : fs::path(opt.tokenizer);
}

int run_export(const Options& opt) {
  NANOCHAT_CHECK(!opt.out.empty(), "export needs --out DIR (the Hugging Face model directory to write)");
  NANOCHAT_CHECK(opt.dtype == "float32" || opt.dtype == "bfloat16", "--dtype is '", opt.dtype,
                 "'; use float32 or bfloat16");
  const DType dtype = opt.dtype == "bfloat16" ? DType::bf16 : DType::f32;
  const fs::path path = !opt.checkpoint.empty() ? fs::path(opt.checkpoint)
                                                : engine::find_checkpoint(data::base_dir(), opt.source, opt.model_tag, opt.step);
  const fs::path tok_dir = tokenizer_dir(opt);
  const SafetensorsFile ours = SafetensorsFile::load(path);
  const ModelShape shape = model_shape_of(ours);
  const tokenizer::Tokenizer tok = tokenizer::load_tokenizer(tok_dir);
  engine::check_tokenizer_vocab(tok.vocab_size(), tok_dir, ours, shape.vocab_size);
  tokenizer::check_nanochat_specials(tok, tok_dir.string());
  const fs::path out = opt.out;
  // --out may be any directory, ours too (our tokenizer directory has a tokenizer.json).
  std::error_code ec;
  for (const char* name : {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json",
                           "tokenizer_config.json"})
    NANOCHAT_CHECK(opt.force || !fs::exists(out / name, ec), (out / name).string(), " exists; --force replaces it");
  const auto bos = static_cast<std::int64_t>(tok.bos_id());
  const auto eos = static_cast<std::int64_t>(tok.encode_special("<|assistant_end|>"));
  export_hf_weights(ours, shape, out / "model.safetensors", dtype);
  write_file_atomically(out / "config.json", hf_config_json(shape, bos, eos, dtype));
  // nanochat's engine stops at <|assistant_end|> and at <|bos|>.
  write_file_atomically(out / "generation_config.json",
                        cat("{\n  \"bos_token_id\": ", bos, ",\n  \"eos_token_id\": [", eos, ", ", bos,
                            "],\n  \"pad_token_id\": ", eos, "\n}\n"));
  write_file_atomically(out / "tokenizer.json", tokenizer::hf_tokenizer_json(tok));
  write_file_atomically(out / "tokenizer_config.json", tokenizer::hf_tokenizer_config_json(shape.sequence_len));
  std::cout << "exported " << path.string() << " (" << shape.n_layer << " layers, vocab " << shape.vocab_size
            << ") and " << tok_dir.string() << " to " << out.string() << "\n";
  return 0;
}

// Whether dir already holds exactly this tokenizer (importing a model of a family we have).
bool holds_tokenizer(const fs::path& dir, const tokenizer::Tokenizer& tok) {
  std::error_code ec;
  if (!fs::exists(dir / tokenizer::kRanksFileName, ec) && !fs::exists(dir / tokenizer::kConfigFileName, ec)) return false;
  try {
    const tokenizer::Tokenizer there = tokenizer::load_tokenizer(dir);
    return there.encoder().tokens() == tok.encoder().tokens() && there.special_tokens() == tok.special_tokens();
  } catch (const Error&) {
    return false;
  }
}

int run_import(const Options& opt) {
  NANOCHAT_CHECK(!opt.hf.empty(), "import needs --hf DIR (the Hugging Face model directory to read)");
  const fs::path dir = opt.hf;
  const fs::path config_path = dir / "config.json";
  const json::Value config = json::parse(read_file(config_path), config_path.string());
  const ModelShape shape = model_shape_from_hf_config(config, config_path.string(), {opt.allow_norm_eps});
  const json::Value* tie = config.find("tie_word_embeddings");
  const bool tied = tie != nullptr && std::holds_alternative<bool>(tie->data) && std::get<bool>(tie->data);

  const fs::path tok_json = dir / "tokenizer.json";
  const tokenizer::HfTokenizerImport imported = tokenizer::tokenizer_from_hf_json(read_file(tok_json), tok_json.string());
  const tokenizer::Tokenizer& tok = imported.tokenizer;
  tokenizer::check_nanochat_specials(tok, tok_json.string());
  NANOCHAT_CHECK(static_cast<std::int64_t>(tok.vocab_size()) == shape.vocab_size, tok_json.string(), " has ",
                 tok.vocab_size(), " tokens but ", config_path.string(), " has vocab_size ", shape.vocab_size);
  if (imported.missing_merges > 0)
    std::cerr << "hf_convert: note: " << tok_json.string() << " lacks " << imported.missing_merges
              << " of the merges that tiktoken's rule implies; transformers may split some text differently from "
                 "the imported ranks (ours follow the ranks)\n";

  // Under --source: one step of a checkpoint directory, whose meta file makes it complete.
  const bool checkpoint_step = opt.checkpoint.empty();
  fs::path out = opt.checkpoint, meta, optim;
  if (checkpoint_step) {
    const std::string tag = opt.model_tag.empty() ? cat("d", shape.n_layer) : opt.model_tag;
    const fs::path ckpt_dir = data::base_dir() / engine::checkpoint_dir_name(opt.source) /
                              data::check_path_component(tag, "--model-tag");
    out = ckpt_dir / step_file_name("model_", opt.step, ".safetensors");
    meta = ckpt_dir / step_file_name("meta_", opt.step, ".json");
    optim = ckpt_dir / step_file_name("optim_", opt.step, "_rank0.safetensors");
  }
  const fs::path tok_dir = tokenizer_dir(opt);
  std::error_code ec;
  const bool same_tokenizer = holds_tokenizer(tok_dir, tok);
  if (!opt.force) {
    NANOCHAT_CHECK(!fs::exists(out, ec), out.string(), " exists; --force replaces it");
    NANOCHAT_CHECK(!checkpoint_step || !fs::exists(meta, ec), meta.string(), " exists; --force replaces it");
    NANOCHAT_CHECK(same_tokenizer || (!fs::exists(tok_dir / tokenizer::kRanksFileName, ec) &&
                                      !fs::exists(tok_dir / tokenizer::kConfigFileName, ec)),
                   tok_dir.string(), " holds a different tokenizer; --force replaces it (or name another with --tokenizer)");
  }
  if (checkpoint_step) {
    // As train's save_checkpoint: the step's old files go first (no mix of two saves remains), the
    // meta file comes last, and one save id ties it to the weights.
    const std::string save_id = new_save_id();
    import_hf_weights(dir, shape, tied, out, {{"save_id", save_id}}, {meta, optim});
    std::string model_config;
    for (const auto& [key, value] : model_config_metadata(shape))
      model_config += cat(model_config.empty() ? "" : ", ", json::quote(key), ": ", value);
    write_file_atomically(meta, cat("{\n  \"step\": ", opt.step, ",\n  \"save_id\": ", json::quote(save_id),
                                    ",\n  \"model_config\": {", model_config, "}\n}\n"));
  } else {
    import_hf_weights(dir, shape, tied, out);
  }
  if (!same_tokenizer) tokenizer::save_tokenizer(tok, tok_dir);
  std::cout << "imported " << dir.string() << " (" << shape.n_layer << " layers, vocab " << shape.vocab_size
            << ") to " << out.string() << " and " << tok_dir.string() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string usage = "usage: hf_convert export|import [flags]  (hf_convert export --help for the flags)";
  if (argc < 2 || (std::string_view(argv[1]) != "export" && std::string_view(argv[1]) != "import")) {
    std::cerr << usage << "\n";
    return 2;
  }
  const bool exporting = std::string_view(argv[1]) == "export";
  Options opt;
  if (!exporting) opt.step = 0;  // a file written from an HF directory has no training step to take
  Flags flags(cat("hf_convert ", argv[1]),
              exporting ? "Write a checkpoint and its tokenizer as a Hugging Face model directory (NanoChatForCausalLM)."
                        : "Read a Hugging Face NanoChat model directory into our weights file and tokenizer.");
  flags.add("checkpoint", opt.checkpoint,
            exporting ? "weights file to export; else found from --source/--model-tag/--step"
                      : "weights file to write; else <base>/<source>/<model-tag or d<layers>>/model_<step>.safetensors")
      .add("source", opt.source, "checkpoint source: base, mid, sft or rl", 'i')
      .add("model-tag", opt.model_tag, exporting ? "checkpoint tag (default: the largest d<N>)" : "checkpoint tag (default: d<layers>)", 'g')
      .add("step", opt.step, exporting ? "checkpoint step (default: the last)" : "step in the written file's name",
           {exporting ? -1 : 0, max_count}, 's')
      .add("tokenizer", opt.tokenizer, "our tokenizer directory (default: <base>/tokenizer)");
  if (exporting) {
    flags.add("out", opt.out, "Hugging Face model directory to write", 'o')
        .add("dtype", opt.dtype, "weights: float32 (as our checkpoints hold them) or bfloat16 (half the bytes, rounded)", 'd')
        .add("force", opt.force, "replace existing files in --out");
  } else {
    flags.add("hf", opt.hf, "Hugging Face model directory to read")
        .add("force", opt.force, "replace existing weights and tokenizer files")
        .add("allow-norm-eps", opt.allow_norm_eps,
             "import a model whose rms_norm_eps is not nanochat's (it then runs with nanochat's epsilon)");
  }
  try {
    if (!flags.parse(argc - 1, argv + 1)) return 0;
    return exporting ? run_export(opt) : run_import(opt);
  } catch (const std::exception& e) {
    std::cerr << "hf_convert " << argv[1] << ": " << e.what() << "\n";
    return 1;
  }
}
