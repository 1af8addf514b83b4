#!/usr/bin/env python3
"""Writes the nested parquet fixtures of tests/data and the rows pyarrow reads back from them.

Run by hand (CI never runs Python):
    python3 -m venv build/ref-venv && build/ref-venv/bin/pip install pyarrow
    build/ref-venv/bin/python tests/reference/make_nested_parquet_fixtures.py

Output: tests/fixtures/data/parquet_nested/*.parquet and expected.json, which maps each file name
to its row groups, each a list of rows ({field: value}, as pyarrow's to_pylist gives them; null
stays null). The files carry the schemas of the Hugging Face datasets nanochat reads (SmolTalk's
list<struct<content, role>>, MMLU's list<string> choices and int64 answer, its auxiliary_train
rows wrapped in a struct, ARC's struct of lists, HumanEval's flat strings) plus the leaf types
and nestings around them: nulls at every level, empty lists, lists of lists, every codec,
PLAIN and dictionary encodings, data pages v1 and v2, DELTA_BINARY_PACKED, BYTE_STREAM_SPLIT and
RLE booleans, several row groups and several pages per column chunk. pyarrow writes only 3-level
lists, so the legacy 2-level forms of LogicalTypes.md (a repeated leaf or group inside a LIST
group, "array" and "<name>_tuple" groups, bare repeated fields) are made by rewriting the schema
in a pyarrow file's footer into one with the same levels; pyarrow then reads the rewritten file
back for the expected rows, so its reading of the legacy rules is the reference.
"""
import json
import pathlib
import random
import struct

import pyarrow as pa
import pyarrow.parquet as pq

OUT = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "data" / "parquet_nested"
WORDS = ("the of and to in is was that for on as with by at from question answer science "
         "Ünïcödé naïve café 東京 данные 🙂 \"quoted\" back\\slash").split()


def text(rng, low=1, high=12):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


# ---- the datasets' schemas -------------------------------------------------------------------
MESSAGE = pa.struct([("content", pa.string()), ("role", pa.string())])
SMOLTALK = pa.schema([("messages", pa.list_(MESSAGE)), ("source", pa.string())])
MMLU_ROW = [("question", pa.string()), ("subject", pa.string()), ("choices", pa.list_(pa.string())),
            ("answer", pa.int64())]
MMLU = pa.schema(MMLU_ROW)
# auxiliary_train: the row inside a struct column "train", its fields in the Hub's order.
MMLU_AUX = pa.schema([("train", pa.struct([MMLU_ROW[3], MMLU_ROW[2], MMLU_ROW[0], MMLU_ROW[1]]))])
ARC = pa.schema([("id", pa.string()), ("question", pa.string()),
                 ("choices", pa.struct([("text", pa.list_(pa.string())), ("label", pa.list_(pa.string()))])),
                 ("answerKey", pa.string())])
HUMANEVAL = pa.schema([(k, pa.string()) for k in ("task_id", "prompt", "canonical_solution", "test", "entry_point")])


def smoltalk_rows(seed, n, nulls=True):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        kind = rng.random()
        if nulls and i % 17 == 5:
            messages = None
        elif nulls and i % 13 == 3:
            messages = []
        else:
            messages = []
            if rng.random() < 0.3:
                messages.append({"content": "You are a helpful assistant.", "role": "system"})
            for turn in range(rng.randint(1, 4)):
                messages.append({"content": text(rng, 1, 12), "role": "user"})
                messages.append({"content": text(rng, 1, 20), "role": "assistant"})
            if nulls and kind < 0.1:
                messages[rng.randrange(len(messages))] = None  # a null element
            if nulls and 0.1 <= kind < 0.2:
                messages[-1] = {"content": None, "role": "assistant"}  # a null leaf
            if nulls and 0.2 <= kind < 0.25:
                messages[0] = {"content": "", "role": None}
        rows.append({"messages": messages, "source": None if nulls and i % 11 == 0 else rng.choice(["a", "b"])})
    return rows


