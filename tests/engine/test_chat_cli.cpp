// Finding checkpoints (complete ones only, stray names skipped, tags that stay put) and opening
// them; chat_cli (non-interactive, -p) and base_eval end to end: a tiny checkpoint and a
// byte-level tokenizer are written to a temporary directory, then the program answers one prompt
// or evaluates; checkpoints and flags it cannot take are refused with errors that name the problem.

#include <doctest/doctest.h>

#include "run_program.hpp"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "engine_test_util.hpp"
#include "nanochat/backend/cpu.hpp"
#include "nanochat/core/presets.hpp"
#include "nanochat/core/read_file.hpp"
#include "nanochat/engine/checkpoint.hpp"
#include "nanochat/eval/core_eval.hpp"
#include "nanochat/model/weights_file.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"
#include "nanochat/train/report_section.hpp"

using namespace nanochat;
using nanochat::cpu::Cpu;
namespace fs = std::filesystem;

namespace {

#ifdef NANOCHAT_CHAT_CLI  // the program is built only with the examples
using nanochat::testing::Run;
using nanochat::testing::run;
#endif

fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("nanochat_engine_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write_metadata_only(const fs::path& path, std::map<std::string, std::string> metadata) {
  const float one = 1.0f;
  const std::vector<TensorToSave> tensors{TensorToSave{"transformer.wte.weight", DType::f32, Shape{1}, &one}};
  save_safetensors(path, tensors, metadata);
}

// The meta file that makes a step's checkpoint complete (its contents are base_train's business).
void write_meta(const fs::path& dir, std::int64_t step) {
  std::ofstream(dir / step_file_name("meta_", step, ".json")) << "{\"step\": " << step << "}\n";
}

}  // namespace

TEST_CASE("checkpoints: found by source/tag/step among complete ones and a tag is one plain name") {
  const fs::path dir = temp_dir("ckpt");
  CHECK_THROWS_WITH_AS(engine::find_checkpoint(dir, "sft", "", -1), doctest::Contains("chatsft_checkpoints"), Error);
  CHECK_THROWS_WITH_AS(engine::find_checkpoint(dir, "nope", "", -1), doctest::Contains("unknown"), Error);
  const fs::path base = dir / "base_checkpoints";
  fs::create_directories(base / "d4");
  fs::create_directories(base / "d12");
  write_metadata_only(base / "d12" / "model_000010.safetensors", {{"n_layer", "12"}});
  write_meta(base / "d12", 10);
  write_metadata_only(base / "d12" / "model_000200.safetensors", {{"n_layer", "12"}});
  write_meta(base / "d12", 200);
  CHECK(engine::find_checkpoint(dir, "base", "", -1) == base / "d12" / "model_000200.safetensors");
  CHECK(engine::find_checkpoint(dir, "base", "d12", 10) == base / "d12" / "model_000010.safetensors");
  CHECK_THROWS_WITH_AS(engine::find_checkpoint(dir, "base", "d4", -1), doctest::Contains("no complete checkpoint"), Error);
  CHECK_THROWS_WITH_AS(engine::find_checkpoint(dir, "base", "d12", 5), doctest::Contains("does not exist"), Error);
  // A step whose meta file is missing (a save that stopped half-way) is not taken.
  write_metadata_only(base / "d12" / "model_000300.safetensors", {{"n_layer", "12"}});
  CHECK(engine::find_checkpoint(dir, "base", "", -1) == base / "d12" / "model_000200.safetensors");
  CHECK_THROWS_WITH_AS(engine::find_checkpoint(dir, "base", "d12", 300), doctest::Contains("meta_000300.json is missing"),
                       Error);
  // A tag is one plain directory name: nothing outside the checkpoints directory is reached.
  for (const char* tag : {"../../x", "..", ".", "d12/../d4", "/tmp", "a\\b", "d4\n"}) {
    CAPTURE(tag);
    CHECK_THROWS_WITH_AS(engine::find_checkpoint(dir, "base", tag, -1), doctest::Contains("--model-tag"), Error);
  }
  fs::remove_all(dir);
}

