#!/usr/bin/env python3
"""Writes the chat-task fixtures under tests/fixtures/tasks/ (committed; CI never runs this).
Needs numpy, pyarrow and tiktoken: `python3 -m venv build/ref-venv && build/ref-venv/bin/pip install numpy pyarrow tiktoken`.

Small files in each dataset's published formats: the Hugging Face parquet of GSM8K, SmolTalk (two
shards), MMLU all/test and auxiliary_train, ARC-Easy and HumanEval under hub/<repo>/<config>/<split>/
as tasks/hub_datasets.hpp lays them out, and the other forms the readers take (GSM8K, SmolTalk,
ARC and HumanEval JSONL, MMLU's release CSVs), identity JSONL, a word list;
and expected.json: per task, every example's ids and mask as nanochat's render_conversation
makes them with the tokenizer fixture ranks_2048.tiktoken, built here from the task rules of
nanochat's tasks/*.py (f37d45c) with Python's own random module; the mixture order of
TaskMixture; Python random streams. Row order is Hugging Face's .shuffle(seed=42), which is
numpy's default_rng(42).permutation of the rows (docs/tasks.md).

Usage: build/ref-venv/bin/python tests/reference/make_task_fixtures.py
"""
import json
import pathlib
import random
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fixture_tokenizer import SPECIALS, load_tokenizer

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "fixtures" / "tasks"
ENC = load_tokenizer()


def render(messages, max_tokens=2048):
    """nanochat's render_conversation (spec 1.5)."""
    messages = [dict(m) for m in messages]
    if messages[0]["role"] == "system":
        messages[1]["content"] = messages[0]["content"] + "\n\n" + messages[1]["content"]
        messages = messages[1:]
    sp = {s: ENC.encode_single_token(s) for s in SPECIALS}
    ids, mask = [], []

    def add(tokens, m):
        tokens = [tokens] if isinstance(tokens, int) else tokens
        ids.extend(tokens)
        mask.extend([m] * len(tokens))

    add(sp["<|bos|>"], 0)
    for i, message in enumerate(messages):
        assert message["role"] == ("user" if i % 2 == 0 else "assistant")
        content = message["content"]
        if message["role"] == "user":
            add(sp["<|user_start|>"], 0); add(ENC.encode_ordinary(content), 0); add(sp["<|user_end|>"], 0)
            continue
        add(sp["<|assistant_start|>"], 0)
        if isinstance(content, str):
            add(ENC.encode_ordinary(content), 1)
        else:
            for part in content:
                if part["type"] == "text":
                    add(ENC.encode_ordinary(part["text"]), 1)
                elif part["type"] == "python":
                    add(sp["<|python_start|>"], 1); add(ENC.encode_ordinary(part["text"]), 1); add(sp["<|python_end|>"], 1)
                else:
                    add(sp["<|output_start|>"], 0); add(ENC.encode_ordinary(part["text"]), 0); add(sp["<|output_end|>"], 0)
        add(sp["<|assistant_end|>"], 1)
    return ids[:max_tokens], mask[:max_tokens]


def shuffled(rows):
    # datasets' Dataset.shuffle(seed=42): np.random.default_rng(42).permutation(len(rows))
    return [rows[i] for i in np.random.default_rng(42).permutation(len(rows))]


def render_mc(question, letters, choices):
    out = f"Multiple Choice question: {question}\n"
    out += "".join(f"- {c}={l}\n" for l, c in zip(letters, choices))
    return out + "\nRespond only with the letter of the correct answer."


def gsm8k_parts(answer):
    parts = []
    for piece in re.split(r"(<<[^>]+>>)", answer):
        if piece.startswith("<<") and piece.endswith(">>"):
            inner = piece[2:-2]
            expr, result = inner.rsplit("=", 1) if "=" in inner else (inner, "")
            parts += [{"type": "python", "text": expr}, {"type": "python_output", "text": result}]
        else:
            parts.append({"type": "text", "text": piece})
    return parts