def mmlu_rows(seed, n, subject=True):
    rng = random.Random(seed)
    return [{"question": text(rng, 3, 20), "subject": rng.choice(["astronomy", "virology"]) if subject else "",
             "choices": [text(rng, 1, 5) for _ in range(4)], "answer": rng.randrange(4)} for _ in range(n)]


def arc_rows(seed, n, nulls=True):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        k = rng.choice([3, 4, 5])
        labels = list("ABCDE"[:k]) if rng.random() < 0.8 else [str(j + 1) for j in range(k)]
        choices = {"text": [text(rng, 1, 6) for _ in range(k)], "label": labels}
        if nulls and i % 9 == 4:
            choices = {"text": [], "label": None}  # an empty list beside a null one
        if nulls and i % 10 == 7:
            choices = None
        rows.append({"id": f"Mercury_{i}", "question": text(rng, 4, 25), "choices": choices,
                     "answerKey": rng.choice(labels)})
    return rows


def humaneval_rows(n):
    return [{"task_id": f"HumanEval/{i}", "prompt": f"def f{i}(x):\n    \"\"\"doc\"\"\"\n",
             "canonical_solution": f"    return x + {i}\n", "test": "\n\ndef check(candidate):\n    pass\n",
             "entry_point": f"f{i}"} for i in range(n)]


# ---- leaf types and deeper nestings ----------------------------------------------------------
TYPES = pa.schema([
    ("i32", pa.int32()), ("i64", pa.int64()), ("f32", pa.float32()), ("f64", pa.float64()), ("flag", pa.bool_()),
    ("numbers", pa.list_(pa.int64())),
    ("grid", pa.list_(pa.list_(pa.int32()))),
    ("point", pa.struct([("x", pa.float64()), ("tags", pa.list_(pa.string())),
                         ("inner", pa.struct([("ok", pa.bool_()), ("n", pa.int32())]))])),
    ("items", pa.list_(pa.struct([("name", pa.string()), ("scores", pa.list_(pa.float64()))]))),
    ("required_list", pa.list_(pa.field("element", pa.int32(), nullable=False))),
])


def types_rows(seed, n):
    rng = random.Random(seed)

    def maybe(value, p=0.15):
        return None if rng.random() < p else value

    def lst(make, max_len=4, p=0.15):
        if rng.random() < p:
            return None
        return [make() for _ in range(rng.randint(0, max_len))]

    rows = []
    for i in range(n):
        rows.append({
            "i32": maybe(rng.randint(-2**31, 2**31 - 1)),
            "i64": maybe(rng.choice([rng.randint(-2**53, 2**53), rng.randint(-5, 5)])),
            "f32": maybe(struct.unpack("<f", struct.pack("<f", rng.uniform(-1e6, 1e6)))[0]),
            "f64": maybe(rng.choice([rng.uniform(-1e300, 1e300), rng.random(), -0.0, 0.5])),
            "flag": maybe(rng.random() < 0.5),
            "numbers": lst(lambda: maybe(rng.randint(-1000, 1000))),
            "grid": lst(lambda: lst(lambda: maybe(rng.randint(-9, 9)), 3), 3),
            "point": maybe({"x": maybe(rng.random()), "tags": lst(lambda: maybe(rng.choice(WORDS))),
                            "inner": maybe({"ok": maybe(rng.random() < 0.5), "n": maybe(rng.randint(0, 99))})}),
            "items": lst(lambda: maybe({"name": maybe(rng.choice(WORDS)), "scores": lst(lambda: maybe(rng.random()))})),
            "required_list": lst(lambda: rng.randint(0, 50)),
        })
    return rows


# ---- writing ---------------------------------------------------------------------------------
def write(name, rows, schema, row_group_size=40, batch=8, **options):
    table = pa.Table.from_pylist(rows, schema=schema)
    path = OUT / f"{name}.parquet"
    # pyarrow checks the page size only between write batches, so small batches are what cuts a
    # chunk into several small pages.
    options.setdefault("data_page_size", 512)
    pq.write_table(table, path, row_group_size=row_group_size, write_batch_size=batch, write_statistics=False,
                   **options)
    return read_back(path)


def read_back(path):
    reader = pq.ParquetFile(path)
    return [reader.read_row_group(g).to_pylist() for g in range(reader.num_row_groups)]


