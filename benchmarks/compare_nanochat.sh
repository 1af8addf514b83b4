#!/usr/bin/env bash
# base_train side by side with nanochat's own base_train (the Python original, on PyTorch from
# PyPI), same config and data: d4, T 512, device batch 4, total batch 2,048 tokens, the main job's
# offline corpus (its JSONL shards written as parquet) and its 4,096-token tokenizer (converted
# to nanochat's tokenizer.pkl). Interleaved rounds (ours fp32, nanochat, ours bf16; the order
# alternates) so both sides see the same minutes of a shared machine. Each side's figure is the median tok/s over steps 15-39 (nanochat's first
# steps include torch.compile).
#
# Needs: a nanochat checkout in $NANOCHAT_SRC (f37d45c is the version we compare with), the main
# job's corpus and tokenizer in $NANOCHAT_BASE_DIR (run examples/run_main.sh once), and network
# access to PyPI the first time: the venv is created under build/nanochat-venv (never committed).
# Without $NANOCHAT_SRC it says so and exits 0.
# Usage: NANOCHAT_SRC=~/src/nanochat benchmarks/compare_nanochat.sh [rounds] [threads]   (default 3, 2)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rounds=${1:-3}
threads=${2:-2}
if [ -z "${NANOCHAT_SRC:-}" ] || [ ! -f "${NANOCHAT_SRC}/scripts/base_train.py" ]; then
  echo "compare_nanochat.sh: skipped: set NANOCHAT_SRC to a nanochat checkout (scripts/base_train.py)" >&2
  exit 0
fi
base=${NANOCHAT_BASE_DIR:-$HOME/.cache/nanochat}
[ -d "$base/tokenizer" ] && [ -d "$base/offline_data" ] ||
  { echo "compare_nanochat.sh: no corpus or tokenizer in $base; run examples/run_main.sh first" >&2; exit 1; }

venv=build/nanochat-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch, numpy, tiktoken, rustbpe, pyarrow, wandb" 2>/dev/null; then
  python3 -m venv "$venv"
  # nanochat's dependencies that base_train imports; torch as nanochat pins it (>= 2.8), from PyPI.
  "$venv/bin/pip" install -q "torch==2.9.1" numpy tiktoken tokenizers regex psutil pyarrow wandb filelock requests jinja2 \
      pyyaml rustbpe
fi

# nanochat's view of the same data: its base_data/ is our shards, its tokenizer our tokenizer.
work=build/compare_nanochat
mkdir -p "$work/base/base_data"
# nanochat reads parquet shards with a `text` column; ours are JSONL (one {"text": ...} per line).
"$venv/bin/python" - "$base/offline_data" "$work/base/base_data" <<'PY'
import json, pathlib, sys
import pyarrow as pa, pyarrow.parquet as pq
src, dst = map(pathlib.Path, sys.argv[1:])
shards = sorted(src.glob("shard_*.jsonl"))
if not shards:
    sys.exit(f"compare_nanochat.sh: no shard_*.jsonl in {src}")
for shard in shards:
    texts = [json.loads(line)["text"] for line in shard.open(encoding="utf-8") if line.strip()]
    out = dst / (shard.stem + ".parquet")
    pq.write_table(pa.table({"text": texts}), out.with_suffix(".tmp"), row_group_size=1024)
    out.with_suffix(".tmp").rename(out)
PY
"$venv/bin/python" examples/convert/tokenizer_to_nanochat_pkl.py "$base/tokenizer" "$work/base/tokenizer"

cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DNANOCHAT_BUILD_TESTS=OFF \
      -DNANOCHAT_BUILD_EXAMPLES=ON -DNANOCHAT_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build/release -j "$(nproc)" --target base_train

export OMP_NUM_THREADS=$threads
steps=40
# The median and best tok/s of steps 15-39 of a log on stdin (both programs print nanochat's line).
median_tok() {
  grep -E "^step 000(1[5-9]|[23][0-9])/" | sed -E 's/.*tok\/sec: ([0-9,]+).*/\1/' | tr -d , | sort -n |
    awk -v what="$1" '{a[NR] = $1} END {if (NR == 0) {print what, "no steps logged"; exit 1}
                                        print what, "median tok/s", a[int((NR + 1) / 2)], "best", a[NR]}'
}
ours() {
  build/release/examples/base_train --depth 4 --max-seq-len 512 --device-batch-size 4 --total-batch-size 2048 \
      --num-iterations $steps --eval-every -1 --eval-tokens 2048 --sample-every -1 --model-tag compare_nanochat \
      --dtype "$1" 2>&1 | median_tok "ours $1"
}
nanochat() {
  (cd "$NANOCHAT_SRC" && NANOCHAT_BASE_DIR="$root/$work/base" "$root/$venv/bin/python" -m scripts.base_train \
      --device_type=cpu --depth=4 --max_seq_len=512 --device_batch_size=4 --total_batch_size=2048 \
      --num_iterations=$steps --eval_every=100000 --eval_tokens=2048 --core_metric_every=-1 --sample_every=100000 \
      --model_tag=compare_nanochat 2>&1) | median_tok "nanochat float32"
}

log=build/compare_nanochat.log
echo "nanochat $(git -C "$NANOCHAT_SRC" rev-parse --short HEAD 2>/dev/null || echo '(not a git checkout)'), \
torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)'), $threads threads, \
$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" | tee "$log"
for round in $(seq "$rounds"); do
  echo "=== round $round $(date +%T) $(uptime | sed 's/.*load/load/')"
  if [ $((round % 2)) -eq 1 ]; then ours float32; nanochat; ours bfloat16
  else ours bfloat16; nanochat; ours float32; fi
done | tee -a "$log"
# Ratios of the medians over all rounds.
python3 - "$log" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"(ours float32|ours bfloat16|nanochat float32) median tok/s (\d+)", line)
    if m:
        runs.setdefault(m[1], []).append(int(m[2]))
medians = {side: statistics.median(v) for side, v in runs.items()}
for side, m in medians.items():
    print(f"{side}: median of {len(runs[side])} rounds {m:.0f} tok/s")
base = medians.get("nanochat float32")
for side in ("ours float32", "ours bfloat16"):
    if base and side in medians:
        print(f"{side} / nanochat float32: {medians[side] / base:.2f}x")
PY
