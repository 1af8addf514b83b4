#!/usr/bin/env python3
"""Writes the CORE fixtures under tests/fixtures/eval/ (committed; CI never runs this).
Needs torch, tiktoken, jinja2 and pyyaml (the venv /work/main/build/nanochat-venv has them).

  bundle/             a small DCLM eval bundle in the real formats: core.yaml (one task of each type,
                      the keys and quoting of DCLM's file), eval_data/**.jsonl, eval_meta_data.csv
  model.safetensors   a tiny GPT (2 layers, 2 heads, 1 KV head, head dim 8) over the tokenizer fixture
                      ranks_2048.tiktoken, random weights, written by gpt_reference.save_safetensors
  expected.json       what nanochat's core_eval (f37d45c) gives for that model and bundle, from its rules
                      implemented here: per setting (all examples; max_per_task 7; all examples with the
                      model cropped to `crop_context` positions) and task, every example's few-shot
                      indices, rows of ids, spans, per-row mean losses (MC/schema) and correctness, the
                      accuracy and centered accuracy, and the CORE score
and ../tasks/python_sample.json: random.Random(seed).sample(range(n), k) from CPython and the draw after it, for n and k
on both sides of CPython's pool/set switch (tests/tasks, PythonRandom::sample).

The bundle's data is read back from the files written, as base_eval.py reads it (yaml.safe_load,
csv.DictReader, json.loads per line), and the prompts are rendered with jinja2 templates of the
same whitespace control as core_eval's, so the expectations follow the formats, not this script's
own structures. Some language-modelling continuations are the model's own greedy tokens, so that
exact-match accuracy is neither 0 nor 1. Every MC/schema decision is checked to have a margin
between the best and second mean loss, and every LM argmax a margin over the runner-up logit,
well above fp32 noise, so the C++ model must reach the same decisions.

Usage: /work/main/build/nanochat-venv/bin/python tests/reference/make_core_fixtures.py
"""
import base64
import csv
import json
import os
import pathlib
import random
import sys

import jinja2
import tiktoken
import torch
import torch.nn.functional as F
import yaml

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gpt_reference as ref  # noqa: E402

ROOT = HERE.parent
OUT = ROOT / "fixtures" / "eval"
BUNDLE = OUT / "bundle"
SPLIT_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
SPECIALS = ["<|bos|>", "<|user_start|>", "<|user_end|>", "<|assistant_start|>", "<|assistant_end|>",
            "<|python_start|>", "<|python_end|>", "<|output_start|>", "<|output_end|>"]
MARGIN = 1e-3  # smallest accepted gap between the decision and its runner-up


def load_tokenizer():
    ranks = {}
    for line in (ROOT / "fixtures" / "tokenizer" / "ranks_2048.tiktoken").read_text().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    specials = {s: len(ranks) + i for i, s in enumerate(SPECIALS)}
    return tiktoken.Encoding("fixture", pat_str=SPLIT_PATTERN, mergeable_ranks=ranks, special_tokens=specials)


ENC = load_tokenizer()
BOS = ENC.encode_single_token("<|bos|>")
CFG = ref.Config(n_layer=2, n_head=2, n_kv_head=1, n_embd=16, vocab_size=ENC.n_vocab, sequence_len=64)

# ---------------------------------------------------------------------------------------------
# The bundle's content.

WORDS = ("river stone cloud apple window garden silver morning quiet yellow paper engine castle "
         "forest winter summer candle market bridge ocean mountain letter orange violet thunder").split()


def mc_examples(rng):
    out = []
    for i in range(13):
        n_choices = [4, 4, 3, 5, 2][i % 5]
        subject = rng.choice(WORDS)
        choices = rng.sample(WORDS, n_choices)
        out.append({"query": f"Question: which word goes best with {subject} number {i}?",
                    "choices": choices, "gold": rng.randrange(n_choices)})
    # Choices that share leading words: the common token prefix reaches into the choices.
    out.append({"query": "Question: finish the phrase 'the quiet'", "choices": ["the quiet river", "the quiet stone"],
                "gold": 1})
    return out