TEST_CASE("checkpoints: stray entries are skipped and the deepest tag with a complete checkpoint is the default") {
  const fs::path dir = temp_dir("stray");
  const fs::path base = dir / "base_checkpoints";
  fs::create_directories(base / "d4");
  write_metadata_only(base / "d4" / "model_000050.safetensors", {{"n_layer", "4"}});
  write_meta(base / "d4", 50);
  // What a refused run, a copy or a typo leaves behind; none of it may hide d4 or throw.
  fs::create_directories(base / "d20");             // an empty directory of a refused run
  fs::create_directories(base / "d26");             // a run that stopped before its first meta
  write_metadata_only(base / "d26" / "model_000001.safetensors", {{"n_layer", "26"}});
  fs::create_directories(base / "d99999999999");    // a depth that fits no int
  write_meta(base / "d99999999999", 1);
  write_metadata_only(base / "d99999999999" / "model_000001.safetensors", {{"n_layer", "4"}});
  fs::create_directories(base / "d0x");
  write_metadata_only(base / "d32", {{"n_layer", "32"}});  // a file, not a directory
  for (const char* name : {"model_99999999999999999999.safetensors", "meta_99999999999999999999.json",
                           "meta_abcdef.json", "model_abcdef.safetensors", "model_.safetensors", "model_0000050.safetensors",
                           "model_-00001.safetensors"})
    write_metadata_only(base / "d4" / name, {{"n_layer", "4"}});
  CHECK(engine::find_checkpoint(dir, "base", "", -1) == base / "d4" / "model_000050.safetensors");
  CHECK(latest_complete_step(base / "d4") == 50);
  CHECK(latest_complete_step(base / "d20") == -1);
  CHECK(latest_complete_step(dir / "missing") == -1);

  CHECK(parse_step_file_name("model_000050.safetensors", "model_", ".safetensors") == 50);
  CHECK(parse_step_file_name("model_1234567.safetensors", "model_", ".safetensors") == 1234567);
  CHECK(parse_step_file_name("meta_000007.json", "meta_", ".json") == 7);
  CHECK(step_file_name("meta_", 7, ".json") == "meta_000007.json");
  for (const char* name : {"model_99999999999999999999.safetensors", "model_abcdef.safetensors", "model_.safetensors",
                           "model_0000050.safetensors", "model_00050.safetensors", "model_-00001.safetensors",
                           "model_+00001.safetensors", "model_000050.safetensors.tmp", "optim_000050_rank0.safetensors"}) {
    CAPTURE(name);
    CHECK_FALSE(parse_step_file_name(name, "model_", ".safetensors").has_value());
  }
  CHECK(engine::tag_depth("d12") == 12);
  CHECK_FALSE(engine::tag_depth("d99999999999").has_value());
  CHECK_FALSE(engine::tag_depth("d012").has_value());
  CHECK_FALSE(engine::tag_depth("d-4").has_value());
  CHECK_FALSE(engine::tag_depth("d4x").has_value());
  CHECK_FALSE(engine::tag_depth("big").has_value());

  fs::remove_all(base / "d4");
  CHECK_THROWS_WITH_AS(engine::find_checkpoint(dir, "base", "", -1), doctest::Contains("holds a complete checkpoint"),
                       Error);
  fs::remove_all(dir);
}

