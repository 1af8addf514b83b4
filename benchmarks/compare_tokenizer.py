#!/usr/bin/env python3
"""Tokenizer speed, side by side on one machine, corpus and vocabulary: our C++ trainer and
encoder (benchmarks/bench_tokenizer) against PyPI's rustbpe (training, what nanochat uses) and
tiktoken (encode_ordinary and its batch form). Also checks that the C++ trainer's result equals
rustbpe's. Prints a markdown table for docs/benchmarks.md.

  pip install rustbpe tiktoken
  python3 benchmarks/compare_tokenizer.py make-corpus /tmp/tok_corpus.txt --mb 64
  python3 benchmarks/compare_tokenizer.py run --corpus /tmp/tok_corpus.txt --vocab 32768 \\
      --bench build/release/benchmarks/bench_tokenizer

The corpus (documents separated by U+001E) is built from text on a Debian machine: Debian
package changelogs, Python's standard library sources, and generated multilingual text from
tests/reference/make_tokenizer_fixtures.py.
"""
import argparse
import base64
import gzip
import json
import os
import random
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

SEP = "\x1e"


def make_corpus(out, mb):
    budget = mb << 20
    third = budget // 3
    docs, size = [], 0

    def add(text, limit):
        nonlocal size
        text = text.replace(SEP, " ")
        if not text.strip() or size >= limit:
            return
        docs.append(text)
        size += len(text.encode("utf-8"))

    for path in sorted(Path("/usr/share/doc").glob("*/changelog*.gz")):
        try:
            add(gzip.open(path).read().decode("utf-8", "replace"), third)
        except OSError:
            continue
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        if "site-packages" not in path.parts:
            add(path.read_bytes().decode("utf-8", "replace"), 2 * third)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests/reference"))
    from make_tokenizer_fixtures import document
    rng = random.Random(99)
    while size < budget:
        add(document(rng), budget)
    Path(out).write_bytes(SEP.join(docs).encode("utf-8"))
    print(f"{out}: {len(docs)} documents, {size / 1e6:.1f} MB")


