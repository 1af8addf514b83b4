#!/usr/bin/env python3
"""Writes the tokenizer parity fixtures under tests/fixtures/tokenizer/ (committed; CI never runs
this). Needs PyPI's rustbpe and tiktoken: `pip install rustbpe tiktoken`.

  corpus.txt            generated documents separated by U+001E (record separator): several
                        scripts, emoji, digits, whitespace runs, CRLF, apostrophes, code
  corpus.jsonl          the same documents as JSONL ({"text": ...} per line), for tok_train
  ranks_<V>.tiktoken    rustbpe's tokens for vocab size V (specials excluded) by rank, in
                        tiktoken's ranks format; rank 256 + k is merge k
  ids_<V>.txt           tiktoken encode_ordinary ids of every document with those ranks, one line
                        per document
  specials_<V>.txt      tiktoken ids of texts that spell special tokens (never special ids)
  converted_2048/       examples/convert/tokenizer_pkl_to_nanochat.py's output for the pickled
                        tiktoken Encoding of vocab 2048 (as nanochat saves it)

Usage: python3 tests/reference/make_tokenizer_fixtures.py [--out DIR]
"""
import argparse
import base64
import json
import pickle
import sys
import tempfile
import random
from pathlib import Path

import rustbpe
import tiktoken

SPLIT_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
SPECIALS = ["<|bos|>", "<|user_start|>", "<|user_end|>", "<|assistant_start|>", "<|assistant_end|>",
            "<|python_start|>", "<|python_end|>", "<|output_start|>", "<|output_end|>"]
VOCAB_SIZES = [300, 2048]
SEPARATOR = "\x1e"

ENGLISH = ("the of and to in a is that for it as was with be by on not he i this are or his from at "
           "which but have an they you were her she there would their we him been has when who will "
           "more no if out so said what up its about into than them can only other new some could "
           "time these two may then do first any my now such like our over man me even most made "
           "after also did many before must through back years where much your way well down should "
           "because each just those people how too little state good very make world still own see "
           "men work long get here between both life being under never day same another know while "
           "last might us great old year off come since against go came right used take three "
           "tokenizer encoding merges vocabulary training language model gradient attention").split()
CONTRACTIONS = ["don't", "it's", "I'm", "we've", "they're", "she'll", "He'd", "DON'T", "You'RE",
                "I'LL", "can't", "o'clock", "rock'n'roll", "'tis", "y'all"]
OTHER_SCRIPTS = [
    "안녕하세요 세계 토크나이저 한국어 문장입니다",
    "你好世界 这是一个中文句子 分词器",
    "こんにちは世界 これは日本語の文です カタカナ",
    "Привет мир это русское предложение Ёлка",
    "مرحبا بالعالم هذه جملة عربية",
    "नमस्ते दुनिया यह हिंदी वाक्य है",
    "Γειά σου κόσμε αυτή είναι ελληνική πρόταση",
    "Größe Straße Äpfel Ökonomie Übermut café naïve façade",
    "שלום עולם זה משפט בעברית",
    "สวัสดีชาวโลก นี่คือประโยคภาษาไทย",
]
EMOJI = ["🙃", "😀", "👍🏽", "🇺🇸", "👨‍👩‍👧", "❤️", "🚀", "✨", "🤖", "🧠"]
SYMBOLS = [".", ",", "!", "?", ";", ":", "...", "--", "(", ")", "[", "]", "{", "}", "\"", "#", "$",
           "%", "&", "*", "+", "=", "<", ">", "/", "\\", "|", "@", "^", "~", "`", "“", "”", "—", "…"]
WHITESPACE = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r\n\r\n", " \n", "\u00a0", "\u3000",
              "\u2003", "    ", "\n    ", "\t\t"]
CODE = [
    "def merge(ids, pair, idx):\n    newids = []\n    i = 0\n    while i < len(ids):\n",
    "for (int i = 0; i < n; ++i) { sum += x[i] * y[i]; }\r\n",
    "if __name__ == '__main__':\n    main()\n",
    "x = {'a': 1, \"b\": [2, 3.14159, -42]}  # comment\n",
    "SELECT name, COUNT(*) FROM users WHERE age >= 21 GROUP BY name;\n",
    "$$\\int_0^1 x^2\\,dx = \\frac{1}{3}$$ and \\(a^2 + b^2 = c^2\\)",
]


