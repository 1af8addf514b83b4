#!/usr/bin/env bash
# The main job: installs what is missing, builds the example programs (Release), and runs the
# stages that exist so far. It grows into nanochat's whole recipe (tokenizer -> pretraining ->
# evaluation -> chat) as the stages land. Extra arguments go to model_info (e.g. --depth 20).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash examples/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DNANOCHAT_BUILD_TESTS=OFF \
      -DNANOCHAT_BUILD_BENCHMARKS=OFF
cmake --build build/release -j "$(nproc)"

echo "== model: what --depth means"
build/release/examples/model_info --depth 4 "$@"
