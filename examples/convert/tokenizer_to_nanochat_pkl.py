#!/usr/bin/env python3
"""Converts a nanochat.cpp tokenizer directory (tokenizer.tiktoken, tokenizer.json,
token_bytes.bin) into the files nanochat's own scripts load from $NANOCHAT_BASE_DIR/tokenizer:

  tokenizer.pkl    a pickled tiktoken Encoding (pattern, ranks, special tokens), as tok_train writes
  token_bytes.pt   torch int32 tensor [V]: raw byte length of each token, 0 for special tokens

  python3 examples/convert/tokenizer_to_nanochat_pkl.py ~/.cache/nanochat/tokenizer OUT_DIR

The reverse of tokenizer_pkl_to_nanochat.py, so that nanochat itself can train on our corpus
with our tokenizer (benchmarks/compare_nanochat.sh). Needs tiktoken and torch (nanochat's own
dependencies). Files are written to temporary names and renamed.
"""
import argparse
import json
import os
import pickle
import struct
import sys
from pathlib import Path


def fail(message):
    print(f"tokenizer_to_nanochat_pkl: {message}", file=sys.stderr)
    sys.exit(1)


def write_atomically(path, write):
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tokenizer_dir", type=Path, help="nanochat.cpp tokenizer directory")
    parser.add_argument("out_dir", type=Path, help="where tokenizer.pkl and token_bytes.pt go")
    args = parser.parse_args()
    try:
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe
        import torch
    except ImportError as e:
        fail(f"needs tiktoken and torch ({e})")

    ranks_path = args.tokenizer_dir / "tokenizer.tiktoken"
    meta_path = args.tokenizer_dir / "tokenizer.json"
    sizes_path = args.tokenizer_dir / "token_bytes.bin"
    for path in (ranks_path, meta_path, sizes_path):
        if not path.is_file():
            fail(f"{path}: missing (is {args.tokenizer_dir} a tokenizer directory written by tok_train?)")
    try:
        ranks = load_tiktoken_bpe(str(ranks_path))
    except Exception as e:  # tiktoken raises plain ValueError/binascii errors on a bad line
        fail(f"{ranks_path}: {e}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        pattern, specials = meta["pattern"], meta["special_tokens"]
    except (ValueError, KeyError, TypeError) as e:
        fail(f"{meta_path}: not a tokenizer.json with 'pattern' and 'special_tokens' ({e})")
    if not isinstance(specials, dict) or not all(isinstance(v, int) for v in specials.values()):
        fail(f"{meta_path}: 'special_tokens' must map names to integer ids")
    vocab = len(ranks) + len(specials)
    blob = sizes_path.read_bytes()
    if len(blob) != 4 * vocab:
        fail(f"{sizes_path}: {len(blob)} bytes, expected 4 x {vocab} (one int32 per token id)")
    sizes = list(struct.unpack(f"<{vocab}i", blob))

    encoding = tiktoken.Encoding(name="rustbpe", pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(args.out_dir / "tokenizer.pkl", lambda f: pickle.dump(encoding, f))
    write_atomically(args.out_dir / "token_bytes.pt", lambda f: torch.save(torch.tensor(sizes, dtype=torch.int32), f))
    print(f"wrote {args.out_dir}/tokenizer.pkl and token_bytes.pt ({vocab} tokens, {len(specials)} special)")


if __name__ == "__main__":
    main()