def schema_examples(rng):
    out = []
    for i in range(11):
        a, b = rng.sample(WORDS, 2)
        options = [f"The {a} was moved past the {b} because the {a}", f"The {a} was moved past the {b} because the {b}"]
        if i % 4 == 3:
            options.append(f"The {a} was moved past the {b} because nothing")
        out.append({"context_options": options, "continuation": rng.choice(["was too big.", "was small.", "fell."]),
                    "gold": rng.randrange(len(options))})
    return out


def lm_examples(rng):
    out = []
    for i in range(12):
        words = " ".join(rng.sample(WORDS, 4))
        context = f"Story {i}: {words}"
        # Contexts with whitespace the trim must remove: trailing blanks, an ideographic space,
        # an information separator (Python's isspace, not Unicode White_Space), leading blanks.
        context += ["", "  ", "\u3000", " \x1f", "\n"][i % 5]
        if i % 3 == 1:
            context = "  " + context
        out.append({"context": context, "continuation": rng.choice(WORDS)})
    return out


TASKS = [
    # label, type, shots, delimiter (None: the key is absent), uri, random baseline
    ("mc_task", "multiple_choice", 2, "\nAnswer: ", "commonsense/mc_task.jsonl", 25.0),
    ("schema_task", "schema", 1, None, "schema_task.jsonl", 50.0),
    ("lm_task", "language_modeling", 3, " ", "language/lm_task.jsonl", 0.0),
]


def write_bundle(datasets):
    (BUNDLE / "eval_data").mkdir(parents=True, exist_ok=True)
    lines = ["icl_tasks:"]
    for label, kind, shots, delimiter, uri, _ in TASKS:
        lines += ["-", f"  label: {label}", f"  dataset_uri: {uri}", f"  num_fewshot: [{shots}]",
                  f"  icl_task_type: {kind}"]
        if delimiter is not None:
            lines.append(f"  continuation_delimiter: {json.dumps(delimiter)}")
        lines.append("  has_categories: false")  # a key CORE does not read
    (BUNDLE / "core.yaml").write_text("\n".join(lines) + "\n")
    for (label, *_rest), rows in zip(TASKS, datasets):
        path = BUNDLE / "eval_data" / _rest[3]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    with open(BUNDLE / "eval_meta_data.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Eval Task", "Task Category", "Task Type", "#shots", "#datapoints", "Random baseline",
                    "Centered Metric?", "Description"])
        w.writerow(["unused_task", "other", "other", "0", "1", "33", "", "a task core.yaml does not list"])
        for (label, kind, shots, _, _, baseline), rows in zip(TASKS, datasets):
            w.writerow([label, "fixture", kind, shots, len(rows), baseline, "", f"fixture {kind}, with a comma"])


