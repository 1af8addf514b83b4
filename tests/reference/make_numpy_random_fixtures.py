#!/usr/bin/env python3
"""Writes tests/fixtures/tasks/numpy_random.json (committed; CI never runs this): numpy's own
output for what tasks/numpy_random.hpp reproduces, i.e. the row order of Hugging Face's
Dataset.shuffle(seed), which is np.random.default_rng(seed).permutation(len(dataset)).

  seed_state    SeedSequence(seed).generate_state(4, np.uint64), hex (JSON numbers hold 53 bits)
  raw           PCG64(seed).random_raw(8), hex
  permutations  default_rng(seed).permutation(n) in full for small n; for n > 2^16 the first and
                last 50 entries and FNV-1a 64 of ",".join(the permutation's decimal numbers)

Needs numpy: `python3 -m venv build/ref-venv && build/ref-venv/bin/pip install numpy`, then
`build/ref-venv/bin/python tests/reference/make_numpy_random_fixtures.py`.
"""
import json
import pathlib

import numpy as np

OUT = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "tasks" / "numpy_random.json"
# 2**32 + 5 and 2**64 - 1 take two 32-bit entropy words; 0 is the one word [0].
SEEDS = [0, 1, 42, 12345, 2**32 + 5, 2**64 - 1]
SMALL = [1, 2, 3, 10, 1000]
LARGE = [65537, 460341]  # past 2^16; SmolTalk's train split has ~460K rows


def fnv1a64(text):
    h = 0xCBF29CE484222325
    for byte in text.encode():
        h = ((h ^ byte) * 0x100000001B3) % 2**64
    return h


def main():
    out = {"numpy": np.__version__, "seed_state": {}, "raw": {}, "permutations": []}
    for seed in SEEDS:
        state = np.random.SeedSequence(seed).generate_state(4, np.uint64)
        out["seed_state"][str(seed)] = [f"{int(w):#018x}" for w in state]
        raw = np.random.PCG64(seed).random_raw(8)
        out["raw"][str(seed)] = [f"{int(w):#018x}" for w in raw]
    for seed in [0, 42, 12345, 2**32 + 5]:
        for n in SMALL:
            perm = [int(v) for v in np.random.default_rng(seed).permutation(n)]
            out["permutations"].append({"seed": str(seed), "n": n, "all": perm})
    for n in LARGE:
        perm = [int(v) for v in np.random.default_rng(42).permutation(n)]
        out["permutations"].append({"seed": "42", "n": n, "first": perm[:50], "last": perm[-50:],
                                    "fnv1a64": f"{fnv1a64(','.join(map(str, perm))):#018x}"})
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
