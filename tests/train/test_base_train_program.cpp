// base_train end to end: a tiny corpus and tokenizer in a temporary directory, a d2 run of two
// steps, then resumes it refuses (past the horizon, another --max-seq-len, a NaN in the optimizer
// file): each exits with status 2 and a message, after the log lines it printed first.

#include <doctest/doctest.h>

#include "run_program.hpp"

#ifdef NANOCHAT_BASE_TRAIN  // the program is built only with the examples


#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "nanochat/tokenizer/tokenizer_file.hpp"
#include "train_test_util.hpp"

using namespace nanochat;
using namespace nanochat_train_test;
namespace fs = std::filesystem;

using nanochat::testing::Run;
using nanochat::testing::run;

TEST_CASE("base_train: a tiny run and the resumes it refuses with status 2 after its log lines") {
  ScratchDir base("base_train_program");
  std::vector<std::string> docs;
  fs::create_directories(base.path / "corpus");
  write_corpus(base.path / "corpus", docs);
  tokenizer::save_tokenizer(train_tokenizer(docs), base.path / "tokenizer");
  const std::string command = "NANOCHAT_BASE_DIR=" + base.path.string() + " " + NANOCHAT_BASE_TRAIN +
                              " --depth 2 --max-seq-len 16 --device-batch-size 2 --total-batch-size 64"
                              " --eval-every -1 --eval-tokens 64 --sample-every -1 --loader-threads 1 --data " +
                              (base.path / "corpus").string() + " --tokenizer " + (base.path / "tokenizer").string();
  const fs::path checkpoints = base.path / "base_checkpoints" / "d2";

  const Run ok = run(command + " --num-iterations 2");
  CAPTURE(ok.output);
  REQUIRE(ok.status == 0);
  CHECK(fs::exists(checkpoints / "meta_000002.json"));

  // Past the horizon: refused at once. The "data: ..." line was printed before the error, and
  // is before it in the output (stdout is not held back until exit).
  const Run past = run(command + " --num-iterations 2 --resume-from-step 5");
  CAPTURE(past.output);
  CHECK(past.status == 2);
  CHECK(past.output.starts_with("data: "));
  CHECK(past.output.find("base_train: --resume-from-step 5 is past the end of this run's 2 iterations") !=
        std::string::npos);

  const Run longer = run(command + " --num-iterations 4 --resume-from-step 2 --max-seq-len 32");
  CAPTURE(longer.output);
  CHECK(longer.status == 2);
  CHECK(longer.output.find("was trained with --max-seq-len 16 but this run has --max-seq-len 32") != std::string::npos);

  // A NaN in the optimizer state is named, not trained on.
  const fs::path optim = checkpoints / "optim_000002_rank0.safetensors";
  {
    const auto file = SafetensorsFile::load(optim);
    std::vector<std::vector<float>> data;
    std::vector<TensorToSave> tensors;
    for (const auto& t : file.tensors()) {
      const auto v = file.values<float>(t.name);
      data.emplace_back(v.begin(), v.end());
    }
    data.front().front() = std::numeric_limits<float>::quiet_NaN();
    for (std::size_t i = 0; i < data.size(); ++i) {
      tensors.push_back({file.tensors()[i].name, DType::f32, file.tensors()[i].shape, data[i].data()});
    }
    save_safetensors(optim, tensors, file.metadata());
  }
  const Run nan = run(command + " --num-iterations 4 --resume-from-step 2");
  CAPTURE(nan.output);
  CHECK(nan.status == 2);
  CHECK(nan.output.find("optim_000002_rank0.safetensors: tensor ") != std::string::npos);
  CHECK(nan.output.find("holds a non-finite value at element 0") != std::string::npos);
}

#endif
