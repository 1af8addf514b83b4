// The Hugging Face format without Python: export then import gives our weights back bit for bit
// and our tokenizer back rank for rank; what either side cannot represent is refused, named.
// (tests/reference/hf_reference.py checks the same files against transformers itself.)

#include <doctest/doctest.h>

#include "run_program.hpp"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

#include "nanochat/engine/checkpoint.hpp"
#include "nanochat/model/hf_checkpoint.hpp"
#include "nanochat/tokenizer/hf_tokenizer.hpp"
#include "nanochat/tokenizer/tokenizer_file.hpp"

using namespace nanochat;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() / ("nanochat_hf_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path operator/(const std::string& name) const { return path / name; }
};

const ModelShape kShape{2, 4, 2, 32, 40, 16};  // GQA: 4 heads share 2 KV heads

// Our weights file of `shape` with random values (and, when given, other tensors too).
std::vector<std::vector<float>> write_ours(const fs::path& path, const ModelShape& shape,
                                           const std::vector<TensorToSave>& extra = {}) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<std::vector<float>> values;
  std::vector<TensorToSave> tensors;
  const auto names = hf_tensor_names(shape);
  values.reserve(names.size());
  for (const HfTensorName& n : names) {
    auto& v = values.emplace_back(static_cast<std::size_t>(n.shape.numel()));
    for (float& x : v) x = normal(rng);
    tensors.push_back({n.ours, DType::f32, n.shape, v.data()});
  }
  tensors.insert(tensors.end(), extra.begin(), extra.end());
  save_safetensors(path, tensors, model_config_metadata(shape));
  return values;
}

json::Value config_with(const ModelShape& shape, const std::string& field, const std::string& value) {
  std::string text = hf_config_json(shape, 1, 2);
  const std::string key = "\"" + field + "\": ";
  const std::size_t at = text.find(key);
  if (at == std::string::npos) {
    text.insert(2, key + value + ",\n  ");
  } else {
    std::size_t end = text.find('\n', at);  // one field per line; keep its comma
    if (text[end - 1] == ',') --end;
    text.replace(at + key.size(), end - at - key.size(), value);
  }
  return json::parse(text, "config.json");
}

json::Value config_without(const ModelShape& shape, std::initializer_list<std::string> fields) {
  std::string text = hf_config_json(shape, 1, 2);
  for (const std::string& field : fields) {
    const std::size_t at = text.find("  \"" + field + "\"");
    REQUIRE(at != std::string::npos);
    text.erase(at, text.find('\n', at) + 1 - at);
  }
  return json::parse(text, "config.json");
}

