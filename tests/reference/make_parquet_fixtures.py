#!/usr/bin/env python3
"""Writes the parquet fixtures of tests/data and what pyarrow reads back from them.

Run by hand (CI never runs Python): `pip install pyarrow && python3 tests/reference/make_parquet_fixtures.py`.
Output: tests/fixtures/data/parquet/*.parquet and tests/fixtures/data/parquet/expected.json, which maps
each file name to its "text" column as a list of row groups (null stays null; the C++ reader
skips nulls and counts them). Each file has several row groups and several pages per column chunk,
except the zero-row file and the file with an empty row group.
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


def make_delta_texts(seed, rows):
    """Texts that exercise DELTA_BYTE_ARRAY's prefix sharing and DELTA_BINARY_PACKED's lengths: long
    shared prefixes, nulls (so a page's value count ends mid-miniblock; with 40-row pages, rows 40..63
    are a page of nulls only), empty strings next
    to long ones (large negative and positive length deltas), and a few long documents."""
    rng = random.Random(seed)
    prefix = "https://example.org/" + "/".join(rng.choice(WORDS) for _ in range(12)) + "/"
    texts = []
    for i in range(rows):
        kind = rng.random()
        if 40 <= i < 80 or kind < 0.05:  # rows 40..63: a page of nulls only
            texts.append(None)
        elif kind < 0.12:
            texts.append("")
        elif kind < 0.55:
            texts.append(prefix + str(i) + " " + rng.choice(WORDS))  # shares a long prefix
        elif kind < 0.57:
            texts.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(150, 300))))
        else:
            texts.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 30))))
    return texts


def write(name, texts, nullable=True, extra_column=False, batch=8, **options):
    fields = [pa.field("text", pa.string(), nullable=nullable)]
    columns = [pa.array(texts, pa.string())]
    if extra_column:
        fields.insert(0, pa.field("id", pa.int64()))
        columns.insert(0, pa.array(range(len(texts)), pa.int64()))
    table = pa.Table.from_arrays(columns, schema=pa.schema(fields))
    path = OUT / f"{name}.parquet"
    # pyarrow checks the page size only between write batches (1024 rows by default), so small
    # batches are what actually cuts a 64-row chunk into several ~512-byte pages.
    pq.write_table(table, path, row_group_size=64, data_page_size=512, write_batch_size=batch,
                   write_statistics=False, **options)
    reader = pq.ParquetFile(path)
    return [reader.read_row_group(g).column("text").to_pylist() for g in range(reader.num_row_groups)]


def write_groups(name, groups):
    """One row group per list (an empty list writes an empty row group)."""
    schema = pa.schema([pa.field("text", pa.string())])
    path = OUT / f"{name}.parquet"
    with pq.ParquetWriter(path, schema, compression="zstd", write_statistics=False) as writer:
        for texts in groups:
            writer.write_table(pa.table({"text": pa.array(texts, pa.string())}, schema=schema))
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
    # Writers' default for v2 pages without a dictionary: the delta string encodings. Batches of
    # 40 rows make pages of more than one 32-value miniblock, ending mid-miniblock.
    for codec in ("zstd", "snappy", "gzip", "none"):
        for encoding in ("DELTA_BYTE_ARRAY", "DELTA_LENGTH_BYTE_ARRAY"):
            seed += 1
            name = f"{codec}_{'delta' if encoding == 'DELTA_BYTE_ARRAY' else 'delta_length'}_v2"
            expected[name] = write(name, make_delta_texts(seed, 150), compression=codec,
                                   use_dictionary=False, data_page_version="2.0",
                                   column_encoding={"text": encoding}, batch=40)
    expected["zstd_delta_v1"] = write("zstd_delta_v1", make_delta_texts(200, 150), compression="zstd",
                                      use_dictionary=False, data_page_version="1.0",
                                      column_encoding={"text": "DELTA_BYTE_ARRAY"}, batch=40)
    # Values that are mostly one shared 200-byte prefix: pages far smaller than their values.
    shared = "https://example.org/" + "shared/" * 26
    expected["zstd_delta_shared_prefix"] = write(
        "zstd_delta_shared_prefix", [shared + str(i) for i in range(150)], compression="zstd",
        use_dictionary=False, data_page_version="2.0", column_encoding={"text": "DELTA_BYTE_ARRAY"},
        batch=40)
    expected["zero_rows"] = write("zero_rows", [], compression="snappy")
    expected["empty_row_group"] = write_groups("empty_row_group", [["a", None, ""], [], ["b"]])
    (OUT / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=0) + "\n")


if __name__ == "__main__":
    main()