TEST_CASE("checkpoints: refused when no compiled Config matches") {
  const fs::path dir = temp_dir("config");
  using Depths = DepthList<4, 8>;
  const auto noop = []<Config C>(const SafetensorsFile&, std::int64_t, std::int64_t) { return C::depth; };
  CHECK_THROWS_WITH_AS(SafetensorsFile::load(dir / "missing.safetensors"), doctest::Contains("missing.safetensors"), Error);
  const fs::path d5 = dir / "d5.safetensors";
  write_metadata_only(d5, {{"n_layer", "5"}, {"vocab_size", "265"}, {"sequence_len", "64"}});
  CHECK_THROWS_WITH_AS(engine::with_checkpoint_config(SafetensorsFile::load(d5), Depths{}, noop),
                       doctest::Contains("n_layer 5 matches no model compiled into this program; compiled depths: 4, 8"),
                       Error);
  const fs::path wide = dir / "wide.safetensors";
  write_metadata_only(wide, {{"n_layer", "4"}, {"n_embd", "512"}, {"vocab_size", "265"}, {"sequence_len", "64"}});
  CHECK_THROWS_WITH_AS(engine::with_checkpoint_config(SafetensorsFile::load(wide), Depths{}, noop),
                       doctest::Contains("n_embd is 512 but the model"), Error);
  const fs::path ok = dir / "ok.safetensors";
  write_metadata_only(ok, {{"n_layer", "8"}, {"vocab_size", "265"}, {"sequence_len", "64"}});
  CHECK(engine::with_checkpoint_config(SafetensorsFile::load(ok), Depths{}, noop) == 8);
  engine::check_tokenizer_vocab(265, dir / "tokenizer", SafetensorsFile::load(ok), 265);
  CHECK_THROWS_WITH_AS(engine::check_tokenizer_vocab(4096, dir / "tokenizer", SafetensorsFile::load(ok), 265),
                       doctest::Contains("tokenizer\" has 4096 tokens but"), Error);
  const fs::path junk = dir / "junk.safetensors";
  write_metadata_only(junk, {{"n_layer", "8"}, {"vocab_size", "265"}, {"sequence_len", "64junk"}});
  CHECK_THROWS_WITH_AS(engine::with_checkpoint_config(SafetensorsFile::load(junk), Depths{}, noop),
                       doctest::Contains("metadata sequence_len is '64junk', not a non-negative integer"), Error);
  write_metadata_only(junk, {{"n_layer", "8"}, {"vocab_size", "-1"}, {"sequence_len", "64"}});
  CHECK_THROWS_WITH_AS(engine::with_checkpoint_config(SafetensorsFile::load(junk), Depths{}, noop),
                       doctest::Contains("metadata vocab_size is '-1', not a non-negative integer"), Error);
  write_metadata_only(junk, {{"n_layer", "8"}, {"vocab_size", "265"}, {"sequence_len", "0"}});
  CHECK_THROWS_WITH_AS(engine::with_checkpoint_config(SafetensorsFile::load(junk), Depths{}, noop),
                       doctest::Contains("vocab_size 265 and sequence_len 0 must be positive"), Error);
  write_metadata_only(junk, {{"n_layer", "8"}, {"vocab_size", "265"}, {"sequence_len", "99999999999"}});
  CHECK_THROWS_WITH_AS(engine::with_checkpoint_config(SafetensorsFile::load(junk), Depths{}, noop),
                       doctest::Contains("sequence_len 99999999999 is more than the 1048576 a checkpoint may have"),
                       Error);
  write_metadata_only(ok, {{"vocab_size", "265"}});
  CHECK_THROWS_WITH_AS(engine::with_checkpoint_config(SafetensorsFile::load(ok), Depths{}, noop),
                       doctest::Contains("no n_layer"), Error);
  fs::remove_all(dir);
}