tokenizer::Tokenizer fixture_tokenizer() {
  return tokenizer::load_tokenizer(fs::path(NANOCHAT_FIXTURES) / "tokenizer" / "converted_2048");
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("HF export then import gives our weights back bit for bit, under nanochat's names and order") {
  TempDir dir;
  const auto values = write_ours(dir / "ours.safetensors", kShape);
  const auto ours = SafetensorsFile::load(dir / "ours.safetensors");
  CHECK(model_shape_of(ours).n_kv_head == 2);
  fs::create_directories(dir / "hf");
  export_hf_weights(ours, kShape, dir / "hf" / "model.safetensors");

  const auto hf = SafetensorsFile::load(dir / "hf" / "model.safetensors");
  CHECK(hf.metadata().at("format") == "pt");
  CHECK(hf.at("model.layers.1.self_attn.k_proj.weight").shape == Shape{16, 32});
  CHECK(hf.at("model.layers.0.mlp.fc2.weight").shape == Shape{32, 128});
  CHECK(hf.contains("model.embed_tokens.weight"));
  CHECK(hf.tensors().size() == values.size());

  const ModelShape back = model_shape_from_hf_config(json::parse(hf_config_json(kShape, 1, 2), "config.json"), "config.json");
  CHECK(model_config_metadata(back) == model_config_metadata(kShape));
  import_hf_weights(dir / "hf", back, false, dir / "back.safetensors");
  const auto imported = SafetensorsFile::load(dir / "back.safetensors");
  CHECK(imported.metadata() == model_config_metadata(kShape));
  const auto names = hf_tensor_names(kShape);
  REQUIRE(imported.tensors().size() == names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    CAPTURE(names[i].ours);
    CHECK(imported.tensors()[i].name == names[i].ours);
    const auto got = imported.values<float>(names[i].ours);
    CHECK(std::memcmp(got.data(), values[i].data(), values[i].size() * sizeof(float)) == 0);
  }
}

TEST_CASE("HF export in bf16 rounds each value to nearest even, and import widens it back exactly") {
  TempDir dir;
  const auto values = write_ours(dir / "ours.safetensors", kShape);
  fs::create_directories(dir / "hf");
  export_hf_weights(SafetensorsFile::load(dir / "ours.safetensors"), kShape, dir / "hf" / "model.safetensors", DType::bf16);
  const auto hf = SafetensorsFile::load(dir / "hf" / "model.safetensors");
  CHECK(hf.at("model.layers.0.self_attn.q_proj.weight").dtype == DType::bf16);
  import_hf_weights(dir / "hf", kShape, false, dir / "back.safetensors");
  const auto back = SafetensorsFile::load(dir / "back.safetensors");
  const auto names = hf_tensor_names(kShape);
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto got = back.values<float>(names[i].ours);
    bool exact = true;
    for (std::size_t k = 0; k < got.size(); ++k) exact = exact && got[k] == round_to_bf16(values[i][k]);
    CHECK_MESSAGE(exact, names[i].ours);
  }
  // A bf16 checkpoint of ours exports as f32 exactly.
  std::vector<TensorToSave> ours_bf16;
  for (const HfTensorName& n : names) ours_bf16.push_back({n.ours, DType::bf16, n.shape, hf.values<bf16>(n.hf).data()});
  save_safetensors(dir / "ours_bf16.safetensors", ours_bf16, model_config_metadata(kShape));
  export_hf_weights(SafetensorsFile::load(dir / "ours_bf16.safetensors"), kShape, dir / "f32.safetensors");
  const auto f32 = SafetensorsFile::load(dir / "f32.safetensors");
  for (const HfTensorName& n : names)
    CHECK(std::ranges::equal(f32.values<float>(n.hf), back.values<float>(n.ours)));
  CHECK(json::parse(hf_config_json(kShape, 1, 2, DType::bf16), "c").find("dtype")->string("dtype") == "bfloat16");
}

TEST_CASE("HF config.json carries what makes transformers' model ours") {
  const json::Value config = json::parse(hf_config_json(kShape, 7, 9), "config.json");
  CHECK(config.find("rms_norm_eps")->number("eps") == static_cast<double>(std::numeric_limits<float>::epsilon()));
  CHECK(config.find("final_logit_softcapping")->number("cap") == 15.0);
  CHECK(config.find("hidden_act")->string("act") == "relu2");
  CHECK(config.find("intermediate_size")->whole_number("mlp") == 128);
  CHECK(config.find("num_key_value_heads")->whole_number("kv") == 2);
  CHECK(config.find("max_position_embeddings")->whole_number("seq") == 16);
  CHECK(config.find("bos_token_id")->whole_number("bos") == 7);
  CHECK(config.find("eos_token_id")->whole_number("eos") == 9);
  CHECK(config.find("pad_token_id")->is_null());  // else transformers freezes that embedding row
  // Typed fields: a float written as 15 would be an int to transformers' strict config.
  CHECK(hf_config_json(kShape, 7, 9).find("\"final_logit_softcapping\": 15.0,") != std::string::npos);
  CHECK(hf_config_json(kShape, 7, 9).find("\"rope_theta\": 10000.0}") != std::string::npos);
}

