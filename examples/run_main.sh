#!/usr/bin/env bash
# The main job: installs what is missing, builds the example programs (Release), and runs the
# recipe's stages that exist so far — the offline default corpus, the tokenizer trained on it,
# and the model it feeds. It grows into nanochat's whole recipe (pretraining -> evaluation ->
# chat) as the stages land. Artifacts go to $NANOCHAT_BASE_DIR (default ~/.cache/nanochat).
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