# ---- the datasets, in their published formats ----------------------------------------------------
GSM8K = [
    {"question": "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?",
     "answer": "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nWorking 50 minutes, she earned 0.2 x 50 = $<<0.2*50=10>>10.\n#### 10"},
    {"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?",
     "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"},
    {"question": "A robe takes 2 bolts of blue fiber and half that much white fiber. How many bolts in total does it take?",
     "answer": "<<2/2=1>>1 bolt of white fiber\nSo the total is 2+1=<<2+1=3>>3 bolts, not <<oops>> or <b>.\n#### 3"},
    {"question": "James writes a 3-page letter to 2 different friends twice a week. How many pages does he write a year?",
     "answer": "He writes each friend 3*2=<<3*2=6>>6 pages a week\nSo he writes 6*2=<<6*2=12>>12 pages every week\nThat means he writes 12*52=<<12*52=624>>624 pages a year\n#### 1,248"},
]
SMOLTALK = [
    {"messages": [{"role": "system", "content": "You are a helpful assistant."},
                  {"role": "user", "content": "What is the capital of France?"},
                  {"role": "assistant", "content": "The capital of France is Paris."}]},
    {"messages": [{"role": "user", "content": "Write a haiku about rain."},
                  {"role": "assistant", "content": "Soft rain on the roof\nwhispers to the sleeping town\npuddles hold the sky"},
                  {"role": "user", "content": "Another one, about snow?"},
                  {"role": "assistant", "content": "White hush on the hills"}]},
    {"messages": [{"role": "user", "content": "Say hi in Korean: 안녕?"},
                  {"role": "assistant", "content": "안녕하세요! 🙂"}]},
]
MMLU = {  # file -> rows (question, A, B, C, D, answer)
    "astronomy_test.csv": [
        ["What is the closest star to Earth?", "Sirius", "The Sun", "Proxima Centauri", "Vega", "B"],
        ["Which planet has \"rings\", most famously?", "Mars", "Venus", "Saturn", "Mercury", "C"],
    ],
    "virology_test.csv": [
        ["A virus needs:\na host cell, or", "nothing", "a host cell", "sunlight, water", "oxygen", "B"],
    ],
}
ARC = [
    {"id": "Mercury_7175875", "question": {"stem": "An astronomer observes that a planet rotates faster after a meteorite impact. Which is the most likely effect of this increase in rotation?",
     "choices": [{"text": "Planetary density will decrease.", "label": "A"}, {"text": "Planetary years will become longer.", "label": "B"},
                 {"text": "Planetary days will become shorter.", "label": "C"}, {"text": "Planetary gravity will become stronger.", "label": "D"}]}, "answerKey": "C"},
    {"id": "NYSEDREGENTS_2015_4_8", "question": {"stem": "Which unit is used to record the mass of a rock?",
     "choices": [{"text": "meter", "label": "1"}, {"text": "liter", "label": "2"}, {"text": "gram", "label": "3"}, {"text": "degree", "label": "4"}]}, "answerKey": "3"},
    {"id": "Mercury_SC_401", "question": {"stem": "Which is a renewable resource?",
     "choices": [{"text": "coal", "label": "A"}, {"text": "oil", "label": "B"}, {"text": "wind", "label": "C"}, {"text": "natural gas", "label": "D"}, {"text": "uranium", "label": "E"}]}, "answerKey": "C"},
]
HUMANEVAL = [
    {"task_id": "HumanEval/0", "prompt": "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n    \"\"\" Check if any two numbers are closer than threshold.\n    \"\"\"\n",
     "canonical_solution": "    for i, a in enumerate(numbers):\n        for j, b in enumerate(numbers):\n            if i != j and abs(a - b) < threshold:\n                return True\n    return False\n",
     "test": "\n\nMETADATA = {}\n\n\ndef check(candidate):\n    assert candidate([1.0, 2.0, 3.9], 0.3) == False\n", "entry_point": "has_close_elements"},
    {"task_id": "HumanEval/2", "prompt": "\n\ndef truncate_number(number: float) -> float:\n    \"\"\" Return the decimal part.\n    \"\"\"\n",
     "canonical_solution": "    return number % 1.0\n", "test": "\n\ndef check(candidate):\n    assert candidate(3.5) == 0.5\n", "entry_point": "truncate_number"},
]
IDENTITY = [
    [{"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "I'm nanochat."}],
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"},
     {"role": "user", "content": "who made you"}, {"role": "assistant", "content": "Andrej Karpathy, in 2025."}],
]
WORDS_FILE = "strawberry\r\nAaron\r\napple's\r\n\r\n  banana  \r\nmississippi\r\nzyzzyva\r\ncat\r\nbookkeeper\r\n"


def hub_split(repo, config, split):
    """A split's directory as tasks/hub_datasets.hpp lays it out (task_data/hub/<repo>/<config>/<split>)."""
    path = OUT / "hub" / repo / config / split
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_hub(repo, config, split, table, shards=1, **options):
    """The split's rows as the Hub serves them: <split>-0000i-of-0000n.parquet, written by pyarrow
    (snappy, dictionary, v1 pages, as datasets writes them) unless options say otherwise."""
    path = hub_split(repo, config, split)
    for old in path.glob("*.parquet"):
        old.unlink()
    bounds = [round(i * table.num_rows / shards) for i in range(shards + 1)]
    for i in range(shards):
        pq.write_table(table.slice(bounds[i], bounds[i + 1] - bounds[i]),
                       path / f"{split}-{i:05d}-of-{shards:05d}.parquet", **options)


MESSAGES = pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))
MMLU_FIELDS = [("question", pa.string()), ("subject", pa.string()), ("choices", pa.list_(pa.string())),
               ("answer", pa.int64())]