TEST_CASE("HF import refuses a config.json our model cannot be, naming the field") {
  const auto refused = [](const json::Value& config, const std::string& words) {
    CAPTURE(words);
    CHECK_THROWS_WITH(model_shape_from_hf_config(config, "config.json"), doctest::Contains(words.c_str()));
  };
  refused(config_without(kShape, {"num_hidden_layers"}), "config.json: has no num_hidden_layers");
  refused(config_with(kShape, "model_type", "\"llama\""), "model_type must be \"nanochat\"");
  refused(config_with(kShape, "hidden_act", "\"silu\""), "hidden_act is silu");
  refused(config_with(kShape, "attention_bias", "true"), "attention_bias must be false");
  refused(config_with(kShape, "mlp_bias", "true"), "mlp_bias must be false");
  refused(config_with(kShape, "final_logit_softcapping", "null"), "final_logit_softcapping must be 15");
  refused(config_with(kShape, "final_logit_softcapping", "30.0"), "final_logit_softcapping must be 15");
  refused(config_with(kShape, "rope_parameters", "{\"rope_type\": \"default\", \"rope_theta\": 500000.0}"),
          "rope_theta is 500000");
  refused(config_with(kShape, "rope_parameters", "{\"rope_type\": \"linear\", \"factor\": 2.0}"), "rope_type is linear");
  refused(config_with(kShape, "intermediate_size", "100"), "intermediate_size is 100");
  refused(config_with(kShape, "head_dim", "16"), "head_dim must be hidden_size / num_attention_heads = 8");
  refused(config_with(kShape, "num_key_value_heads", "3"), "4 heads are not a multiple of 3 KV heads");
  refused(config_with(kShape, "hidden_size", "30"), "width 30 does not divide into 4 heads");
  refused(config_with(kShape, "num_hidden_layers", "-1"), "num_hidden_layers is -1");

  // transformers' default eps (1e-6, which hub conversions carry) only with the option.
  const json::Value hub_eps = config_with(kShape, "rms_norm_eps", "1e-06");
  refused(hub_eps, "rms_norm_eps is 1e-06 but nanochat's is 1.1920928955078125e-07");
  CHECK(model_shape_from_hf_config(hub_eps, "config.json", {.allow_norm_eps = true}).n_layer == 2);
  // Fields left to transformers' defaults are nanochat's: GQA off, relu2, softcap 15, theta 10000.
  CHECK(model_shape_from_hf_config(config_without(kShape, {"hidden_act", "final_logit_softcapping", "rope_parameters",
                                                           "intermediate_size", "attention_bias"}),
                                   "config.json")
            .n_kv_head == 2);
  CHECK(model_shape_from_hf_config(config_without(kShape, {"num_key_value_heads"}), "config.json").n_kv_head == 4);
}

TEST_CASE("HF config.json and our model_config are bounded before any size is built from them") {
  const auto refused = [](const json::Value& config, const std::string& words) {
    CAPTURE(words);
    CHECK_THROWS_WITH(model_shape_from_hf_config(config, "config.json"), doctest::Contains(words.c_str()));
  };
  // 6 names per layer would be built for each of these layers.
  refused(config_with(kShape, "num_hidden_layers", "1e15"), "config.json: n_layer 1000000000000000 is outside 1..999");
  refused(config_with(kShape, "vocab_size", "2097153"), "config.json: vocab_size 2097153 is outside 1..2097152");
  refused(config_with(kShape, "max_position_embeddings", "1048577"),
          "config.json: sequence_len 1048577 is outside 1..1048576");
  // 4 x width x width elements in one MLP matrix: past int64.
  refused(config_with(kShape, "hidden_size", "4398046511104"), "overflows");

  TempDir dir;
  ModelShape deep = kShape;
  deep.n_layer = 999999999999999999;
  save_safetensors(dir / "deep.safetensors", {}, model_config_metadata(deep));
  CHECK_THROWS_WITH(model_shape_of(SafetensorsFile::load(dir / "deep.safetensors")),
                    doctest::Contains("n_layer 999999999999999999 is outside 1..999"));
}