def run(args):
    import rustbpe
    import tiktoken
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests/reference"))
    from make_tokenizer_fixtures import SPECIALS, SPLIT_PATTERN

    docs = Path(args.corpus).read_bytes().decode("utf-8").split(SEP)
    tok = rustbpe.Tokenizer()
    tok.train_from_iterator(iter(docs), args.vocab, pattern=SPLIT_PATTERN)
    ranks = {bytes(b): r for b, r in tok.get_mergeable_ranks()}
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    threads = os.cpu_count()
    print(f"corpus {nbytes / 1e6:.1f} MB, {len(docs)} documents, vocab {args.vocab}, {threads} cores, "
          f"load average {os.getloadavg()[0]:.1f}")

    enc = tiktoken.Encoding(name="bench", pat_str=SPLIT_PATTERN, mergeable_ranks=ranks,
                            special_tokens={s: len(ranks) + i for i, s in enumerate(SPECIALS)})
    with tempfile.TemporaryDirectory() as tmp:
        ours_dir, trained_dir = Path(tmp) / "ours", Path(tmp) / "trained"
        ours_dir.mkdir()
        with open(ours_dir / "tokenizer.tiktoken", "w") as f:
            for b, r in sorted(ranks.items(), key=lambda kv: kv[1]):
                f.write(f"{base64.b64encode(b).decode()} {r}\n")
        (ours_dir / "tokenizer.json").write_text(json.dumps(
            {"pattern": SPLIT_PATTERN, "special_tokens": {s: len(ranks) + i for i, s in enumerate(SPECIALS)}}))
        env = dict(os.environ, NANOCHAT_TOKENIZER_CORPUS=args.corpus, NANOCHAT_TOKENIZER_DIR=str(ours_dir),
                   NANOCHAT_TOKENIZER_VOCAB=str(args.vocab), NANOCHAT_TOKENIZER_TRAINED=str(trained_dir))

        def bench(flags):
            out = subprocess.run([args.bench, "--benchmark_format=json", *flags], env=env, check=True,
                                 capture_output=True, text=True).stdout
            return [b for b in json.loads(out)["benchmarks"] if b.get("run_type") == "iteration"]

        # Training alternates between the two sides and keeps each side's best run: the machine
        # may be shared, and alternating spreads any disturbance over both.
        rust_train = ours_train = float("inf")
        for _ in range(args.train_repeats):
            t0 = time.perf_counter()
            tok = rustbpe.Tokenizer()
            tok.train_from_iterator(iter(docs), args.vocab, pattern=SPLIT_PATTERN)
            rust_train = min(rust_train, time.perf_counter() - t0)
            ours_train = min(ours_train, bench(["--benchmark_filter=BM_Train"])[0]["real_time"])
        same = (trained_dir / "tokenizer.tiktoken").read_text() == (ours_dir / "tokenizer.tiktoken").read_text()
        # Encoding alternates too. Single-thread speed is also given per CPU second (thread CPU
        # time), which a busy machine disturbs much less than wall time.
        tik_single = tik_single_cpu = tik_batch = single = single_cpu = 0.0
        batches = {}
        for _ in range(args.repeats):
            wall, cpu = time.perf_counter(), time.thread_time()
            for d in docs:
                enc.encode_ordinary(d)
            wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
            tik_single, tik_single_cpu = max(tik_single, nbytes / wall / 1e6), max(tik_single_cpu, nbytes / cpu / 1e6)
            b = bench(["--benchmark_filter=BM_EncodeOrdinary"])[0]
            single = max(single, nbytes / (b["real_time"] / 1e3) / 1e6)  # real_time in ms
            single_cpu = max(single_cpu, nbytes / (b["cpu_time"] / 1e3) / 1e6)
            tik_batch = max(tik_batch, nbytes / timed(lambda: enc.encode_ordinary_batch(docs, num_threads=threads)) / 1e6)
            for b in bench(["--benchmark_filter=BM_EncodeBatch"]):
                t = int(b["run_name"].split("/")[1])
                batches[t] = max(batches.get(t, 0), b["bytes_per_second"] / 1e6)
    print(f"rustbpe train: {rust_train:.2f} s; ours {ours_train:.2f} s")
    print(f"C++ trainer result identical to rustbpe's: {same}")
    print()
    print(f"| Task ({nbytes / 1e6:.0f} MB, vocab {args.vocab}, {threads} cores) | rustbpe / tiktoken | nanochat.cpp | ratio |")
    print("|---|---|---|---|")
    print(f"| train (split + count + merges), s | {rust_train:.2f} | {ours_train:.2f} | {rust_train / ours_train:.2f}x |")
    print(f"| encode_ordinary, 1 thread, MB/s (wall) | {tik_single:.1f} | {single:.1f} | {single / tik_single:.2f}x |")
    print(f"| encode_ordinary, 1 thread, MB per CPU s | {tik_single_cpu:.1f} | {single_cpu:.1f} | {single_cpu / tik_single_cpu:.2f}x |")
    top = max(batches)
    print(f"| batch encode, {top} threads, MB/s | {tik_batch:.1f} | {batches[top]:.1f} | {batches[top] / tik_batch:.2f}x |")
    for t in sorted(batches):
        print(f"| batch encode scaling: {t} threads, MB/s | | {batches[t]:.1f} | {batches[t] / batches[min(batches)]:.2f}x vs 1 thread |")
    print(f"\nload average after the run: {os.getloadavg()[0]:.1f}")
    if not same:
        sys.exit("the C++ trainer's tokens differ from rustbpe's")


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-corpus")
    mk.add_argument("out")
    mk.add_argument("--mb", type=int, default=64)
    rn = sub.add_parser("run")
    rn.add_argument("--corpus", required=True)
    rn.add_argument("--vocab", type=int, default=32768)
    rn.add_argument("--bench", default="build/release/benchmarks/bench_tokenizer")
    rn.add_argument("--repeats", type=int, default=3, help="encoding runs per side, alternating (best taken)")
    rn.add_argument("--train-repeats", type=int, default=3, help="training runs per side (best taken)")
    args = p.parse_args()
    if args.cmd == "make-corpus":
        make_corpus(args.out, args.mb)
    else:
        run(args)


if __name__ == "__main__":
    main()
