#!/usr/bin/env python3
"""Writes the parquet fixtures of tests/data and what pyarrow reads back from them.

Run by hand (CI never runs Python): `pip install pyarrow && python3 tests/reference/make_parquet_fixtures.py`.
Output: tests/fixtures/data/parquet/*.parquet and tests/fixtures/data/parquet/expected.json, which maps
each file name to its "text" column as a list of row groups (null stays null; the C++ reader
returns "" for it). Each file has several row groups and several pages per column chunk.
"""
import json
import pathlib
import random

import pyarrow as pa
import pyarrow.parquet as pq

OUT = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "data" / "parquet"
WORDS = ("the of and to in is was that for on as with by at from education learning student "
         "science history water energy Ünïcödé naïve café 東京 данные 🙂 \"quoted\" back\\slash").split()


def make_texts(seed, rows):
    rng = random.Random(seed)
    texts = []
    for i in range(rows):
        if i == 7:
            texts.append(None)  # a null in OPTIONAL columns
        elif i == 11:
            texts.append("")
        elif i % 5 == 0:
            texts.append(rng.choice(["Repeated document.", "Another repeated one."]))  # dictionary hits
        else:
            words = [rng.choice(WORDS) for _ in range(rng.randint(1, 30))]
            text = " ".join(words)
            if rng.random() < 0.2:
                text += "\nsecond line\n"
            texts.append(text)
    return texts


def write(name, texts, nullable=True, extra_column=False, **options):
    fields = [pa.field("text", pa.string(), nullable=nullable)]
    columns = [pa.array(texts, pa.string())]
    if extra_column:
        fields.insert(0, pa.field("id", pa.int64()))
        columns.insert(0, pa.array(range(len(texts)), pa.int64()))
    table = pa.Table.from_arrays(columns, schema=pa.schema(fields))
    path = OUT / f"{name}.parquet"
    pq.write_table(table, path, row_group_size=64, data_page_size=512, write_statistics=False,
                   **options)
    reader = pq.ParquetFile(path)
    return [reader.read_row_group(g).column("text").to_pylist() for g in range(reader.num_row_groups)]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    expected = {}
    seed = 0
    for codec in ("zstd", "snappy", "gzip", "none"):
        for dictionary in (False, True):
            for page_version in ("1.0", "2.0"):
                seed += 1
                name = f"{codec}_{'dict' if dictionary else 'plain'}_v{page_version[0]}"
                expected[name] = write(name, make_texts(seed, 150), compression=codec,
                                       use_dictionary=dictionary, data_page_version=page_version)
    # nanochat's shard layout (zstd, no dictionary) with a REQUIRED column, and a file whose
    # text column is not the first one.
    texts = [t or "x" for t in make_texts(100, 150)]
    expected["zstd_required"] = write("zstd_required", texts, nullable=False, compression="zstd",
                                      use_dictionary=False)
    expected["two_columns"] = write("two_columns", make_texts(101, 150), extra_column=True,
                                    compression="snappy", use_dictionary=True)
    (OUT / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=0) + "\n")


if __name__ == "__main__":
    main()