TEST_CASE("HF import refuses weights our model has no place for, and takes tied embeddings") {
  TempDir dir;
  fs::create_directories(dir / "hf");
  write_ours(dir / "ours.safetensors", kShape);
  export_hf_weights(SafetensorsFile::load(dir / "ours.safetensors"), kShape, dir / "hf" / "model.safetensors");
  const auto hf = SafetensorsFile::load(dir / "hf" / "model.safetensors");

  // Rewrites the HF file with `change` applied to its tensor list.
  const auto rewrite = [&](auto change) {
    std::vector<TensorToSave> tensors;
    for (const auto& t : hf.tensors()) tensors.push_back({t.name, t.dtype, t.shape, hf.values<float>(t.name).data()});
    change(tensors);
    save_safetensors(dir / "hf" / "model.safetensors", tensors, {{"format", "pt"}});
  };
  const std::vector<float> bias(32, 0.5f);
  rewrite([&](auto& t) { t.push_back({"model.layers.0.self_attn.q_proj.bias", DType::f32, {32}, bias.data()}); });
  CHECK_THROWS_WITH(import_hf_weights(dir / "hf", kShape, false, dir / "back.safetensors"),
                    doctest::Contains("tensor model.layers.0.self_attn.q_proj.bias has no place in nanochat's model"));
  rewrite([&](auto& t) { t[2].shape = Shape{8, 64}; });
  CHECK_THROWS_WITH(import_hf_weights(dir / "hf", kShape, false, dir / "back.safetensors"),
                    doctest::Contains("model.layers.0.self_attn.k_proj.weight"));
  rewrite([&](auto& t) { t.pop_back(); });  // no lm_head
  CHECK_THROWS_WITH(import_hf_weights(dir / "hf", kShape, false, dir / "back.safetensors"),
                    doctest::Contains("has no tensor lm_head.weight"));
  CHECK_FALSE(fs::exists(dir / "back.safetensors"));  // nothing half-written
  import_hf_weights(dir / "hf", kShape, true, dir / "back.safetensors");  // tied: lm_head is wte
  const auto back = SafetensorsFile::load(dir / "back.safetensors");
  CHECK(std::ranges::equal(back.values<float>("lm_head.weight"), back.values<float>("transformer.wte.weight")));

  // Shards named by model.safetensors.index.json.
  fs::remove(dir / "hf" / "model.safetensors");
  CHECK_THROWS_WITH(import_hf_weights(dir / "hf", kShape, true, dir / "back.safetensors"),
                    doctest::Contains("has neither model.safetensors nor model.safetensors.index.json"));
  std::vector<TensorToSave> first, second;
  std::string map;
  for (const auto& t : hf.tensors()) {
    const bool in_first = t.name.starts_with("model.embed") || t.name.starts_with("model.layers.0.");
    (in_first ? first : second).push_back({t.name, t.dtype, t.shape, hf.values<float>(t.name).data()});
    map += (map.empty() ? "" : ", ") + json::quote(t.name) + ": \"" + (in_first ? "a.safetensors" : "b.safetensors") + "\"";
  }
  save_safetensors(dir / "hf" / "a.safetensors", first);
  save_safetensors(dir / "hf" / "b.safetensors", second);
  std::ofstream(dir / "hf" / "model.safetensors.index.json") << "{\"metadata\": {}, \"weight_map\": {" << map << "}}";
  import_hf_weights(dir / "hf", kShape, false, dir / "sharded.safetensors");
  const auto sharded = SafetensorsFile::load(dir / "sharded.safetensors");
  const auto original = SafetensorsFile::load(dir / "ours.safetensors");
  for (const auto& t : original.tensors())
    CHECK(std::ranges::equal(sharded.values<float>(t.name), original.values<float>(t.name)));
}

