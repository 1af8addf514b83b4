#!/usr/bin/env python3
"""Tests the tokenizer.pkl converters (nanochat's pickle to our directory, and back): run with
`python3 -m pytest examples/convert` or directly. Needs tiktoken (to make the pickle the way
nanochat does and to read the result back); the way back also needs torch (token_bytes.pt)."""
import json
import pickle
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import tiktoken
from tiktoken.load import load_tiktoken_bpe

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FIXTURES = ROOT / "tests/fixtures/tokenizer"
sys.path.insert(0, str(HERE))
from tokenizer_pkl_to_nanochat import SPLIT_PATTERN, convert  # noqa: E402

SPECIALS = ["<|bos|>", "<|user_start|>", "<|user_end|>", "<|assistant_start|>", "<|assistant_end|>",
            "<|python_start|>", "<|python_end|>", "<|output_start|>", "<|output_end|>"]


def nanochat_encoding(vocab=2048):
    ranks = load_tiktoken_bpe(str(FIXTURES / f"ranks_{vocab}.tiktoken"))
    return tiktoken.Encoding(name="rustbpe", pat_str=SPLIT_PATTERN, mergeable_ranks=ranks,
                             special_tokens={s: len(ranks) + i for i, s in enumerate(SPECIALS)})


def test_converts_a_nanochat_pickle():
    enc = nanochat_encoding()
    with tempfile.TemporaryDirectory() as tmp:
        pkl = Path(tmp) / "tokenizer.pkl"
        pkl.write_bytes(pickle.dumps(enc))  # what nanochat's RustBPETokenizer.save writes
        out = Path(tmp) / "out"
        subprocess.run([sys.executable, str(HERE / "tokenizer_pkl_to_nanochat.py"), str(pkl), str(out)], check=True)
        # byte-identical to the committed conversion that the C++ tests load
        for name in ("tokenizer.tiktoken", "tokenizer.json", "token_bytes.bin"):
            assert (out / name).read_bytes() == (FIXTURES / "converted_2048" / name).read_bytes(), name
        ranks = load_tiktoken_bpe(str(out / "tokenizer.tiktoken"))
        assert ranks == enc._mergeable_ranks
        config = json.loads((out / "tokenizer.json").read_text())
        assert config["pattern"] == SPLIT_PATTERN
        assert config["special_tokens"] == enc._special_tokens
        lengths = struct.unpack(f"<{enc.n_vocab}i", (out / "token_bytes.bin").read_bytes())
        assert list(lengths) == [len(enc.decode_single_token_bytes(i)) for i in range(len(ranks))] + [0] * 9
        assert not list(out.glob("*.tmp"))


def test_refuses_foreign_pickles():
    with tempfile.TemporaryDirectory() as tmp:
        evil = Path(tmp) / "evil.pkl"
        evil.write_bytes(pickle.dumps(subprocess.Popen))  # any class outside tiktoken.Encoding
        try:
            convert(evil, Path(tmp) / "out")
        except pickle.UnpicklingError as e:
            assert "refusing" in str(e)
        else:
            raise AssertionError("converted a pickle that is not a tiktoken Encoding")
        bad = Path(tmp) / "bad.pkl"
        bad.write_bytes(pickle.dumps(tiktoken.Encoding(name="x", pat_str=r"\s+",
                                                       mergeable_ranks=nanochat_encoding()._mergeable_ranks,
                                                       special_tokens={})))
        try:
            convert(bad, Path(tmp) / "out2")
        except ValueError as e:
            assert "not nanochat's" in str(e)
        else:
            raise AssertionError("converted a tokenizer with a foreign split pattern")


def test_round_trip_through_nanochat_pkl():
    """Our directory -> nanochat's tokenizer.pkl + token_bytes.pt -> our directory, byte-identical,
    and the pickle tokenizes as nanochat's own Encoding does."""
    import torch
    with tempfile.TemporaryDirectory() as tmp:
        nanochat_dir, back = Path(tmp) / "nanochat", Path(tmp) / "back"
        subprocess.run([sys.executable, str(HERE / "tokenizer_to_nanochat_pkl.py"), str(FIXTURES / "converted_2048"),
                        str(nanochat_dir)], check=True)
        enc = pickle.loads((nanochat_dir / "tokenizer.pkl").read_bytes())
        reference = nanochat_encoding()
        text = "Hello world! <|bos|> 12345 don't  stop\n\ttabs"
        assert enc.encode(text, allowed_special="all") == reference.encode(text, allowed_special="all")
        sizes = torch.load(nanochat_dir / "token_bytes.pt")
        assert sizes.dtype == torch.int32 and sizes.tolist()[: len(reference._mergeable_ranks)] == [
            len(reference.decode_single_token_bytes(i)) for i in range(len(reference._mergeable_ranks))]
        subprocess.run([sys.executable, str(HERE / "tokenizer_pkl_to_nanochat.py"), str(nanochat_dir / "tokenizer.pkl"),
                        str(back)], check=True)
        for name in ("tokenizer.tiktoken", "tokenizer.json", "token_bytes.bin"):
            assert (back / name).read_bytes() == (FIXTURES / "converted_2048" / name).read_bytes(), name
        assert not list(nanochat_dir.glob("*.tmp"))


def test_round_trip_refuses_a_truncated_token_bytes():
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("tokenizer.tiktoken", "tokenizer.json"):
            (src / name).write_bytes((FIXTURES / "converted_2048" / name).read_bytes())
        (src / "token_bytes.bin").write_bytes((FIXTURES / "converted_2048" / "token_bytes.bin").read_bytes()[:-4])
        run = subprocess.run([sys.executable, str(HERE / "tokenizer_to_nanochat_pkl.py"), str(src), str(Path(tmp) / "o")],
                             capture_output=True, text=True)
        assert run.returncode == 1 and "token_bytes.bin" in run.stderr and "expected" in run.stderr, run.stderr


if __name__ == "__main__":
    test_converts_a_nanochat_pickle()
    test_refuses_foreign_pickles()
    test_round_trip_through_nanochat_pkl()
    test_round_trip_refuses_a_truncated_token_bytes()
    print("ok")