#ifdef NANOCHAT_CHAT_CLI
TEST_CASE("chat_cli answers a one-shot prompt from a tiny checkpoint and refuses bad ones") {
  const fs::path dir = temp_dir("cli");
  Cpu cpu;
  tokenizer::save_tokenizer(engine_test::byte_tokenizer(), dir / "tokenizer");
  using C = NanochatConfig<4>;
  GptWeights<C, Cpu> w(cpu, engine_test::byte_vocab);
  cpu::fill_normal(cpu, w.flat(), 5, 0, 0.0f, 0.05f);
  save_weights(cpu, w, dir / "model.safetensors", 64);
  const std::string cli = std::string(NANOCHAT_CHAT_CLI) + " --tokenizer " + (dir / "tokenizer").string();

  const Run ok = run(cli + " --checkpoint " + (dir / "model.safetensors").string() + " -p 'Hello there' -t 0 --max-tokens 12");
  CAPTURE(ok.output);
  CHECK(ok.status == 0);
  // Greedy is deterministic: a second run prints the same reply.
  const Run again = run(cli + " --checkpoint " + (dir / "model.safetensors").string() + " -p 'Hello there' -t 0 --max-tokens 12");
  CHECK(again.output == ok.output);
  // The default is bf16 weights (nanochat's -d default); -d float32 keeps the file's fp32.
  const Run bf16 = run(cli + " --checkpoint " + (dir / "model.safetensors").string() +
                       " -p 'Hello there' -t 0 --max-tokens 12 -d bfloat16");
  CHECK(bf16.output == ok.output);
  const Run fp32 = run(cli + " --checkpoint " + (dir / "model.safetensors").string() +
                       " -p 'Hello there' -t 0 --max-tokens 12 --dtype float32");
  CAPTURE(fp32.output);
  CHECK(fp32.status == 0);
  const Run bad_dtype = run(cli + " --checkpoint " + (dir / "model.safetensors").string() + " -p hi -d float16");
  CHECK(bad_dtype.status != 0);
  CHECK(bad_dtype.output.find("--dtype float16 is unknown") != std::string::npos);

  const Run missing = run(cli + " --checkpoint " + (dir / "nope.safetensors").string() + " -p hi");
  CHECK(missing.status != 0);
  CHECK(missing.output.find("nope.safetensors") != std::string::npos);
  write_metadata_only(dir / "d5.safetensors", {{"n_layer", "5"}, {"vocab_size", "265"}, {"sequence_len", "64"}});
  const Run d5 = run(cli + " --checkpoint " + (dir / "d5.safetensors").string() + " -p hi");
  CAPTURE(d5.output);
  CHECK(d5.status != 0);
  CHECK(d5.output.find("compiled depths") != std::string::npos);
  const Run cuda = run(cli + " --checkpoint " + (dir / "model.safetensors").string() + " --device cuda -p hi");
  CHECK(cuda.status != 0);
  CHECK(cuda.output.find("cuda") != std::string::npos);
  const Run long_prompt = run(cli + " --checkpoint " + (dir / "model.safetensors").string() + " -p " +
                              std::string(700, 'a') + " -t 0");
  CHECK(long_prompt.status != 0);
  CHECK(long_prompt.output.find("context") != std::string::npos);
  fs::remove_all(dir);
}
#endif

#ifdef NANOCHAT_CHAT_CLI
TEST_CASE("chat_cli finds a d2 base checkpoint past stray entries and refuses a tag that climbs out and sizes "
          "memory from the conversation") {
  const fs::path dir = temp_dir("cli_found");
  Cpu cpu;
  tokenizer::save_tokenizer(engine_test::byte_tokenizer(), dir / "tokenizer");
  // d2 is the smallest depth base_train trains; every program that loads a model takes it too.
  using C = NanochatConfig<2>;
  GptWeights<C, Cpu> w(cpu, engine_test::byte_vocab);
  cpu::fill_normal(cpu, w.flat(), 7, 0, 0.0f, 0.05f);
  const fs::path base = dir / "base_checkpoints";
  fs::create_directories(base / "d2");
  // sequence_len 2^20: a context of 10M positions, whose rotary tables alone once took 10 GB.
  save_weights(cpu, w, base / "d2" / "model_000005.safetensors", std::int64_t{1} << 20);
  write_meta(base / "d2", 5);
  fs::create_directories(base / "d20");  // left by a refused run
  fs::create_directories(base / "d99999999999");
  write_metadata_only(base / "d2" / "model_99999999999999999999.safetensors", {{"n_layer", "2"}});
  write_metadata_only(base / "d2" / "meta_abcdef.json", {});
  const std::string cli = "NANOCHAT_BASE_DIR='" + dir.string() + "' " + NANOCHAT_CHAT_CLI + " --source base";

  // 8 GB of address space is far more than the d2 model needs and less than its 10M-position
  // rotary tables took (10.7 GB: cos and sin, on the backend and on the host while built).
  const Run ok = run("ulimit -v 8000000; " + cli + " -p 'Hello' -t 0 --max-tokens 3");
  CAPTURE(ok.output);
  CHECK(ok.status == 0);
  const Run tagged = run(cli + " --model-tag d2 --step 5 -p 'Hello' -t 0 --max-tokens 3");
  CHECK(tagged.status == 0);
  CHECK(tagged.output == ok.output);
  const Run climbing = run(cli + " --model-tag ../../x -p hi");
  CHECK(climbing.status != 0);
  CHECK(climbing.output.find("--model-tag '../../x' must be one plain directory name") != std::string::npos);
  const Run zero = run(cli + " -p hi --max-tokens 0");
  CHECK(zero.status != 0);
  CHECK(zero.output.find("flag --max-tokens: 0 is outside the allowed range") != std::string::npos);
  const Run nan = run(cli + " -p hi --temperature nan");
  CHECK(nan.status != 0);
  CHECK(nan.output.find("flag --temperature: 'nan' is not a finite number") != std::string::npos);
  fs::remove_all(dir);
}
#endif