TEST_CASE("HF export refuses a weights file that is not the model its model_config says") {
  TempDir dir;
  const std::vector<float> extra(4, 1.0f);
  write_ours(dir / "extra.safetensors", kShape, {{"idx", DType::f32, {4}, extra.data()}});
  CHECK_THROWS_WITH(export_hf_weights(SafetensorsFile::load(dir / "extra.safetensors"), kShape, dir / "out.safetensors"),
                    doctest::Contains("has 15 tensors but a model of this shape has 14"));
  ModelShape wider = kShape;
  wider.n_embd = 64;
  write_ours(dir / "ours.safetensors", kShape);
  CHECK_THROWS_WITH(export_hf_weights(SafetensorsFile::load(dir / "ours.safetensors"), wider, dir / "out.safetensors"),
                    doctest::Contains("transformer.wte.weight"));
  CHECK_FALSE(fs::exists(dir / "out.safetensors"));
}

TEST_CASE("byte-level alphabet: 256 distinct printable characters, and back") {
  std::set<char32_t> seen(tokenizer::byte_level_chars().begin(), tokenizer::byte_level_chars().end());
  CHECK(seen.size() == 256);
  CHECK(tokenizer::byte_level_encode(" ") == "\xC4\xA0");  // U+0120, GPT-2's marker for a space
  CHECK(tokenizer::byte_level_encode("\n") == "\xC4\x8A");
  CHECK(tokenizer::byte_level_encode("a!") == "a!");
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  CHECK(tokenizer::byte_level_decode(tokenizer::byte_level_encode(all), "token") == all);
  CHECK_THROWS_WITH(tokenizer::byte_level_decode("a b", "vocab token"), doctest::Contains("outside the byte-level alphabet"));
}

TEST_CASE("HF tokenizer.json round trip: the same ranks and specials, every tiktoken merge listed") {
  const auto tok = fixture_tokenizer();
  const std::string text = tokenizer::hf_tokenizer_json(tok);
  const auto back = tokenizer::tokenizer_from_hf_json(text, "tokenizer.json");
  CHECK(back.tokenizer.encoder().tokens() == tok.encoder().tokens());
  CHECK(back.tokenizer.special_tokens() == tok.special_tokens());
  CHECK(back.missing_merges == 0);

  // Every multi-byte token is the result of a merge, and merges come in rank order of the result.
  const auto& tokens = tok.encoder().tokens();
  const auto merges = tokenizer::merges_from_ranks(tokens);
  std::vector<bool> made(tokens.size(), false);
  std::size_t last = 0;
  for (const auto& m : merges) {
    const std::string whole = tokens[m.left] + tokens[m.right];
    const auto r = static_cast<std::size_t>(std::find(tokens.begin(), tokens.end(), whole) - tokens.begin());
    REQUIRE(r < tokens.size());
    CHECK(r >= last);
    last = r;
    made[r] = true;
  }
  for (std::size_t r = 0; r < tokens.size(); ++r) CHECK((tokens[r].size() == 1) != made[r]);

  const json::Value config = json::parse(tokenizer::hf_tokenizer_config_json(2048), "tokenizer_config.json");
  CHECK(config.find("bos_token")->string("bos") == "<|bos|>");
  CHECK(config.find("eos_token")->string("eos") == "<|assistant_end|>");
  CHECK(config.find("chat_template")->string("template") == tokenizer::kHfChatTemplate);
}

