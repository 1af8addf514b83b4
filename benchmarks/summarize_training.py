#!/usr/bin/env python3
"""Summarises a log of benchmarks/compare_training.sh: per measurement the median, range and
every round's value, then ours / PyTorch per round (both measured in the same round) and the
median of those ratios, and the median time split of each bench_model step. Given several logs
(runs of the same tree at different hours), it summarises the first in full and adds each ratio's
median per run and over the rounds of all runs pooled, with how many rounds reach the goal: the
host's speed drifts from hour to hour.
Usage: python3 benchmarks/summarize_training.py LOG [EARLIER_LOG ...]"""
import re
import statistics
import sys

SCALE = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "m": 1e-3, "u": 1e-6, "n": 1e-9}
SPLIT = ["attention", "block linears", "embedding", "lm_head", "relu^2", "rmsnorm", "rotary", "softcap + cross-entropy"]
RATIOS = [  # (ours, PyTorch)
    ("train_step_d4_v65536_t1024_b1 tok/s", "torch d4 float32 tok/s"),
    ("train_step_d8_v8192_t512_b4 tok/s", "torch d8 float32 tok/s"),
    ("train_step_bf16_d4_v65536_t1024_b1 tok/s", "torch d4 bfloat16 tok/s"),
    ("train_step_bf16_d8_v8192_t512_b4 tok/s", "torch d8 bfloat16 tok/s"),
    ("base_train float32", "torch main float32"),
    ("base_train bfloat16", "torch main bfloat16"),
]
GOAL = 1.5  # ours / PyTorch that issues #4 and #7 ask for


def number(text):
    m = re.fullmatch(r"([\d.]+)([kMGTmun]?)(/s)?", text)
    if not m:
        raise ValueError(f"not a benchmark number: {text!r}")
    return float(m.group(1)) * SCALE[m.group(2)]


def parse(lines):
    values, splits = {}, {}
    for line in lines:
        fields = line.split()
        if m := re.match(r"^(\S*gemm\S*)/real_time\s", line):
            values.setdefault(m.group(1) + " GFLOP/s", []).append(number(fields[-1]) / 1e9)
        elif m := re.match(r"^(train_step[^/\s]+)(?:/iterations:\d+)?/real_time\s+(\d+) ms", line):
            # name, time, unit, cpu, unit, iterations, GFLOP/s, eight shares, tok/s
            values.setdefault(m.group(1) + " GFLOP/s", []).append(number(fields[6]))
            values.setdefault(m.group(1) + " tok/s", []).append(number(fields[15]))
            splits.setdefault(m.group(1), []).append([number(f) for f in fields[7:15]])
        elif m := re.match(r"^(d[48] \w+):.*, (\d+) tokens/s, ([\d.]+) GFLOP", line):
            values.setdefault(f"torch {m.group(1)} tok/s", []).append(float(m.group(2)))
            values.setdefault(f"torch {m.group(1)} GFLOP/s", []).append(float(m.group(3)))
        elif m := re.match(r"^base_train main (\w+) median tok/s (\d+)", line):
            values.setdefault(f"base_train {m.group(1)}", []).append(float(m.group(2)))
        elif m := re.match(r"^main (\w+):.* ([\d.]+) tok/s", line):
            values.setdefault(f"torch main {m.group(1)}", []).append(float(m.group(2)))
    return values, splits


def ratios(values):
    """ours / PyTorch of every round, per pair of RATIOS that the log measured."""
    return {(ours, theirs): [a / b for a, b in zip(values[ours], values[theirs])]
            for ours, theirs in RATIOS if ours in values and theirs in values}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    runs = []
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as f:
            runs.append(parse(f))
        if not runs[-1][0]:
            sys.exit(f"{path}: no benchmark lines found")
    values, splits = runs[0]
    per_run = [ratios(v) for v, _ in runs]
    for name, v in values.items():
        print(f"{name:48s} median {statistics.median(v):8.1f}  range {min(v):8.1f}-{max(v):8.1f}  rounds {[round(x) for x in v]}")
    for (ours, theirs), r in per_run[0].items():
        print(f"{ours} / {theirs}: median {statistics.median(r):.2f}x, rounds {[round(x, 2) for x in r]}")
    if len(runs) > 1:
        for pair in per_run[0]:
            found = [run[pair] for run in per_run if pair in run]
            pooled = [x for r in found for x in r]
            print(f"{pair[0]} / {pair[1]} over {len(found)} runs: medians {[round(statistics.median(r), 2) for r in found]}, "
                  f"pooled {len(pooled)} rounds: median {statistics.median(pooled):.2f}x, "
                  f"{sum(x >= GOAL for x in pooled)} at {GOAL}x or more")
    for name, rows in splits.items():
        shares = ", ".join(f"{part} {100 * statistics.median(row[i] for row in rows):.1f}%" for i, part in enumerate(SPLIT))
        print(f"{name} time split (median share): {shares}")


if __name__ == "__main__":
    main()
