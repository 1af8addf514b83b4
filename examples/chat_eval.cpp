// chat_eval: a chat checkpoint's accuracy (nanochat's chat_eval). Loads the checkpoint as
// chat_cli finds it (-i base|mid|sft|rl, --model-tag, --step, or a file), then for each task in
// -a takes up to --max-problems held-out problems: a generative task's are answered by the
// Engine (greedy by default, calculator tool on) and scored by the task's scorer; a categorical
// task's (ARC-Easy, ARC-Challenge, MMLU) are scored from the letters' logits, -b problems per
// forward (eval/categorical_eval.hpp). Prints the accuracy per task and writes them as JSON
// (--out, default <base>/chat_eval/<source>.json), with nanochat's ChatCORE when all six of its
// tasks ran, and the report card's "Chat evaluation <source>" section;
// --verbose prints every generative problem with its reply. With -n N samples per problem
// (nanochat's -n; sampled, so give a temperature) a generative problem passes when any reply is
// correct, and pass@1..N are printed too. Under mpirun or srun rank r of W takes problems r, r+W,
// ... of each task, the counts are summed, and rank 0 alone prints and writes (--verbose: each
// rank prints its own problems).

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "nanochat/backend/cpu.hpp"
#include "nanochat/core/flags.hpp"
#include "nanochat/core/limits.hpp"
#include "nanochat/data/paths.hpp"
#include "nanochat/dist/launch.hpp"
#include "nanochat/engine/chat_model.hpp"
#include "nanochat/eval/categorical_eval.hpp"
#include "nanochat/eval/chat_eval.hpp"
#include "nanochat/model/gpt.hpp"
#include "nanochat/train/report_section.hpp"

using namespace nanochat;
using nanochat::cpu::Cpu;