def read_bundle():
    """As base_eval.evaluate_model reads it."""
    config = yaml.safe_load((BUNDLE / "core.yaml").read_text(encoding="utf-8"))
    baselines = {}
    with open(BUNDLE / "eval_meta_data.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            baselines[row["Eval Task"]] = float(row["Random baseline"])
    tasks = []
    for task in config["icl_tasks"]:
        with open(BUNDLE / "eval_data" / task["dataset_uri"], encoding="utf-8") as f:
            data = [json.loads(line.strip()) for line in f]
        tasks.append({"label": task["label"], "type": task["icl_task_type"], "shots": task["num_fewshot"][0],
                      "delimiter": task.get("continuation_delimiter", " "), "data": data,
                      "baseline": baselines[task["label"]]})
    return tasks


# ---------------------------------------------------------------------------------------------
# nanochat's core_eval, from its rules.

SHOTS = "{%- for s in shots -%}{0}\n\n{% endfor -%}"
TEMPLATES = {
    "multiple_choice": (SHOTS.replace("{0}", "{{ s.query }}{{ delim }}{{ s.choices[s.gold] }}") +
                        "{{ item.query }}{{ delim }}{{ option }}"),
    "schema": (SHOTS.replace("{0}", "{{ s.context_options[s.gold] }}{{ delim }}{{ s.continuation }}") +
               "{{ option }}{{ delim }}{{ item.continuation }}"),
    "language_modeling": (SHOTS.replace("{0}", "{{ s.context | trim }}{{ delim }}{{ s.continuation }}") +
                          "{{ item.context | trim }}{{ delim }}{% if with_continuation %}{{ item.continuation }}{% endif %}"),
}


def render(kind, item, delim, shots):
    t = jinja2.Template(TEMPLATES[kind])
    if kind == "multiple_choice":
        return [t.render(shots=shots, delim=delim, item=item, option=c) for c in item["choices"]]
    if kind == "schema":
        return [t.render(shots=shots, delim=delim, item=item, option=c) for c in item["context_options"]]
    without = t.render(shots=shots, delim=delim, item=item, with_continuation=False).strip()
    return [without, t.render(shots=shots, delim=delim, item=item, with_continuation=True)]


def common_length(rows, from_back):
    shortest = min(len(r) for r in rows)
    for i in range(shortest):
        at = (lambda r: r[-1 - i]) if from_back else (lambda r: r[i])
        if any(at(r) != at(rows[0]) for r in rows):
            return i
    return shortest


def rows_of(kind, prompts):
    ids = [[BOS] + ENC.encode_ordinary(p) for p in prompts]
    if kind == "multiple_choice":
        start = common_length(ids, False)
        return ids, [start] * len(ids), [len(r) for r in ids]
    if kind == "schema":
        suffix = common_length(ids, True)
        return ids, [len(r) - suffix for r in ids], [len(r) for r in ids]
    without, with_ = ids
    assert len(without) < len(with_) and with_[:len(without)] == without
    return [with_], [len(without)], [len(with_)]


def crop(ids, starts, ends, context):
    if context is None:
        return ids, starts, ends
    out = ([], [], [])
    for r, s, e in zip(ids, starts, ends):
        cut = max(0, len(r) - context)
        assert s - cut >= 1
        out[0].append(r[cut:])
        out[1].append(s - cut)
        out[2].append(e - cut)
    return out


def forward(params, ids):
    """Stacked rows, right-padded with <|bos|>: per-position losses and logits."""
    width = max(len(r) for r in ids)
    x = torch.full((len(ids), width), BOS, dtype=torch.long)
    for i, r in enumerate(ids):
        x[i, :len(r)] = torch.tensor(r)
    with torch.no_grad():
        logits = ref.forward(CFG, params, x)
    targets = torch.roll(x, -1, dims=1)
    losses = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="none")
    return x, losses.view(len(ids), width), logits


def evaluate_example(params, task, data, idx, context):
    kind = task["type"]
    shot_indices = []
    if task["shots"] > 0:
        shot_indices = random.Random(1234 + idx).sample([i for i in range(len(data)) if i != idx], task["shots"])
    prompts = render(kind, data[idx], task["delimiter"], [data[i] for i in shot_indices])
    ids, starts, ends = crop(*rows_of(kind, prompts), context)
    x, losses, logits = forward(params, ids)
    record = {"shots": shot_indices, "ids": ids, "start": starts, "end": ends}
    if kind == "language_modeling":
        s, e = starts[0], ends[0]
        top2 = logits[0, s - 1:e - 1].topk(2, dim=-1)
        assert (top2.values[:, 0] - top2.values[:, 1]).min().item() > MARGIN, (task["label"], idx)
        correct = bool((top2.indices[:, 0] == x[0, s:e]).all())
        record["greedy"] = top2.indices[:, 0].tolist()
    else:
        means = [losses[i, s - 1:e - 1].mean().item() for i, (s, e) in enumerate(zip(starts, ends))]
        ordered = sorted(means)
        assert ordered[1] - ordered[0] > MARGIN, (task["label"], idx, means)
        correct = means.index(min(means)) == data[idx]["gold"]
        record["mean_losses"] = means
    record["correct"] = correct
    return record


def evaluate(params, tasks, max_per_task, context):
    out = {"tasks": {}}
    centered_sum = 0.0
    for task in tasks:
        data = list(task["data"])
        random.Random(1337).shuffle(data)
        if max_per_task > 0:
            data = data[:max_per_task]
        examples = [evaluate_example(params, task, data, i, context) for i in range(len(data))]
        accuracy = sum(e["correct"] for e in examples) / len(examples)
        centered = (accuracy - 0.01 * task["baseline"]) / (1.0 - 0.01 * task["baseline"])
        centered_sum += centered
        out["tasks"][task["label"]] = {"accuracy": accuracy, "centered": centered, "examples": examples}
    out["core"] = centered_sum / len(tasks)
    return out