TEST_CASE("HF tokenizer import refuses what tiktoken ranks cannot represent, naming it") {
  const std::string good = tokenizer::hf_tokenizer_json(fixture_tokenizer());
  const auto refused = [](const std::string& text, const std::string& words) {
    CAPTURE(words);
    CHECK_THROWS_WITH(tokenizer::tokenizer_from_hf_json(text, "tokenizer.json"), doctest::Contains(words.c_str()));
  };
  refused(replaced(good, "\\\\p{N}{1,2}", "\\\\p{N}{1,3}"), "unsupported split pattern");
  refused(replaced(good, "\"normalizer\": null", "\"normalizer\": {\"type\": \"NFC\"}"), "normalizer must be null");
  refused(replaced(good, "\"byte_fallback\": false", "\"byte_fallback\": true"), "byte_fallback must be false");
  refused(replaced(good, "\"add_prefix_space\": false", "\"add_prefix_space\": true"), "add_prefix_space false");
  refused(replaced(good, "\"type\": \"BPE\"", "\"type\": \"WordPiece\""), "type must be BPE");
  refused(replaced(good, "\"special\": true}", "\"special\": false}"), "<|bos|> is not special");
  refused(replaced(good, "{\"id\": 2048,", "{\"id\": 2049,"), "special ids must follow the 2048 ranks");
  refused(replaced(good, "\"!\": 33,", "\"!\": 5000,"), "id 5000");
  refused(replaced(good, "\"vocab\": {", "\"vocab\": {\"\\u0000\": 2048, "), "outside the byte-level alphabet");
  // The first merge moved to the end: its token would be made after tokens of higher rank.
  const std::size_t open = good.find("\"merges\": [") + 11;
  const std::size_t first_end = good.find(",\n", open);
  const std::string first = good.substr(open, first_end - open);
  std::string reordered = good;
  reordered.erase(open, first_end + 1 - open);
  reordered = replaced(reordered, "]\n  }\n}", "," + first + "]\n  }\n}");
  refused(reordered, "out of rank order");
  // Merges as pairs (transformers' newer form) read the same; one missing is counted.
  std::string pairs = good;
  const std::string merge = json::parse(first, "merge").string("merge");
  pairs.replace(open, first_end - open, "\n      [" + json::quote(merge.substr(0, merge.find(' '))) + ", " +
                                            json::quote(merge.substr(merge.find(' ') + 1)) + "]");
  CHECK(tokenizer::tokenizer_from_hf_json(pairs, "tokenizer.json").missing_merges == 0);
  std::string fewer = good;
  fewer.erase(open, first_end + 1 - open);
  CHECK(tokenizer::tokenizer_from_hf_json(fewer, "tokenizer.json").missing_merges == 1);
}

TEST_CASE("HF conversion needs nanochat's nine special tokens, both ways") {
  const auto tok = fixture_tokenizer();
  CHECK_NOTHROW(tokenizer::check_nanochat_specials(tok, "tok"));
  std::vector<std::string> specials = tok.special_tokens();
  specials.erase(specials.begin() + 6);  // <|python_end|>
  const tokenizer::Tokenizer fewer(tok.encoder().tokens(), specials);
  CHECK_THROWS_WITH(tokenizer::check_nanochat_specials(fewer, "tok"),
                    doctest::Contains("tok: has no special token <|python_end|>, which the chat template"));
}

#ifdef NANOCHAT_HF_CONVERT  // the program is built only with the examples
using nanochat::testing::Run;
using nanochat::testing::run;