#ifdef NANOCHAT_BASE_EVAL
TEST_CASE("base_eval evaluates the deepest complete checkpoint past stray entries and refuses bad flags") {
  const fs::path dir = temp_dir("base_eval");
  Cpu cpu;
  tokenizer::save_tokenizer(engine_test::byte_tokenizer(), dir / "tokenizer");
  fs::create_directories(dir / "data");
  for (int s = 0; s < 2; ++s) {  // a training shard and a validation shard
    std::ofstream shard(dir / "data" / ("shard_0000" + std::to_string(s) + ".txt"));
    for (int p = 0; p < 20; ++p) shard << "Paragraph " << p << " of shard " << s << ", some words to read.\n\n";
  }
  using C = NanochatConfig<2>;
  GptWeights<C, Cpu> w(cpu, engine_test::byte_vocab);
  cpu::fill_normal(cpu, w.flat(), 9, 0, 0.0f, 0.05f);
  const fs::path base = dir / "base_checkpoints";
  fs::create_directories(base / "d2");
  save_weights(cpu, w, base / "d2" / "model_000003.safetensors", 64);
  write_meta(base / "d2", 3);
  fs::create_directories(base / "d20");  // left by a refused run: it must not become the default
  fs::create_directories(base / "d99999999999");
  write_metadata_only(base / "d2" / "model_99999999999999999999.safetensors", {{"n_layer", "2"}});
  write_metadata_only(base / "d2" / "meta_abcdef.json", {});
  const std::string eval = "NANOCHAT_BASE_DIR='" + dir.string() + "' " + NANOCHAT_BASE_EVAL + " --data '" +
                           (dir / "data").string() + "' --interactive no --device-batch-size 2 --eval-tokens 128";

  const Run ok = run(eval + " --sample-tokens 4");
  CAPTURE(ok.output);
  CHECK(ok.status == 0);
  CHECK(ok.output.find("model: depth 2") != std::string::npos);
  CHECK(ok.output.find("step 3, " + (base / "d2" / "model_000003.safetensors").string()) != std::string::npos);
  CHECK(ok.output.find("val bpb: ") != std::string::npos);
  CHECK(ok.output.find("sample: The capital of France is") != std::string::npos);
  // Its report-card section, nanochat's base_loss: both splits' bpb and the samples.
  const report::Section loss = report::read_section(dir / "report" / "base-model-loss.md");
  CHECK(loss.title == "Base model loss");
  for (const char* key : {"train bpb", "val bpb"}) {
    CAPTURE(key);
    REQUIRE_FALSE(loss.metric(key).empty());
    CHECK(std::stod(loss.metric(key)) > 0.0);
  }
  CHECK(ok.output.find("val bpb: " + loss.metric("val bpb")) != std::string::npos);
  CHECK(loss.metric("sample 0").starts_with("The capital of France is"));
  const Run climbing = run(eval + " --model-tag ../../x");
  CHECK(climbing.status != 0);
  CHECK(climbing.output.find("--model-tag '../../x' must be one plain directory name") != std::string::npos);
  const Run huge_batch = run(eval + " --device-batch-size 4611686018427387904");
  CHECK(huge_batch.status != 0);
  CHECK(huge_batch.output.find("flag --device-batch-size: 4611686018427387904 is outside the allowed range") !=
        std::string::npos);
  fs::remove_all(dir);
}
TEST_CASE("base_eval --core evaluates CORE on the eval bundle, prints each task and writes nanochat's CSV") {
  const fs::path dir = temp_dir("base_eval_core");
  Cpu cpu;
  const tokenizer::Tokenizer tok(
      tokenizer::parse_ranks(read_file(fs::path(NANOCHAT_FIXTURES) / "tokenizer/ranks_2048.tiktoken"), "fixture"),
      {tokenizer::kSpecialTokens.begin(), tokenizer::kSpecialTokens.end()});
  tokenizer::save_tokenizer(tok, dir / "tokenizer");
  using C = NanochatConfig<2>;
  const auto vocab = static_cast<std::int64_t>(tok.vocab_size());
  GptWeights<C, Cpu> w(cpu, vocab);
  cpu::fill_normal(cpu, w.flat(), 11, 0, 0.0f, 0.2f);
  const fs::path checkpoint = dir / "base_checkpoints" / "d2" / "model_000003.safetensors";
  fs::create_directories(checkpoint.parent_path());
  save_weights(cpu, w, checkpoint, 64);
  write_meta(checkpoint.parent_path(), 3);
  fs::copy(fs::path(NANOCHAT_FIXTURES) / "eval" / "bundle", dir / "eval_bundle", fs::copy_options::recursive);
  const std::string eval = "NANOCHAT_BASE_DIR='" + dir.string() + "' " + NANOCHAT_BASE_EVAL + " --core --core-max-per-task 5";

  const Run ok = run(eval);
  CAPTURE(ok.output);
  CHECK(ok.status == 0);
  CHECK(ok.output.find("Evaluating: mc_task (2-shot, type: multiple_choice)... accuracy: ") != std::string::npos);
  CHECK(ok.output.find("Evaluating: schema_task (1-shot, type: schema)... accuracy: ") != std::string::npos);
  CHECK(ok.output.find("Evaluating: lm_task (3-shot, type: language_modeling)... accuracy: ") != std::string::npos);
  CHECK(ok.output.find("Model: base_model (step 3)") != std::string::npos);
  CHECK(ok.output.find("cropped") == std::string::npos);  // planned for the longest row
  const fs::path csv = dir / "base_eval" / "base_model_000003.csv";
  REQUIRE(fs::exists(csv));
  CHECK_FALSE(fs::exists(csv.string() + ".tmp"));
  const std::string table = read_file(csv);
  CHECK(ok.output.find(table) != std::string::npos);
  // The program's table is the library's on the same checkpoint, first 5 examples of each task.
  const eval::CoreBundle bundle = eval::load_core_bundle(dir / "eval_bundle");
  const eval::CoreShape shape = eval::core_shape(tok, bundle, 5);
  Gpt<C, Cpu> model(cpu, vocab, static_cast<std::int64_t>(shape.rows), static_cast<std::int64_t>(shape.longest));
  load_weights(cpu, model.weights(), SafetensorsFile::load(checkpoint));
  const eval::CoreResult expected = eval::evaluate_core(cpu, model, tok, bundle, 5);
  CHECK(table == eval::core_results_csv(expected));
  // Its report-card section: the CORE metric and each task's centered accuracy, 4 decimals.
  const report::Section section = report::read_section(dir / "report" / "base-model-evaluation.md");
  CHECK(section.title == "Base model evaluation");
  CHECK(section.metric("Model") == "base_model (step 3)");
  const auto four = [](double v) { char text[32]; std::snprintf(text, sizeof text, "%.4f", v); return std::string(text); };
  CHECK(section.metric("CORE") == four(expected.core));
  REQUIRE(expected.tasks.size() == 3);
  for (const auto& task : expected.tasks) CHECK(section.metric(task.label) == four(task.centered));

  const Run missing = run(eval + " --core-bundle '" + (dir / "nowhere").string() + "'");
  CHECK(missing.status != 0);
  CHECK(missing.output.find("CORE: no eval bundle at " + (dir / "nowhere").string()) != std::string::npos);
  CHECK(missing.output.find("eval_bundle.zip") != std::string::npos);
  const Run negative = run(eval + " --core-max-per-task -2");
  CHECK(negative.status != 0);
  CHECK(negative.output.find("--core-max-per-task") != std::string::npos);
  fs::remove_all(dir);
}
#endif
