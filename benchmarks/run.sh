#!/usr/bin/env bash
# The benchmark command: a Release build of every benchmark program, run one after another so
# they do not share the cores. Extra arguments go to each program (e.g. --benchmark_filter=gemm).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash examples/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DNANOCHAT_BUILD_TESTS=OFF -DNANOCHAT_BUILD_BENCHMARKS=ON
cmake --build build/release -j "$(nproc)" --target nanochat_benchmarks
for bench in build/release/benchmarks/bench_*; do
  [ -x "$bench" ] || continue
  echo "== $bench"
  "$bench" --benchmark_counters_tabular=true "$@"
done