def make_greedy_continuations(params, lm_rows):
    """Makes an LM example's continuation the model's own greedy token where that token is a blank
    and letters (the delimiter " " supplies the blank), so exact match succeeds on some examples.
    Later examples' shots see the new continuations; earlier ones may lose their match, which the
    evaluation then counts as it falls."""
    data = list(lm_rows)
    random.Random(1337).shuffle(data)  # the order evaluation sees; the dicts are shared
    for idx in range(len(data)):
        shots = random.Random(1234 + idx).sample([i for i in range(len(data)) if i != idx], 3)
        without = render("language_modeling", data[idx], " ", [data[i] for i in shots])[0]
        with torch.no_grad():
            logits = ref.forward(CFG, params, torch.tensor([[BOS] + ENC.encode_ordinary(without)]))
        text = ENC.decode([int(logits[0, -1].argmax())])
        if len(text) > 1 and text[0] == " " and text[1:].isascii() and text[1:].isalpha():
            data[idx]["continuation"] = text[1:]


def sample_fixtures():
    cases = []
    # n <= 21 (k <= 5) and n <= 21 + 4^ceil(log4(3k)) take the pool branch; larger n the set branch.
    for seed in [0, 1, 1234, 1234 + 7, 1234 + 9999, 2**32 + 5]:
        for n, k in [(1, 0), (1, 1), (5, 3), (21, 5), (22, 5), (30, 10), (85, 10), (86, 10), (100, 5),
                     (1000, 10), (10041, 10), (500, 100), (64, 64)]:
            rng = random.Random(seed)
            picked = rng.sample(range(n), k)
            cases.append({"seed": seed, "n": n, "k": k, "sample": picked, "next": rng.getrandbits(32)})
    return cases


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(20251120)
    params = ref.random_params(CFG, gen)
    rng = random.Random(7)
    datasets = [mc_examples(rng), schema_examples(rng), lm_examples(rng)]
    make_greedy_continuations(params, datasets[2])
    write_bundle(datasets)
    tasks = read_bundle()

    full = evaluate(params, tasks, -1, None)
    lm = full["tasks"]["lm_task"]["accuracy"]
    assert 0 < lm < 1, f"LM exact-match accuracy {lm}: choose other seeds"
    # The crop: every row longer than this keeps a span that still fits.
    longest = max(len(r) for t in full["tasks"].values() for e in t["examples"] for r in e["ids"])
    need = max(len(r) - s + 1 for t in full["tasks"].values() for e in t["examples"] for r, s in zip(e["ids"], e["start"]))
    crop_context = max(need, longest // 2)
    assert crop_context < longest
    expected = {
        "longest": longest,
        "crop_context": crop_context,
        "settings": {
            "all": {"max_per_task": -1, "context": None, **full},
            "max7": {"max_per_task": 7, "context": None, **evaluate(params, tasks, 7, None)},
            "cropped": {"max_per_task": -1, "context": crop_context, **evaluate(params, tasks, -1, crop_context)},
        },
    }
    (OUT / "expected.json").write_text(json.dumps(expected, separators=(",", ":")) + "\n")
    (ROOT / "fixtures" / "tasks" / "python_sample.json").write_text(json.dumps(sample_fixtures()) + "\n")
    metadata = {"n_layer": str(CFG.n_layer), "n_head": str(CFG.n_head), "n_kv_head": str(CFG.n_kv_head),
                "n_embd": str(CFG.n_embd), "vocab_size": str(CFG.vocab_size), "sequence_len": str(CFG.sequence_len)}
    ref.save_safetensors(str(OUT / "model.safetensors"), params, metadata)
    for name, setting in expected["settings"].items():
        print(name, {k: round(v["accuracy"], 4) for k, v in setting["tasks"].items()}, "CORE", round(setting["core"], 4))
    print("longest row", longest, "crop context", crop_context)


if __name__ == "__main__":
    main()