TEST_CASE("hf_convert end to end: export, import, and the refusals a user meets") {
  TempDir dir;
  const auto tok = fixture_tokenizer();
  tokenizer::save_tokenizer(tok, dir / "tok");
  ModelShape shape = kShape;
  shape.vocab_size = static_cast<std::int64_t>(tok.vocab_size());
  write_ours(dir / "model_000000.safetensors", shape);
  const std::string exe = NANOCHAT_HF_CONVERT;
  const std::string export_cmd =
      exe + " export --checkpoint " + (dir / "model_000000.safetensors").string() + " --tokenizer " + (dir / "tok").string();
  const Run no_out = run(export_cmd);
  CHECK(no_out.status == 1);
  CHECK(no_out.output.find("export needs --out DIR") != std::string::npos);
  const Run exported = run(export_cmd + " --out " + (dir / "hf").string());
  REQUIRE_MESSAGE(exported.status == 0, exported.output);
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    CHECK(fs::is_regular_file(dir / "hf" / f));

  // Existing files in --out are kept unless --force; our tokenizer directory has a tokenizer.json too.
  const Run over = run(export_cmd + " --out " + (dir / "hf").string());
  CHECK(over.status == 1);
  CHECK(over.output.find("model.safetensors exists; --force replaces it") != std::string::npos);
  CHECK(run(export_cmd + " --out " + (dir / "hf").string() + " --force").status == 0);
  const std::string tok_config = read_file(dir / "tok" / "tokenizer.json");
  const Run over_tok = run(export_cmd + " --out " + (dir / "tok").string());
  CHECK(over_tok.status == 1);
  CHECK(over_tok.output.find("tokenizer.json exists; --force replaces it") != std::string::npos);
  CHECK(read_file(dir / "tok" / "tokenizer.json") == tok_config);
  CHECK_FALSE(fs::exists(dir / "tok" / "model.safetensors"));
  // A refused export leaves no directory behind.
  const std::vector<float> extra(4, 1.0f);
  write_ours(dir / "extra.safetensors", shape, {{"idx", DType::f32, {4}, extra.data()}});
  const Run extra_run = run(exe + " export --checkpoint " + (dir / "extra.safetensors").string() + " --tokenizer " +
                            (dir / "tok").string() + " --out " + (dir / "hf4").string());
  CHECK(extra_run.status == 1);
  CHECK(extra_run.output.find("(what are the others?)") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "hf4"));

  const std::string import_cmd = exe + " import --hf " + (dir / "hf").string() + " --checkpoint " +
                                 (dir / "back" / "model_000000.safetensors").string() + " --tokenizer " + (dir / "tok").string();
  const Run imported = run(import_cmd);  // the tokenizer there is the same one: kept
  REQUIRE_MESSAGE(imported.status == 0, imported.output);
  const auto original = SafetensorsFile::load(dir / "model_000000.safetensors");
  const auto back = SafetensorsFile::load(dir / "back" / "model_000000.safetensors");
  for (const auto& t : original.tensors()) CHECK(std::ranges::equal(back.values<float>(t.name), original.values<float>(t.name)));
  const Run again = run(import_cmd);
  CHECK(again.status == 1);
  CHECK(again.output.find("model_000000.safetensors exists; --force replaces it") != std::string::npos);
  CHECK(run(import_cmd + " --force").status == 0);

  // A tokenizer that is not the one the checkpoint was trained with.
  std::vector<std::string> fewer(tok.encoder().tokens().begin(), tok.encoder().tokens().end() - 1);
  tokenizer::save_tokenizer(tokenizer::Tokenizer(fewer, tok.special_tokens()), dir / "other");
  const Run mismatch = run(exe + " export --checkpoint " + (dir / "model_000000.safetensors").string() +
                           " --tokenizer " + (dir / "other").string() + " --out " + (dir / "hf2").string());
  CHECK(mismatch.status == 1);
  CHECK(mismatch.output.find("tokens but") != std::string::npos);
  const Run other_tok = run(exe + " import --hf " + (dir / "hf").string() + " --checkpoint " +
                            (dir / "x.safetensors").string() + " --tokenizer " + (dir / "other").string());
  CHECK(other_tok.status == 1);
  CHECK(other_tok.output.find("holds a different tokenizer") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "x.safetensors"));

  std::vector<std::string> no_bos(tok.special_tokens().begin() + 1, tok.special_tokens().end());
  no_bos.push_back("<|other|>");
  tokenizer::save_tokenizer(tokenizer::Tokenizer(tok.encoder().tokens(), no_bos), dir / "nobos");
  const Run no_bos_run = run(exe + " export --checkpoint " + (dir / "model_000000.safetensors").string() + " --tokenizer " +
                             (dir / "nobos").string() + " --out " + (dir / "hf3").string());
  CHECK(no_bos_run.status == 1);
  CHECK(no_bos_run.output.find("has no special token <|bos|>") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "hf3" / "model.safetensors"));

  std::ofstream(dir / "hf" / "config.json") << replaced(hf_config_json(shape, 0, 1), "\"relu2\"", "\"gelu\"");
  const Run gelu = run(import_cmd + " --force");
  CHECK(gelu.status == 1);
  CHECK(gelu.output.find("hidden_act is gelu") != std::string::npos);
}

