#!/usr/bin/env python3
"""Converts a nanochat tokenizer.pkl (a pickled tiktoken Encoding, written by nanochat's
tok_train) into nanochat.cpp's tokenizer directory:

  tokenizer.tiktoken  base64 token + rank per line (tiktoken.load.load_tiktoken_bpe reads it)
  tokenizer.json      {"pattern": ..., "special_tokens": {name: id}}
  token_bytes.bin     int32 per id: raw byte length of the token, 0 for special tokens

  python3 examples/convert/tokenizer_pkl_to_nanochat.py ~/.cache/nanochat/tokenizer/tokenizer.pkl OUT_DIR

The pickle is read with an unpickler that only admits tiktoken's Encoding (mapped to a plain
record), so tiktoken need not be installed and a hostile pickle cannot run code. Files are
written to temporary names and renamed.
"""
import argparse
import base64
import json
import os
import pickle
import struct
import sys
from pathlib import Path

SPLIT_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""


class EncodingState:
    """Stands in for tiktoken.core.Encoding while unpickling; keeps the pickled state."""

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise ValueError(f"the pickle holds a named encoding ({state!r}), not a trained one")
        self.state = state


class SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ("tiktoken.core", "Encoding"):
            return EncodingState
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the pickle")


def load(pkl_path):
    with open(pkl_path, "rb") as f:
        enc = SafeUnpickler(f).load()
    if not isinstance(enc, EncodingState):
        raise ValueError(f"{pkl_path}: not a pickled tiktoken Encoding")
    state = enc.state
    for key in ("pat_str", "mergeable_ranks", "special_tokens"):
        if key not in state:
            raise ValueError(f"{pkl_path}: the Encoding has no {key}")
    return state["pat_str"], state["mergeable_ranks"], state["special_tokens"]


def write_atomically(path, data):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def convert(pkl_path, out_dir):
    pattern, ranks, specials = load(pkl_path)
    if pattern != SPLIT_PATTERN:
        raise ValueError(f"{pkl_path}: split pattern {pattern!r} is not nanochat's; nanochat.cpp implements only that one")
    n = len(ranks)
    if sorted(ranks.values()) != list(range(n)):
        raise ValueError(f"{pkl_path}: ranks are not 0..{n - 1}")
    if sorted(specials.values()) != list(range(n, n + len(specials))):
        raise ValueError(f"{pkl_path}: special token ids do not follow the {n} ranks")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_rank = sorted(ranks.items(), key=lambda kv: kv[1])
    write_atomically(out / "tokenizer.tiktoken",
                     "".join(f"{base64.b64encode(b).decode()} {r}\n" for b, r in by_rank).encode())
    config = {"pattern": pattern, "special_tokens": dict(sorted(specials.items(), key=lambda kv: kv[1]))}
    write_atomically(out / "tokenizer.json", (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode())
    lengths = [len(b) for b, _ in by_rank] + [0] * len(specials)
    write_atomically(out / "token_bytes.bin", struct.pack(f"<{len(lengths)}i", *lengths))
    return n, len(specials)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pkl")
    p.add_argument("out_dir")
    args = p.parse_args()
    try:
        n, k = convert(args.pkl, args.out_dir)
    except (OSError, ValueError, pickle.UnpicklingError, EOFError) as e:
        sys.exit(f"tokenizer_pkl_to_nanochat: {e}")
    print(f"{args.out_dir}: {n} ranks + {k} special tokens")


if __name__ == "__main__":
    main()