def mmlu_hub_rows():
    """The CSV rows (in file name order, as the readers read them) in the Hub's columns: the
    subject from the file name, the answer as the ClassLabel index."""
    return [{"question": r[0], "subject": name.rsplit("_", 1)[0], "choices": r[1:5], "answer": "ABCD".index(r[5])}
            for name in sorted(MMLU) for r in MMLU[name]]


def write_datasets():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in ("gsm8k_train.parquet", "humaneval.parquet", "smoltalk_nested.parquet"):  # now under hub/
        (OUT / old).unlink(missing_ok=True)
    table = pa.table({"question": [r["question"] for r in GSM8K], "answer": [r["answer"] for r in GSM8K]})
    write_hub("openai/gsm8k", "main", "train", table, row_group_size=3, compression="zstd")
    (OUT / "gsm8k_train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in GSM8K))
    (OUT / "smoltalk.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in SMOLTALK))
    # Two shards, read in name order: the rows come out as one split.
    write_hub("HuggingFaceTB/smol-smoltalk", "default", "train",
              pa.table({"messages": pa.array([r["messages"] for r in SMOLTALK], MESSAGES)}), shards=2)
    (OUT / "mmlu" / "test").mkdir(parents=True, exist_ok=True)
    import csv
    for name, rows in MMLU.items():
        with open(OUT / "mmlu" / "test" / name, "w", newline="") as f:
            csv.writer(f).writerows(rows)
    rows = mmlu_hub_rows()
    write_hub("cais/mmlu", "all", "test", pa.Table.from_pylist(rows, schema=pa.schema(MMLU_FIELDS)))
    # auxiliary_train: each row inside a struct column "train" (fields in the Hub's order), lists
    # with the "item" element name of older pyarrow releases.
    aux = pa.schema([("train", pa.struct([MMLU_FIELDS[3], MMLU_FIELDS[2], MMLU_FIELDS[0], MMLU_FIELDS[1]]))])
    write_hub("cais/mmlu", "auxiliary_train", "train", pa.Table.from_pylist([{"train": r} for r in rows], schema=aux),
              use_compliant_nested_type=False)
    (OUT / "arc_easy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ARC))
    arc = [{"id": r["id"], "question": r["question"]["stem"],
            "choices": {"text": [c["text"] for c in r["question"]["choices"]],
                        "label": [c["label"] for c in r["question"]["choices"]]},
            "answerKey": r["answerKey"]} for r in ARC]
    write_hub("allenai/ai2_arc", "ARC-Easy", "train", pa.Table.from_pylist(arc), data_page_version="2.0",
              compression="zstd")
    (OUT / "humaneval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in HUMANEVAL))
    write_hub("openai/openai_humaneval", "openai_humaneval", "test",
              pa.table({k: [r[k] for r in HUMANEVAL] for k in HUMANEVAL[0]}))
    (OUT / "identity.jsonl").write_text("".join(json.dumps(r) + "\n" for r in IDENTITY))
    (OUT / "words.txt").write_bytes(WORDS_FILE.encode())


# ---- the tasks' conversations (nanochat's rules) ---------------------------------------------------
def read_words():
    words = [line.strip() for line in WORDS_FILE.split("\n")]
    return [w for w in words if w and all("a" <= c <= "z" for c in w)]


LETTERS = "abcdefghijklmnopqrstuvwxyz"


def spelling_templates():
    text = (ROOT.parent / "include" / "nanochat" / "tasks" / "spelling_bee.hpp").read_text()
    block = text[text.index("kTemplates = {"):text.index("};", text.index("kTemplates = {"))]
    templates = [json.loads(s) for s in re.findall(r'^\s*("(?:[^"\\]|\\.)*"),$', block, re.M)]
    assert len(templates) == 51
    assert all(t.lower() == "".join(c.lower() if "A" <= c <= "Z" else c for c in t) for t in templates)
    return templates


def seed_of(split, i):
    return i if split == "train" else 10_000_000 + i


def spelling_bee(words, size, split):
    templates = spelling_templates()
    out = []
    for i in range(size):
        rng = random.Random(seed_of(split, i))
        word = rng.choice(words)
        letter = rng.choice(word) if rng.random() < 0.9 else rng.choice(LETTERS)
        count = word.count(letter)
        template = rng.choice(templates)
        if rng.random() < 0.3:
            template = template.lower()
        lq, wq = rng.choice(["", "'", '"']), rng.choice(["", "'", '"'])
        user = template.format(letter=f"{lq}{letter}{lq}", word=f"{wq}{word}{wq}")
        if rng.random() < 0.5:
            user += "?"
        manual = (f"We are asked to find the number '{letter}' in the word '{word}'. Let me try a manual approach first.\n\n"
                  f"First spell the word out:\n{word}:{','.join(word)}\n\nThen count the occurrences of '{letter}':\n")
        running = 0
        for k, c in enumerate(word, 1):
            if c == letter:
                running += 1
                manual += f"{k}:{c} hit! count={running}\n"
            else:
                manual += f"{k}:{c}\n"
        manual += f"\nThis gives us {running}."
        parts = [{"type": "text", "text": manual}, {"type": "text", "text": "\n\nLet me double check this using Python:\n\n"},
                 {"type": "python", "text": f"'{word}'.count('{letter}')"}, {"type": "python_output", "text": str(count)},
                 {"type": "text", "text": f"\n\nPython gives us {count}.\n\nMy final answer is:\n\n#### {count}"}]
        out.append([{"role": "user", "content": user}, {"role": "assistant", "content": parts}])
    return out


def simple_spelling(words, size, split):
    words = list(words)
    random.Random(42).shuffle(words)
    out = []
    for i in range(size):
        word = random.Random(seed_of(split, i)).choice(words)
        out.append([{"role": "user", "content": f"Spell the word: {word}"}, {"role": "assistant", "content": f"{word}:{','.join(word)}"}])
    return out


# ---- offline tasks (docs/tasks.md) ----------------------------------------------------------------
M64 = (1 << 64) - 1


def fnv1a64(text):
    h = 0xcbf29ce484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001b3) & M64
    return h


def splitmix64(x):
    x = (x + 0x9e3779b97f4a7c15) & M64
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M64
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M64
    return x ^ (x >> 31)


def example_rng(seed, task, index):
    return random.Random(splitmix64((splitmix64(seed ^ fnv1a64(task)) + index) & M64))


def split_of(key, percent=10):
    return "test" if fnv1a64(key) % 100 < percent else "train"


def offline_words():
    text = (ROOT.parent / "include" / "nanochat" / "tasks" / "offline_words.hpp").read_text()
    block = text[text.index("kOfflineWords = {"):text.index("};", text.index("kOfflineWords = {"))]
    return re.findall(r'"([a-z]+)"', block)


def arithmetic(seed, size, split, max_digits=3):
    out = []
    for i in range(size):
        rng = example_rng(seed, "arithmetic", i)
        while True:
            def operand():
                d = rng.randint(1, max_digits)
                return rng.randint(0 if d == 1 else 10 ** (d - 1), 10 ** d - 1)
            a = operand(); b = operand()
            op = "+" if rng.random() < 0.5 else "-"
            if split_of(f"{a}{op}{b}") == split:
                break
        pattern = rng.choice(["What is {}?", "Compute {}.", "{} = ?", "Calculate {}"])
        result = str(a + b if op == "+" else a - b)
        out.append([{"role": "user", "content": pattern.replace("{}", f"{a} {op} {b}")},
                    {"role": "assistant", "content": [{"type": "python", "text": f"{a}{op}{b}"},
                                                      {"type": "python_output", "text": result},
                                                      {"type": "text", "text": f"\n\n#### {result}"}]}])
    return out


def letter_count(seed, size, split):
    words = offline_words()
    out = []
    for i in range(size):
        rng = example_rng(seed, "letter_count", i)
        while True:
            word = rng.choice(words)
            letter = rng.choice(word) if rng.random() < 0.8 else rng.choice(LETTERS)
            if split_of(f"{word}:{letter}") == split:
                break
        n = str(word.count(letter))
        out.append([{"role": "user", "content": f"How many '{letter}' are in '{word}'?"},
                    {"role": "assistant", "content": [{"type": "python", "text": f"'{word}'.count('{letter}')"},
                                                      {"type": "python_output", "text": n},
                                                      {"type": "text", "text": f"\n\n#### {n}"}]}])
    return out


def invented_word(rng):
    word = ""
    for _ in range(rng.randint(2, 3)):
        word += rng.choice("bcdfghjklmnprstvwz") + rng.choice("aeiou")
        if rng.random() < 0.25:
            word += rng.choice("lnrst")
    return word


def offline_spelling(seed, size, split, english_share=0.25):
    words = offline_words()
    out = []
    for i in range(size):
        rng = example_rng(seed, "spelling", i)
        while True:
            word = rng.choice(words) if rng.random() < english_share else invented_word(rng)
            if split_of(word) == split:
                break
        out.append([{"role": "user", "content": f"Spell the word: {word}"}, {"role": "assistant", "content": f"{word}:{','.join(word)}"}])
    return out


def main():
    write_datasets()
    words = read_words()
    tasks = {
        "GSM8K": [[{"role": "user", "content": r["question"]}, {"role": "assistant", "content": gsm8k_parts(r["answer"])}] for r in shuffled(GSM8K)],
        "SmolTalk": [r["messages"] for r in shuffled(SMOLTALK)],
        "MMLU": [[{"role": "user", "content": render_mc(r[0], "ABCD", r[1:5])}, {"role": "assistant", "content": r[5]}]
                 for r in shuffled([r for name in sorted(MMLU) for r in MMLU[name]])],
        "ARC": [[{"role": "user", "content": render_mc(r["question"]["stem"], [c["label"] for c in r["question"]["choices"]],
                                                        [c["text"] for c in r["question"]["choices"]])},
                 {"role": "assistant", "content": r["answerKey"]}] for r in shuffled(ARC)],
        "HumanEval": [[{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["prompt"] + "\n" + r["canonical_solution"]}]
                      for r in shuffled(HUMANEVAL)],
        "CustomJSON": IDENTITY,
        "SpellingBee/train": spelling_bee(words, 12, "train"),
        "SpellingBee/test": spelling_bee(words, 4, "test"),
        "SimpleSpelling/train": simple_spelling(words, 6, "train"),
        "SimpleSpelling/test": simple_spelling(words, 3, "test"),
        "OfflineArithmetic/train": arithmetic(7, 8, "train"),
        "OfflineArithmetic/test": arithmetic(7, 4, "test"),
        "OfflineLetterCount/train": letter_count(7, 6, "train"),
        "OfflineLetterCount/test": letter_count(7, 3, "test"),
        "OfflineSpelling/train": offline_spelling(7, 6, "train"),
        "OfflineSpelling/test": offline_spelling(7, 3, "test"),
    }
    expected = {"words": words, "tasks": {}}
    for name, conversations in tasks.items():
        rendered = []
        for messages in conversations:
            ids, mask = render(messages)
            rendered.append({"ids": ids, "mask": mask})
        expected["tasks"][name] = rendered
    # TaskMixture of tasks with these sizes: nanochat's (task, local) list shuffled by Random(42).
    sizes = [5, 0, 3, 7]
    index_map = [[t, i] for t, n in enumerate(sizes) for i in range(n)]
    random.Random(42).shuffle(index_map)
    expected["mixture"] = {"sizes": sizes, "order": index_map}
    big = [[t, i] for t, n in enumerate([70000, 30000]) for i in range(n)]
    random.Random(42).shuffle(big)
    expected["mixture_100k_head"] = big[:50]
    # Python random streams the C++ port must reproduce.
    streams = {}
    for seed in [0, 1, -5, 42, 2**32 + 7, 2**63 + 12345]:
        rng = random.Random(seed)
        streams[str(seed)] = {"u32": [rng.getrandbits(32) for _ in range(5)], "random": [rng.random() for _ in range(3)],
                              "bits40": [rng.getrandbits(40) for _ in range(2)], "randbelow": [rng.randrange(n) for n in [1, 7, 1000, 370105]]}
    expected["random"] = streams
    (OUT / "expected.json").write_text(json.dumps(expected, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