TEST_CASE("hf_convert import writes a complete checkpoint under --source, one tag inside it") {
  TempDir dir;
  const auto tok = fixture_tokenizer();
  tokenizer::save_tokenizer(tok, dir / "tok");
  ModelShape shape = kShape;
  shape.vocab_size = static_cast<std::int64_t>(tok.vocab_size());
  write_ours(dir / "ours.safetensors", shape);
  const std::string exe = "NANOCHAT_BASE_DIR=" + (dir / "base").string() + " " + NANOCHAT_HF_CONVERT;
  const std::string tok_flag = " --tokenizer " + (dir / "tok").string();
  REQUIRE(run(exe + " export --checkpoint " + (dir / "ours.safetensors").string() + tok_flag + " --out " +
              (dir / "hf").string()).status == 0);
  const std::string import_cmd = exe + " import --hf " + (dir / "hf").string() + tok_flag + " --source base --step 5";

  const Run imported = run(import_cmd);
  REQUIRE_MESSAGE(imported.status == 0, imported.output);
  const fs::path ckpt = dir / "base" / "base_checkpoints" / "d2";
  CHECK(engine::find_checkpoint(dir / "base", "base", "", -1) == ckpt / "model_000005.safetensors");
  const auto meta_save_id = [&] {
    const json::Value meta = json::parse(read_file(ckpt / "meta_000005.json"), "meta");
    CHECK(meta.find("step")->whole_number("step") == 5);
    CHECK(meta.find("model_config")->find("n_layer")->whole_number("n_layer") == 2);
    const std::string id = meta.find("save_id")->string("save_id");
    CHECK(SafetensorsFile::load(ckpt / "model_000005.safetensors").metadata().at("save_id") == id);
    return id;
  };
  const std::string first_id = meta_save_id();
  // Over an existing step, the old step's other files go: no mix of two saves remains.
  std::ofstream(ckpt / "optim_000005_rank0.safetensors") << "old";
  REQUIRE(run(import_cmd + " --force").status == 0);
  CHECK_FALSE(fs::exists(ckpt / "optim_000005_rank0.safetensors"));
  CHECK(meta_save_id() != first_id);
  const Run found = run(exe + " export --source base" + tok_flag + " --out " + (dir / "hf_again").string());
  CHECK_MESSAGE(found.status == 0, found.output);

  const Run climbing = run(import_cmd + " --model-tag ../../x");
  CHECK(climbing.status == 1);
  CHECK(climbing.output.find("--model-tag '../../x'") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "x"));
  const Run negative = run(import_cmd + " --step -5");
  CHECK(negative.status == 1);
  CHECK(negative.output.find("flag --step: -5 is outside the allowed range 0..") != std::string::npos);
  CHECK(run(exe + " export --source base --step -2" + tok_flag + " --out " + (dir / "hf5").string())
            .output.find("flag --step: -2 is outside the allowed range -1..") != std::string::npos);

  // A refused import creates no directory.
  fs::create_directories(dir / "hf_noweights");
  for (const char* f : {"config.json", "tokenizer.json"}) fs::copy_file(dir / "hf" / f, dir / "hf_noweights" / f);
  const Run no_weights = run(exe + " import --hf " + (dir / "hf_noweights").string() + tok_flag + " --source mid");
  CHECK(no_weights.status == 1);
  CHECK(no_weights.output.find("has neither model.safetensors") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "base" / "mid_checkpoints"));
}
#endif
