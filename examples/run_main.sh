#!/usr/bin/env bash
# The main job: nanochat's whole recipe, offline, on the CPU. Installs what is missing, builds
# the programs it uses (Release), then: the offline default corpus -> a BPE tokenizer -> a d4
# base model -> midtraining and SFT on the offline tasks (arithmetic through the calculator,
# letter counting, spelling, identity) -> (with RUN_RL=1: chat_rl on spelling longer words, and
# SFT against RL on that task held out) -> the chat model's accuracy on 200 held-out problems of
# each offline task -> a short sample conversation, then the report card:
# $NANOCHAT_BASE_DIR/report/report.md (report reset at the start).
# Artifacts go to $NANOCHAT_BASE_DIR (default ~/.cache/nanochat).
#
# Scaling up: extra arguments go to base_train (e.g. --num-iterations 500 or --depth 8: the
# later stages take the deepest tag); MID_ARGS, SFT_ARGS, RL_ARGS and EVAL_ARGS are added to
# the other stages' flags (the last of a repeated flag wins), e.g.
#   MID_ARGS="--offline-rows 4000" SFT_ARGS="--num-epochs 2" RUN_RL=1 bash examples/run_main.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash examples/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DNANOCHAT_BUILD_TESTS=OFF \
      -DNANOCHAT_BUILD_BENCHMARKS=OFF
programs=(report prepare_corpus tok_train tok_eval model_info base_train base_eval mid_train chat_sft chat_eval chat_cli)
[[ "${RUN_RL:-0}" == 1 ]] && programs+=(chat_rl)
cmake --build build/release -j "$(nproc)" --target "${programs[@]}"
bin=build/release/examples
base=${NANOCHAT_BASE_DIR:-$HOME/.cache/nanochat}
vocab=4096  # the offline corpus is 4 MB of text; nanochat's 65536 is for FineWeb-EDU
read -r -a mid_args <<<"${MID_ARGS:-}"
read -r -a sft_args <<<"${SFT_ARGS:-}"
read -r -a rl_args <<<"${RL_ARGS:-}"
read -r -a eval_args <<<"${EVAL_ARGS:-}"
stage() { echo "== $1 ($(date -u +%H:%M:%S))"; }

stage "report card: a fresh header (git, hardware, compiler)"
"$bin/report" reset

stage "data: the offline default corpus"
"$bin/prepare_corpus" --dir "$base/offline_data"

stage "tokenizer: BPE with $vocab tokens"
"$bin/tok_train" --vocab-size "$vocab" --out "$base/tokenizer" "$base/offline_data"
"$bin/tok_eval" --corpus "$base/offline_data" "ours=$base/tokenizer"

stage "model: what --depth 4 means with this tokenizer"
"$bin/model_info" --depth 4 --vocab-size "$vocab"

stage "pretraining: d4 on the CPU (2048-token steps of 8 x 256)"
"$bin/base_train" --depth 4 --max-seq-len 256 --device-batch-size 8 --total-batch-size 2048 \
    --num-iterations 150 --eval-every 50 --eval-tokens 16384 --sample-every 150 "$@"
"$bin/base_eval" --eval-tokens 16384 </dev/null

# 12,000 of each generated task: with fewer (1,000) the d4 model does not learn to copy the
# operands into the calculator and its result into the answer (0% of held-out arithmetic).
stage "midtraining: the offline tasks (12,000 rows of each), one epoch"
"$bin/mid_train" --offline --offline-rows 12000 --max-seq-len 256 --device-batch-size 8 --total-batch-size 4096 \
    --eval-every 50 --eval-tokens 4096 "${mid_args[@]}"

stage "SFT: the offline tasks, assistant tokens only"
"$bin/chat_sft" --offline --offline-rows 3000 --max-seq-len 128 --eval-steps 10 --eval-every 50 "${sft_args[@]}"

chat=sft
if [[ "${RUN_RL:-0}" == 1 ]]; then
  # Spelling words of 2-4 invented syllables: the SFT model spells about half of the 4-syllable
  # ones and a sampled group of 16 is often mixed, so GRPO's advantages carry a gradient
  # (arithmetic beyond 3 digits fails or passes a whole group at once: docs/training.md).
  stage "RL: spelling longer invented words (up to 4 syllables), rewarded when right"
  "$bin/chat_rl" --task spelling --spelling-syllables 4 --offline-rows 3200 --examples-per-step 8 \
      --num-samples 16 --device-batch-size 16 --max-new-tokens 48 --init-lr-frac 0.1 \
      --eval-every 50 --eval-examples 200 "${rl_args[@]}"
  chat=rl
  stage "RL's task held out: SFT against RL, 500 problems, 8 samples each at temperature 1"
  for source in sft rl; do
    "$bin/chat_eval" -i "$source" -a spelling --spelling-syllables 4 -x 500 -n 8 -t 1 \
        --max-new-tokens 48 --out "$base/chat_eval/${source}_spelling4.json"
  done
fi

stage "evaluation: 200 held-out problems of each offline task, greedy, with the calculator"
"$bin/chat_eval" -i "$chat" -a "arithmetic|letter-count|spelling|identity" --max-problems 200 "${eval_args[@]}"

stage "a sample conversation"
for prompt in "What is 482 + 317?" "How many r are in strawberry?" "Who are you?"; do
  echo "User: $prompt"
  printf 'Assistant: '
  "$bin/chat_cli" -i "$chat" -t 0 --max-tokens 64 -p "$prompt"
done

stage "report card: every stage's section, the curves and the summary table"
"$bin/report" generate
stage "done"