namespace {

struct Options {
  std::string checkpoint, source = "sft", model_tag, tokenizer, tasks = "arithmetic|letter-count|spelling|identity",
                          out, dtype = "bfloat16";
  std::int64_t step = -1, max_problems = 200, max_new_tokens = 128, seed = 42, batch_size = 8, num_samples = 1;
  tasks::OfflineDifficulty difficulty;
  float temperature = 0.0f;
  int top_k = 50;
  bool verbose = false;
};

std::vector<std::string> split_tasks(const std::string& list) {
  std::vector<std::string> names;
  std::stringstream in(list);
  for (std::string name; std::getline(in, name, '|');) {
    NANOCHAT_CHECK(!name.empty(), "--tasks '", list, "' has an empty name; separate names with |");
    names.push_back(name);
  }
  NANOCHAT_CHECK(!names.empty(), "--tasks is empty");
  return names;
}

int run(const Options& opt, const std::map<std::string, std::string>& flags, dist::Communicator& comm) {
  const bool leader = comm.rank() == 0;
  // Every task is built first, so a misspelt name or a missing dataset fails before the model loads.
  report::StageReport section("Chat evaluation " + opt.source, flags);
  std::vector<tasks::TaskPtr> tasks;
  const std::vector<std::string> names = split_tasks(opt.tasks);
  for (const auto& name : names) tasks.push_back(eval::make_eval_task(name, static_cast<std::size_t>(opt.max_problems), opt.difficulty));
  const auto chat_model =
      engine::ChatModel::open(opt.checkpoint, opt.source, opt.model_tag, opt.step, opt.tokenizer, opt.dtype);
  const tokenizer::Tokenizer& tok = chat_model.tok;
  eval::ChatEvalOptions options;
  options.max_problems = static_cast<std::size_t>(opt.max_problems);
  options.max_new_tokens = opt.max_new_tokens;
  options.num_samples = opt.num_samples;
  options.sampling = {opt.temperature, opt.top_k, static_cast<std::uint64_t>(opt.seed)};
  if (opt.verbose) options.transcript = stdout;
  std::vector<eval::TaskAccuracy> results;
  Cpu cpu;
  const std::int64_t vocab = metadata_integer(chat_model.file, "vocab_size");
  // W: the Engine's weights (bf16 rounded once at load, or float); M: the categorical model's
  // Config, its matmuls in bf16 (nanochat's autocast) or float.
  engine::with_chat_engine(cpu, chat_model, opt.num_samples, [&]<Config C, class W>(auto& engine, std::int64_t context) {
    using M = std::conditional_t<std::is_same_v<W, bf16>, GptConfig<C::depth, C::n_head, C::n_kv_head, C::head_dim, bf16>, C>;
    for (const auto& task : tasks) {
      if (task->eval_type() == tasks::EvalType::categorical) {
        // Planned for the longest prompt: nanochat's model takes any length up to its rotary
        // table's 10 x sequence_len.
        const auto longest = static_cast<std::int64_t>(eval::longest_prompt(tok, *task, options.max_problems));
        NANOCHAT_CHECK(longest <= context, task->name(), ": a prompt of ", longest, " tokens exceeds the model's ",
                       context, " positions (10 x its sequence_len)");
        Gpt<M, Cpu> model(cpu, vocab, opt.batch_size, longest);
        load_weights(cpu, model.weights(), chat_model.file);
        results.push_back(eval::evaluate_categorical(cpu, model, tok, *task, options.max_problems, comm).accuracy);
      } else {
        results.push_back(eval::evaluate_generative(engine, tok, *task, options, comm));
      }
      if (!leader) continue;
      const auto& r = results.back();
      std::printf("%s accuracy: %.2f%% (%zu/%zu)\n", r.task.c_str(), 100.0 * r.accuracy(), r.correct, r.total);
      if (r.pass_at_k.size() > 1) {
        std::printf("%s", r.task.c_str());
        for (std::size_t k = 0; k < r.pass_at_k.size(); ++k)
          std::printf("%s pass@%zu: %.2f%%", k ? "," : "", k + 1, 100.0 * r.pass_at_k[k]);
        std::printf("\n%s right samples: %.2f%%\n", r.task.c_str(), 100.0 * r.sample_accuracy);
      }
      std::fflush(stdout);
    }
  });
  if (!leader) return 0;
  const std::filesystem::path out =
      !opt.out.empty() ? std::filesystem::path(opt.out) : data::base_dir() / "chat_eval" / (opt.source + ".json");
  std::filesystem::create_directories(out.parent_path().empty() ? "." : out.parent_path());
  // By the names -a takes (nanochat's report keys), for ChatCORE and the report card.
  std::map<std::string, double, std::less<>> accuracy_by_task;
  for (std::size_t i = 0; i < results.size(); ++i) accuracy_by_task.emplace(names[i], results[i].accuracy());
  const std::optional<double> chatcore = eval::chatcore(accuracy_by_task);
  if (chatcore) std::printf("ChatCORE metric: %.4f\n", *chatcore);
  eval::write_results(out, chat_model.checkpoint.string(), results, chatcore);
  std::printf("results: %s\n", out.string().c_str());
  for (std::size_t i = 0; i < results.size(); ++i) section.add(names[i], results[i].accuracy());
  if (chatcore) section.add("ChatCORE metric", *chatcore);
  section.write();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  std::unique_ptr<dist::Communicator> comm;
  Flags flags("chat_eval", "Accuracy of a chat model on generative and multiple-choice tasks (CPU).");
  flags.add("checkpoint", opt.checkpoint, "weights file (.safetensors); else found from --source/--model-tag/--step")
      .add("source", opt.source, "checkpoint source: base, mid, sft or rl", 'i')
      .add("model-tag", opt.model_tag, "checkpoint tag (default: the largest d<N> with a complete checkpoint)", 'g')
      .add("step", opt.step, "checkpoint step (default: the last)", {-1, max_count}, 's')
      .add("tokenizer", opt.tokenizer, "tokenizer directory (default: <base>/tokenizer)")
      .add("tasks", opt.tasks, "tasks separated by |: arithmetic, letter-count, spelling, identity, GSM8K, SpellingBee, "
                               "ARC-Easy, ARC-Challenge, MMLU", 'a')
      .add("max-problems", opt.max_problems, "problems per task (0: all; 1000 of a generated task)", {0, max_count}, 'x')
      .add("max-new-tokens", opt.max_new_tokens, "most tokens per reply", {1, 10 * max_sequence_len})
      .add("num-samples", opt.num_samples, "replies per problem: pass@1..N (a problem passes if any is right)",
           {1, max_batch_rows}, 'n')
      .add("arithmetic-digits", opt.difficulty.arithmetic_digits, "operand digits of the arithmetic task (1..N each)", {1, 9})
      .add("spelling-syllables", opt.difficulty.spelling_syllables,
           "syllables of the spelling task's invented words (2..N each)", {2, 9})
      .add("temperature", opt.temperature, "sampling temperature (0: greedy)", {0.0f, 1e6f}, 't')
      .add("top-k", opt.top_k, "sample from the k most likely tokens (0: all)", {0, static_cast<int>(max_vocab_size)}, 'k')
      .add("seed", opt.seed, "sampling seed")
      .add("out", opt.out, "results JSON (default: <base>/chat_eval/<source>.json)")
      .add("batch-size", opt.batch_size, "problems per forward of a categorical task", {1, max_batch_rows}, 'b')
      .add("dtype", opt.dtype, "generative: weights in bfloat16 (rounded once at load) or float32; categorical: the "
                               "matmuls' compute type", 'd')
      .add("verbose", opt.verbose, "print each generative problem, the reply and whether it is right", 'v');
  try {
    if (!flags.parse(argc, argv)) return 0;
    comm = dist::communicator_for(dist::placement_from_environment(), "chat_eval");
    return run(opt, flags.values(), *comm);
  } catch (const std::exception& e) {
    return dist::fail_rank("chat_eval", comm.get(), e, 1);
  }
}