# ---- Thrift compact protocol, to rewrite a footer's schema -----------------------------------
def read_varint(buf, pos):
    shift = value = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def unzigzag(v):
    return (v >> 1) ^ -(v & 1)


def read_value(buf, pos, ttype):
    if ttype in (1, 2):  # a bool inside a list: one byte
        return buf[pos] == 1, pos + 1
    if ttype == 3:
        return buf[pos], pos + 1
    if ttype in (4, 5, 6):
        v, pos = read_varint(buf, pos)
        return unzigzag(v), pos
    if ttype == 7:
        return buf[pos:pos + 8], pos + 8
    if ttype == 8:
        n, pos = read_varint(buf, pos)
        return bytes(buf[pos:pos + n]), pos + n
    if ttype in (9, 10):
        header = buf[pos]
        pos += 1
        size, elem = header >> 4, header & 0x0F
        if size == 15:
            size, pos = read_varint(buf, pos)
        items = []
        for _ in range(size):
            item, pos = read_value(buf, pos, elem)
            items.append(item)
        return (elem, items), pos
    if ttype == 12:
        return read_struct(buf, pos)
    raise ValueError(f"thrift type {ttype} not handled")


def read_struct(buf, pos):
    fields, last = [], 0
    while True:
        header = buf[pos]
        pos += 1
        ttype = header & 0x0F
        if ttype == 0:
            return fields, pos
        delta = header >> 4
        if delta:
            fid = last + delta
        else:
            v, pos = read_varint(buf, pos)
            fid = unzigzag(v)
        last = fid
        if ttype in (1, 2):
            value = ttype == 1
        else:
            value, pos = read_value(buf, pos, ttype)
        fields.append([fid, ttype, value])


def put_varint(out, v):
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | 0x80 if v else b)
        if not v:
            return


def zigzag(v):
    return (v << 1) ^ (v >> 63)


def write_value(out, ttype, value):
    if ttype in (1, 2):
        out.append(1 if value else 2)
    elif ttype == 3:
        out.append(value)
    elif ttype in (4, 5, 6):
        put_varint(out, zigzag(value))
    elif ttype == 7:
        out += value
    elif ttype == 8:
        put_varint(out, len(value))
        out += value
    elif ttype in (9, 10):
        elem, items = value
        if len(items) < 15:
            out.append(len(items) << 4 | elem)
        else:
            out.append(0xF0 | elem)
            put_varint(out, len(items))
        for item in items:
            write_value(out, elem, item)
    elif ttype == 12:
        write_struct(out, value)


def write_struct(out, fields):
    last = 0
    for fid, ttype, value in fields:
        wire = (1 if value else 2) if ttype in (1, 2) else ttype
        if 0 < fid - last <= 15:
            out.append((fid - last) << 4 | wire)
        else:
            out.append(wire)
            put_varint(out, zigzag(fid))
        last = fid
        if ttype not in (1, 2):
            write_value(out, ttype, value)
    out.append(0)


def field(fields, fid):
    return next((f for f in fields if f[0] == fid), None)


def rewrite_schema(source, dest, edit):
    """Copies a parquet file with its footer's schema changed by edit(elements), where elements is
    a list of dicts {name, repetition, num_children, fields} in the footer's depth-first order;
    each column chunk's path_in_schema is recomputed from the new schema."""
    data = source.read_bytes()
    footer_len = struct.unpack("<I", data[-8:-4])[0]
    start = len(data) - 8 - footer_len
    meta, _ = read_struct(data, start)
    schema_field = field(meta, 2)
    elements = []
    for fields in schema_field[2][1]:
        get = lambda fid, default=None: field(fields, fid)[2] if field(fields, fid) else default
        elements.append({"name": get(4).decode(), "repetition": get(3), "num_children": get(5, 0), "fields": fields})
    edit(elements)
    new_schema = []
    for e in elements:
        fields = [f for f in e["fields"] if f[0] not in (3, 4, 5)]
        if e["repetition"] is not None:
            fields.append([3, 5, e["repetition"]])
        fields.append([4, 8, e["name"].encode()])
        if e["num_children"]:
            fields.append([5, 5, e["num_children"]])
        new_schema.append(sorted(fields, key=lambda f: f[0]))
    schema_field[2] = (12, new_schema)
    paths = leaf_paths(elements)
    for group in field(meta, 4)[2][1]:
        for column, path in zip(field(group, 1)[2][1], paths):
            field(field(column, 3)[2], 3)[2] = (8, [p.encode() for p in path])
    out = bytearray(data[:start])
    footer = bytearray()
    write_struct(footer, meta)
    out += footer + struct.pack("<I", len(footer)) + b"PAR1"
    dest.write_bytes(bytes(out))


