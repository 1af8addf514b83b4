#!/usr/bin/env bash
# The main job: installs what is missing, builds the example programs (Release), and runs the
# recipe's stages that exist so far on the CPU — the offline default corpus, the tokenizer
# trained on it, a d4 base model pretrained for a few minutes, and its evaluation (bits per
# byte, samples, then prompts typed at the terminal). It grows into nanochat's whole recipe
# (midtraining, SFT, RL, chat) as the stages land. Artifacts go to $NANOCHAT_BASE_DIR (default
# ~/.cache/nanochat). Extra arguments go to base_train (e.g. --num-iterations 500).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash examples/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DNANOCHAT_BUILD_TESTS=OFF \
      -DNANOCHAT_BUILD_BENCHMARKS=OFF
cmake --build build/release -j "$(nproc)"
bin=build/release/examples
base=${NANOCHAT_BASE_DIR:-$HOME/.cache/nanochat}
vocab=4096  # the offline corpus is 4 MB of text; nanochat's 65536 is for FineWeb-EDU

echo "== data: the offline default corpus"
"$bin/prepare_corpus" --dir "$base/offline_data"

echo "== tokenizer: BPE with $vocab tokens"
"$bin/tok_train" --vocab-size "$vocab" --out "$base/tokenizer" "$base/offline_data"
"$bin/tok_eval" --corpus "$base/offline_data" "ours=$base/tokenizer"

echo "== model: what --depth 4 means with this tokenizer"
"$bin/model_info" --depth 4 --vocab-size "$vocab"

echo "== pretraining: d4 on the CPU (2048-token steps of 8 x 256)"
"$bin/base_train" --depth 4 --max-seq-len 256 --device-batch-size 8 --total-batch-size 2048 \
    --num-iterations 150 --eval-every 50 --eval-tokens 16384 --sample-every 150 "$@"

echo "== evaluation: bits per byte, samples, and your prompts"
"$bin/base_eval" --model-tag d4 --eval-tokens 16384