def number(rng):
    kind = rng.random()
    if kind < 0.4:
        return str(rng.randint(0, 99999))
    if kind < 0.6:
        return f"{rng.uniform(-1000, 1000):.{rng.randint(1, 6)}f}"
    if kind < 0.8:
        return f"{rng.randint(1, 12)}/{rng.randint(1, 28)}/{rng.randint(1900, 2100)}"
    return rng.choice(["١٢٣", "²³", "½", "Ⅻ", "٣٤٥٦", "१२३४", "〇"])


def word(rng):
    r = rng.random()
    if r < 0.62:
        w = ENGLISH[min(int(rng.paretovariate(1.1)) - 1, len(ENGLISH) - 1)]
        return w.capitalize() if rng.random() < 0.12 else (w.upper() if rng.random() < 0.02 else w)
    if r < 0.70:
        return rng.choice(CONTRACTIONS)
    if r < 0.80:
        return rng.choice(rng.choice(OTHER_SCRIPTS).split())
    if r < 0.88:
        return number(rng)
    if r < 0.92:
        return rng.choice(EMOJI)
    return rng.choice(SYMBOLS)


def document(rng):
    parts = []
    for _ in range(rng.randint(5, 400)):
        r = rng.random()
        if r < 0.03:
            parts.append(rng.choice(CODE))
        elif r < 0.05:
            parts.append(rng.choice(OTHER_SCRIPTS))
        elif r < 0.06:  # a random run of code points from anywhere in Unicode
            parts.append("".join(chr(rng.choice([rng.randint(0x20, 0x7E), rng.randint(0xA0, 0xD7FF),
                                                  rng.randint(0xE000, 0x10FFFF)]))
                                 for _ in range(rng.randint(1, 12))))
        else:
            parts.append(word(rng))
        parts.append(rng.choice(WHITESPACE) if rng.random() < 0.12 else
                      ("" if rng.random() < 0.1 else " "))
    return "".join(parts)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "fixtures/tokenizer"))
    parser.add_argument("--bytes", type=int, default=400_000, help="approximate corpus size")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    rng = random.Random(1234)
    docs, size = [], 0
    while size < args.bytes:
        docs.append(document(rng))
        size += len(docs[-1].encode("utf-8"))
    assert not any(SEPARATOR in d for d in docs)
    (out / "corpus.txt").write_bytes(SEPARATOR.join(docs).encode("utf-8"))
    with open(out / "corpus.jsonl", "w", encoding="utf-8", newline="") as f:
        for d in docs:
            f.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")

    special_texts = ["<|bos|>", "Hello <|assistant_end|> world", "<|user_start|><|user_end|>",
                     " <|python_start|>print(1)<|python_end|>", "<|output_start|>2<|output_end|>\n"]
    for vocab in VOCAB_SIZES:
        tok = rustbpe.Tokenizer()
        tok.train_from_iterator(iter(docs), vocab, pattern=SPLIT_PATTERN)
        ranks = {bytes(b): r for b, r in tok.get_mergeable_ranks()}
        by_rank = {r: b for b, r in ranks.items()}
        # rustbpe exposes its merges as ranks: token 256 + k is the bytes of merge k. Written in
        # tiktoken's own file format (base64 token, space, rank).
        with open(out / f"ranks_{vocab}.tiktoken", "w") as f:
            for r in range(len(by_rank)):
                f.write(f"{base64.b64encode(by_rank[r]).decode()} {r}\n")
        enc = tiktoken.Encoding(name=f"fixture{vocab}", pat_str=tok.get_pattern(), mergeable_ranks=ranks,
                                special_tokens={s: len(ranks) + i for i, s in enumerate(SPECIALS)})
        with open(out / f"ids_{vocab}.txt", "w") as f:
            for d in docs:
                f.write(" ".join(map(str, enc.encode_ordinary(d))) + "\n")
        with open(out / f"specials_{vocab}.txt", "w") as f:
            for t in special_texts:
                f.write(" ".join(map(str, enc.encode_ordinary(t))) + "\n")
        if vocab == 2048:
            sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples/convert"))
            from tokenizer_pkl_to_nanochat import convert
            with tempfile.TemporaryDirectory() as tmp:
                pkl = Path(tmp) / "tokenizer.pkl"
                pkl.write_bytes(pickle.dumps(enc))
                convert(pkl, out / "converted_2048")
        print(f"vocab {vocab}: {len(ranks)} ranks")
    print(f"{len(docs)} documents, {size} bytes")


if __name__ == "__main__":
    main()
