#!/usr/bin/env python3
"""Writes synthetic evaluation data at the real data's shapes, to time `base_eval --core` and
`chat_eval -a MMLU` where the real files cannot be downloaded.

--core DIR: a DCLM eval bundle (the real eval_bundle.zip is 162 MB) in its formats (core.yaml, eval_data/*.jsonl, eval_meta_data.csv) with the 22 tasks
of nanochat's CORE: each task's type, few-shot count, continuation delimiter and random baseline
as in nanochat-spec §6.2, its number of examples and choices, and text of about the length of
the real task's fields (words per field, estimated from the datasets' published descriptions;
these are estimates, the exact counts are in the report the timing run prints). The words are
drawn from a word list, so the scores mean nothing: only the work per example is realistic.

--mmlu DIR: MMLU's test split as the original release's CSVs (DIR/<subject>_test.csv; no header:
question, A, B, C, D, answer letter), 14,042 questions over 57 subjects, about 45 words a question
and 8 a choice. Put it where chat_eval looks (BASE/task_data/hub/cais/mmlu/all/test).

  python3 benchmarks/eval_data_shapes.py --core /tmp/core-bundle --mmlu BASE/task_data/hub/cais/mmlu/all/test
  base_eval --core --core-bundle /tmp/core-bundle --core-max-per-task 500 ...
  chat_eval -a MMLU -x 1000 ...
"""
import argparse
import csv
import json
import pathlib
import random

# label: (type, shots, delimiter, random baseline %, examples, choices, words of the fields)
# MC fields: query, choice. schema: option (context), continuation. LM: context, continuation.
TASKS = {
    "hellaswag_zeroshot": ("multiple_choice", 0, " ", 25, 10042, 4, (45, 22)),
    "jeopardy": ("language_modeling", 10, "\nAnswer: ", 0, 2117, 1, (25, 2)),
    "bigbench_qa_wikidata": ("language_modeling", 10, " ", 0, 20321, 1, (8, 2)),
    "arc_easy": ("multiple_choice", 10, "\nAnswer: ", 25, 2376, 4, (25, 4)),
    "arc_challenge": ("multiple_choice", 10, "\nAnswer: ", 25, 1172, 4, (30, 5)),
    "copa": ("multiple_choice", 0, " ", 50, 100, 2, (10, 7)),
    "commonsense_qa": ("multiple_choice", 10, " ", 20, 1221, 5, (15, 2)),
    "piqa": ("multiple_choice", 10, "\nAnswer: ", 50, 1838, 2, (10, 20)),
    "openbook_qa": ("multiple_choice", 0, " ", 25, 500, 4, (12, 4)),
    "lambada_openai": ("language_modeling", 0, " ", 0, 5153, 1, (70, 1)),
    "hellaswag": ("multiple_choice", 10, " ", 25, 10042, 4, (45, 22)),
    "winograd": ("schema", 0, " ", 50, 273, 2, (12, 6)),
    "winogrande": ("schema", 0, " ", 50, 1267, 2, (12, 8)),
    "bigbench_dyck_languages": ("language_modeling", 10, " ", 0, 1000, 1, (40, 4)),
    "agi_eval_lsat_ar": ("multiple_choice", 3, " ", 20, 230, 5, (250, 15)),
    "bigbench_cs_algorithms": ("language_modeling", 10, " ", 0, 1320, 1, (30, 2)),
    "bigbench_operators": ("language_modeling", 10, " ", 0, 210, 1, (15, 2)),
    "bigbench_repeat_copy_logic": ("language_modeling", 10, " ", 0, 32, 1, (20, 15)),
    "squad": ("language_modeling", 10, " ", 0, 10570, 1, (150, 3)),
    "coqa": ("language_modeling", 0, " ", 0, 7983, 1, (300, 3)),
    "boolq": ("multiple_choice", 10, "\nAnswer: ", 62, 3270, 2, (120, 1)),
    "bigbench_language_identification": ("multiple_choice", 10, " ", 9.1, 10000, 11, (30, 2)),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--core", type=pathlib.Path, help="eval bundle directory to write")
    ap.add_argument("--mmlu", type=pathlib.Path, help="directory of MMLU test CSVs to write")
    ap.add_argument("--words", default="/usr/share/dict/words", type=pathlib.Path,
                    help="word list, one per line (Debian: wamerican)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not args.core and not args.mmlu:
        ap.error("give --core DIR, --mmlu DIR or both")

    words = [w for w in args.words.read_text(errors="replace").split() if w.isascii() and w.isalpha() and w.islower() and len(w) <= 8]
    if len(words) < 1000:
        raise SystemExit(f"{args.words}: only {len(words)} usable words (lowercase ASCII letters, at most 8)")
    rng = random.Random(args.seed)

    def text(n):
        return " ".join(rng.choice(words) for _ in range(n))

    if args.core:
        write_core_bundle(args.core, text, rng)
    if args.mmlu:
        write_mmlu(args.mmlu, text, rng)


def write_core_bundle(out, text, rng):
    data = out / "eval_data"
    data.mkdir(parents=True, exist_ok=True)
    yaml_lines = ["icl_tasks:"]
    meta = ["Eval Task,Task Category,Task Type,#shots,#datapoints,Random baseline,Centered Metric?,Description"]
    for label, (kind, shots, delim, rand, count, choices, (a, b)) in TASKS.items():
        with open(data / f"{label}.jsonl", "w") as f:
            for _ in range(count):
                if kind == "multiple_choice":
                    row = {"query": text(a), "choices": [text(b) for _ in range(choices)],
                           "gold": rng.randrange(choices)}
                elif kind == "schema":
                    row = {"context_options": [text(a) for _ in range(choices)], "continuation": text(b),
                           "gold": rng.randrange(choices)}
                else:
                    row = {"context": text(a), "continuation": text(b)}
                f.write(json.dumps(row) + "\n")
        yaml_lines += [f"- label: {label}", f"  dataset_uri: {label}.jsonl", f"  num_fewshot: [{shots}]",
                       f"  icl_task_type: {kind}", f"  continuation_delimiter: {json.dumps(delim)}"]
        meta.append(f"{label},synthetic,{kind},{shots},{count},{rand},,at the real task's shapes")
    (out / "core.yaml").write_text("\n".join(yaml_lines) + "\n")
    (out / "eval_meta_data.csv").write_text("\n".join(meta) + "\n")
    print(f"wrote {len(TASKS)} CORE tasks to {out}")


def write_mmlu(out, text, rng, questions=14042, subjects=57):
    out.mkdir(parents=True, exist_ok=True)
    for s in range(subjects):
        rows = questions // subjects + (s < questions % subjects)
        with open(out / f"subject{s:02d}_test.csv", "w", newline="") as f:
            w = csv.writer(f)
            for _ in range(rows):
                w.writerow([text(45)] + [text(8) for _ in range(4)] + ["ABCD"[rng.randrange(4)]])
    print(f"wrote {questions} MMLU questions in {subjects} subjects to {out}")


if __name__ == "__main__":
    main()
