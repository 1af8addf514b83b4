#!/usr/bin/env bash
# Training speed side by side with PyTorch, in interleaved rounds so that both sides see the same
# minutes of a shared machine: our GEMMs beside OpenBLAS's, bench_model's training steps (d4 and
# d8, fp32 and bf16), each right next to benchmarks/gpt_pytorch_reference.py's, and base_train on
# the main job's config beside benchmarks/train_pytorch_reference.py. Needs the main job's corpus and tokenizer
# in $NANOCHAT_BASE_DIR (run examples/run_main.sh once) and Debian's torch (examples/setup.sh installs
# python3-torch; /usr/bin/python3 is the interpreter that has it).
# Usage: benchmarks/compare_training.sh [rounds]   (default 5; each takes about 3 minutes)
# The raw log goes to build/compare_training.log and stays as build/compare_training-<start>.log;
# benchmarks/summarize_training.py prints the medians and the per-round ratios at the end, and
# pools the rounds of earlier runs when given their logs too (the host's speed drifts by the hour).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rounds=${1:-5}
# Debian's OpenBLAS 0.3.21 runs its SSE3 kernels on CPUs newer than it knows (Sapphire Rapids
# and later) unless told; torch's fp32 matmuls go through it.
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX}
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DNANOCHAT_BUILD_TESTS=OFF \
      -DNANOCHAT_BUILD_EXAMPLES=ON -DNANOCHAT_BUILD_BENCHMARKS=ON >/dev/null
cmake --build build/release -j "$(nproc)" --target bench_core bench_model base_train
bench=build/release/benchmarks
[ -d "${NANOCHAT_BASE_DIR:-$HOME/.cache/nanochat}/tokenizer" ] ||
  { echo "compare_training.sh: no tokenizer in \$NANOCHAT_BASE_DIR; run examples/run_main.sh first" >&2; exit 1; }

# base_train's median tok/s over steps 15-39 (the first steps warm up).
base_train() {
  build/release/examples/base_train --depth 4 --max-seq-len 256 --device-batch-size 8 --total-batch-size 2048 \
      --num-iterations 40 --eval-every -1 --eval-tokens 2048 --sample-every -1 --model-tag bench --dtype "$1" 2>&1 |
    grep -E "^step 000(1[5-9]|[23][0-9])/" | awk -F'|' '{print $6}' | tr -d ' tok/sec:' | sort -n |
    awk -v dtype="$1" '{a[NR] = $1} END {print "base_train main", dtype, "median tok/s", a[int((NR + 1) / 2)], "best", a[NR]}'
}

log=build/compare_training.log
kept=build/compare_training-$(date -u +%Y%m%dT%H%MZ).log
for round in $(seq "$rounds"); do
  echo "=== round $round $(date +%T) $(uptime | sed 's/.*load/load/')"
  "$bench/bench_core" --benchmark_filter=gemm --benchmark_counters_tabular=true 2>&1 | grep -E "gemm"
  # Each training step beside PyTorch's straight after it (or before it, every other round), so
  # that a pair sees the same minute of the host.
  for config in d4 d8; do
    for dtype in float32 bfloat16; do
      pair=(ours torch)
      [ $((round % 2)) -eq 0 ] && pair=(torch ours)
      for side in "${pair[@]}"; do
        if [ "$side" = ours ]; then
          prefix=train_step_; [ "$dtype" = bfloat16 ] && prefix=train_step_bf16_
          "$bench/bench_model" --benchmark_filter="^${prefix}${config}_" --benchmark_counters_tabular=true 2>&1 | grep -E "^train"
        else
          /usr/bin/python3 benchmarks/gpt_pytorch_reference.py --threads 2 --steps 5 --config "$config" --dtype "$dtype" 2>&1 |
            grep -E "^d[48]"
        fi
      done
    done
  done
  base_train float32
  base_train bfloat16
  /usr/bin/python3 benchmarks/train_pytorch_reference.py --config main --steps 10 2>&1 | grep -E "^main"
done | tee "$log"
cp "$log" "$kept"
python3 benchmarks/summarize_training.py "$log"