def leaf_paths(elements):
    paths = []

    def walk(i, prefix):
        e = elements[i]
        path = prefix + [e["name"]] if i else []
        i += 1
        if e["num_children"] == 0:
            paths.append(path)
            return i
        for _ in range(e["num_children"]):
            i = walk(i, path)
        return i

    walk(0, [])
    return paths


def find(elements, name):
    return next(i for i, e in enumerate(elements) if e["name"] == name)


REPEATED = 2


def legacy_files(expected):
    rng = random.Random(77)
    rows = [{"a": None if i % 7 == 3 else [text(rng, 1, 3) for _ in range(rng.randint(0, 3))],
             "b": None if i % 5 == 1 else [{"x": text(rng, 1, 2), "y": rng.randint(0, 9)} for _ in range(rng.randint(0, 3))],
             "c": [rng.randint(-50, 50) for _ in range(rng.randint(0, 4))],
             "d": [{"s": text(rng, 1, 2)} for _ in range(rng.randint(0, 3))],
             "e": [{"s": text(rng, 1, 2)} for _ in range(rng.randint(0, 3))]}
            for i in range(60)]
    element = lambda t: pa.list_(pa.field("element", t, nullable=False))
    schema = pa.schema([
        ("a", element(pa.string())),
        ("b", element(pa.struct([pa.field("x", pa.string(), nullable=False), pa.field("y", pa.int64(), nullable=False)]))),
        pa.field("c", element(pa.int64()), nullable=False),
        ("d", element(pa.struct([pa.field("s", pa.string(), nullable=False)]))),
        ("e", element(pa.struct([pa.field("s", pa.string(), nullable=False)]))),
    ])
    source = OUT / "legacy_source.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), source, row_group_size=25, store_schema=False,
                   use_dictionary=False, compression="snappy", write_statistics=False)

    def edit(elements):
        # a: optional group a (LIST) { repeated binary array (UTF8) }: a repeated leaf is the element.
        i = find(elements, "a")
        del elements[i + 1]
        elements[i + 1].update(name="array", repetition=REPEATED)
        # b: optional group b (LIST) { repeated group list { x; y } }: a repeated group of two fields.
        i = find(elements, "b")
        del elements[i + 2]
        elements[i + 1]["num_children"] = 2
        # c: repeated int64 c, no LIST group at all: a required list.
        i = find(elements, "c")
        del elements[i:i + 2]
        elements[i].update(name="c", repetition=REPEATED)
        elements[i]["fields"] = [f for f in elements[i]["fields"] if f[0] not in (6, 10)]
        # d: optional group d (LIST) { repeated group array { required binary s } }: one field, "array".
        i = find(elements, "d")
        del elements[i + 2]
        elements[i + 1].update(name="array", num_children=1)
        # e: the same named "e_tuple".
        i = find(elements, "e")
        del elements[i + 2]
        elements[i + 1].update(name="e_tuple", num_children=1)

    rewrite_schema(source, OUT / "legacy_lists.parquet", edit)
    source.unlink()
    expected["legacy_lists"] = read_back(OUT / "legacy_lists.parquet")
    # pyarrow's reading is the reference; check it follows the rules rather than trusting it blindly.
    got = expected["legacy_lists"][0][0]
    assert isinstance(got["c"], list) and all(isinstance(v, int) for v in got["c"]), got
    assert all(set(v) == {"s"} for v in got["d"]) and all(set(v) == {"s"} for v in got["e"]), got
    assert all(set(v) == {"x", "y"} for v in got["b"] or []), got


