"""The fixture tokenizer of the C++ tests (tests/fixtures/tokenizer/ranks_2048.tiktoken with
nanochat's split pattern and special tokens) as a tiktoken Encoding, for the fixture generators
that render conversations and prompts."""

import base64
import pathlib

import tiktoken

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPLIT_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
SPECIALS = ["<|bos|>", "<|user_start|>", "<|user_end|>", "<|assistant_start|>", "<|assistant_end|>",
            "<|python_start|>", "<|python_end|>", "<|output_start|>", "<|output_end|>"]


def load_tokenizer():
    ranks = {}
    for line in (ROOT / "fixtures" / "tokenizer" / "ranks_2048.tiktoken").read_text().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    specials = {s: len(ranks) + i for i, s in enumerate(SPECIALS)}
    return tiktoken.Encoding("fixture", pat_str=SPLIT_PATTERN, mergeable_ranks=ranks, special_tokens=specials)
