#!/usr/bin/env python3
"""Parquet read throughput: our reader (bench_data's parquet_read) against pyarrow, same file.

Usage (from the repository root, after building bench_data, e.g. benchmarks/run.sh or
`cmake --build build/release --target bench_data`):
    pip install pyarrow && python3 benchmarks/compare_parquet.py [path/to/bench_data]

The file imitates a FineWeb-EDU shard (§4.1 of the spec): one string column "text", row groups of
1024 documents, zstd level 3, no dictionary, no statistics. Documents are random runs of KJV
verses (from `bible`, the offline corpus' source), so pages compress like prose, not like
repeated text. pyarrow is timed two ways: decoding into Arrow arrays, and to_pylist() per row
group as nanochat's parquets_iter_batched does; best of 5 runs each (ours: best of 5
Google Benchmark repetitions, each the mean of its iterations).
"""
import json
import os
import pathlib
import random
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARD = ROOT / "build" / "bench_data" / "fineweb_like.parquet"
DOCS = 1024 * 24


def write_shard():
    verses = subprocess.run("bible -f gen1:1-rev22:21 </dev/null", shell=True, check=True,
                            capture_output=True, text=True).stdout.splitlines()
    verses = [v.split(" ", 1)[1] for v in verses if " " in v]
    rng = random.Random(42)
    docs = [" ".join(rng.choice(verses) for _ in range(rng.randint(5, 40))) for _ in range(DOCS)]
    SHARD.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({"text": docs})
    pq.write_table(table, SHARD, row_group_size=1024, compression="zstd", compression_level=3,
                   use_dictionary=False, write_statistics=False)


def best_of(runs, fn):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    bench = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "build" / "release" / "benchmarks" / "bench_data")
    if not SHARD.exists():
        write_shard()
    file_mb = SHARD.stat().st_size / 1e6
    pf = pq.ParquetFile(SHARD)
    text_mb = sum(len(t.encode()) for g in range(pf.num_row_groups)
                  for t in pf.read_row_group(g, columns=["text"]).column("text").to_pylist()) / 1e6

    def arrow():
        f = pq.ParquetFile(SHARD)
        for g in range(f.num_row_groups):
            f.read_row_group(g, columns=["text"])

    def pylist():
        f = pq.ParquetFile(SHARD)
        for g in range(f.num_row_groups):
            f.read_row_group(g, columns=["text"]).column("text").to_pylist()

    t_arrow = best_of(5, arrow)
    t_pylist = best_of(5, pylist)
    out = subprocess.run([bench, "--benchmark_filter=parquet_read", "--benchmark_format=json",
                          "--benchmark_repetitions=5"],
                         check=True, capture_output=True, text=True,
                         env={**os.environ, "NANOCHAT_BENCH_PARQUET": str(SHARD)})
    runs = [b for b in json.loads(out.stdout)["benchmarks"] if b.get("run_type") == "iteration"]
    t_ours = min(b["real_time"] for b in runs) / 1e3  # best repetition, ms -> s

    print(f"file: {SHARD} ({file_mb:.1f} MB on disk, {text_mb:.1f} MB of text, {pf.num_row_groups} row groups)")
    print(f"pyarrow {pa.__version__}; times are best of runs, text MB/s = decoded text bytes / time")
    print("| reader | time (ms) | text MB/s | file MB/s | time / ours |")
    print("|---|---|---|---|---|")
    for name, t in (("nanochat.cpp ParquetReader -> std::string", t_ours),
                    ("pyarrow read_row_group (Arrow arrays)", t_arrow),
                    ("pyarrow read_row_group + to_pylist", t_pylist)):
        print(f"| {name} | {t * 1e3:.1f} | {text_mb / t:.0f} | {file_mb / t:.0f} | {t / t_ours:.2f}x |")


if __name__ == "__main__":
    main()