def unsupported_files():
    """Files whose shape the reader refuses (no expected rows): a MAP column beside a readable one."""
    table = pa.table({"m": pa.array([[("k", 1)], []], pa.map_(pa.string(), pa.int64())), "text": ["a", "b"]})
    pq.write_table(table, OUT / "map_column.parquet")
    table = pa.table({"big": pa.array([1, 2**60], pa.int64())})
    pq.write_table(table, OUT / "int64_beyond_double.parquet")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.parquet"):
        old.unlink()
    expected = {}
    seed = 0
    for codec, dictionary, version in (("zstd", True, "1.0"), ("snappy", False, "2.0"), ("gzip", True, "2.0"),
                                       ("none", False, "1.0")):
        seed += 1
        name = f"smoltalk_{codec}_{'dict' if dictionary else 'plain'}_v{version[0]}"
        expected[name] = write(name, smoltalk_rows(seed, 80), SMOLTALK, compression=codec, use_dictionary=dictionary,
                               data_page_version=version)
    # As the Hub serves it: no nulls, snappy, dictionary, v1 pages, bigger pages.
    expected["smoltalk_hub"] = write("smoltalk_hub", smoltalk_rows(9, 120, nulls=False), SMOLTALK, row_group_size=60,
                                     batch=1024, data_page_size=1 << 20)
    expected["mmlu_all"] = write("mmlu_all", mmlu_rows(10, 90), MMLU, compression="zstd")
    # Older datasets releases wrote lists with pyarrow's legacy element name "item".
    expected["mmlu_auxiliary_train"] = write("mmlu_auxiliary_train", [{"train": r} for r in mmlu_rows(11, 90, False)],
                                             MMLU_AUX, use_compliant_nested_type=False)
    expected["arc_v2_zstd"] = write("arc_v2_zstd", arc_rows(12, 100), ARC, compression="zstd", data_page_version="2.0")
    expected["arc_v1_plain"] = write("arc_v1_plain", arc_rows(13, 100), ARC, use_dictionary=False)
    expected["humaneval"] = write("humaneval", humaneval_rows(30), HUMANEVAL)
    expected["types_plain_v1"] = write("types_plain_v1", types_rows(20, 70), TYPES, use_dictionary=False,
                                       compression="none")
    expected["types_dict_v2"] = write("types_dict_v2", types_rows(21, 70), TYPES, compression="snappy",
                                      data_page_version="2.0")
    encodings = {"i32": "DELTA_BINARY_PACKED", "i64": "DELTA_BINARY_PACKED", "f32": "BYTE_STREAM_SPLIT",
                 "f64": "BYTE_STREAM_SPLIT", "flag": "RLE", "numbers.list.element": "DELTA_BINARY_PACKED",
                 "grid.list.element.list.element": "DELTA_BINARY_PACKED", "point.x": "BYTE_STREAM_SPLIT",
                 "point.inner.ok": "RLE", "items.list.element.scores.list.element": "BYTE_STREAM_SPLIT"}
    expected["types_delta_split_v2"] = write("types_delta_split_v2", types_rows(22, 70), TYPES, compression="zstd",
                                             use_dictionary=False, data_page_version="2.0",
                                             column_encoding=encodings, batch=40)
    expected["types_delta_split_v1"] = write("types_delta_split_v1", types_rows(23, 70), TYPES, compression="gzip",
                                             use_dictionary=False, data_page_version="1.0",
                                             column_encoding=encodings, batch=40)
    # Row groups of no rows: a whole empty file, and an empty group between two others.
    expected["zero_rows"] = write("zero_rows", [], SMOLTALK)
    path = OUT / "empty_row_group.parquet"
    with pq.ParquetWriter(path, SMOLTALK, write_statistics=False) as writer:
        for rows in (smoltalk_rows(30, 3), [], smoltalk_rows(31, 2)):
            writer.write_table(pa.Table.from_pylist(rows, schema=SMOLTALK))
    expected["empty_row_group"] = read_back(path)
    legacy_files(expected)
    unsupported_files()
    (OUT / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
