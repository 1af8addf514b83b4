#!/usr/bin/python3
"""convert.converter_errors: step selection and every refusal of examples/convert/nanochat_to_safetensors.py
(missing files, missing/unexpected keys, shapes or dtypes that contradict model_config), each with a message
naming the file. Works on copies of tests/fixtures/model/nanochat_ckpt in a temporary directory.

Run: /usr/bin/python3 tests/convert/test_converter.py   (exit 77 = skipped: no torch)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import torch
except ImportError:
    print("SKIP: no torch for", sys.executable)
    sys.exit(77)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
CKPT = os.path.join(ROOT, "tests", "fixtures", "model", "nanochat_ckpt")
CONVERTER = os.path.join(ROOT, "examples", "convert", "nanochat_to_safetensors.py")
sys.path.insert(0, os.path.dirname(CONVERTER))
import nanochat_to_safetensors as conv  # noqa: E402

failures = []


def read_safetensors(path):
    """Minimal independent reader: (metadata, {name: tensor}) for F32/BF16 files."""
    import struct
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert (8 + n) % 8 == 0, "header not padded to 8 bytes"
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        dtype = {"F32": torch.float32, "BF16": torch.bfloat16}[e["dtype"]]
        out[name] = torch.frombuffer(bytearray(data[b:end]), dtype=dtype).reshape(e["shape"])
    return meta, out


def check(label, condition, detail=""):
    if not condition:
        failures.append(f"{label}: {detail}")
        print("FAIL", label, detail)
    else:
        print("ok  ", label)


def expect_error(label, source, fragment, step=None):
    try:
        conv.convert(source, os.path.join(tmp, "out.safetensors"), step)
    except conv.ConvertError as e:
        check(label, fragment in str(e), f"message {str(e)!r} lacks {fragment!r}")
        return
    check(label, False, "converted without error")


def copy_ckpt(name, steps=(3, 10)):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    for s in steps:
        for f in (f"model_{s:06d}.pt", f"meta_{s:06d}.json"):
            shutil.copy(os.path.join(CKPT, f), d)
    return d


def rewrite_state(d, step, edit):
    path = os.path.join(d, f"model_{step:06d}.pt")
    state = torch.load(path)
    edit(state)
    torch.save(state, path)


def rewrite_meta(d, step, edit):
    path = os.path.join(d, f"meta_{step:06d}.json")
    with open(path) as f:
        meta = json.load(f)
    edit(meta)
    with open(path, "w") as f:
        json.dump(meta, f)


with tempfile.TemporaryDirectory() as tmp:
    # Step selection: a file path or --step picks step 3; values equal that checkpoint's (no prefixes).
    step3 = torch.load(os.path.join(CKPT, "model_000003.pt"))
    for label, source, step in [("file path selects its step", os.path.join(CKPT, "model_000003.pt"), None),
                                ("--step selects a step", CKPT, 3)]:
        out = os.path.join(tmp, "step3.safetensors")
        conv.convert(source, out, step)
        meta, tensors = read_safetensors(out)
        check(label, meta.get("source_step") == "3" and set(tensors) == set(step3) and
              all(torch.equal(tensors[k], step3[k]) for k in step3), f"metadata {meta}")
    # The default (largest step, 10) strips _orig_mod. and upcasts the bf16 wte exactly.
    out = os.path.join(tmp, "step10.safetensors")
    conv.convert(CKPT, out)
    meta, tensors = read_safetensors(out)
    step10 = torch.load(os.path.join(CKPT, "model_000010.pt"))
    check("largest step by default", meta.get("source_step") == "10" and
          all(torch.equal(tensors[k[len("_orig_mod."):]], step10[k].float()) for k in step10))
    check("metadata is model_config", {k: meta[k] for k in conv.CONFIG_KEYS} ==
          {k: str(v) for k, v in json.load(open(os.path.join(CKPT, "meta_000010.json")))["model_config"].items()})

    os.makedirs(os.path.join(tmp, "empty"))
    expect_error("empty directory", os.path.join(tmp, "empty"), "no model_SSSSSS.pt")
    expect_error("absent step", CKPT, "model_000007.pt: missing", step=7)
    d = copy_ckpt("no_meta", steps=(10,))
    os.remove(os.path.join(d, "meta_000010.json"))
    expect_error("missing meta", d, "meta_000010.json: missing")
    expect_error("not a checkpoint", os.path.join(CKPT, "expected.safetensors"), "not a directory or a model_")

    d = copy_ckpt("missing_key")
    rewrite_state(d, 10, lambda s: s.pop("_orig_mod.transformer.h.1.attn.c_v.weight"))
    expect_error("missing key", d, "missing ['transformer.h.1.attn.c_v.weight']")
    d = copy_ckpt("unexpected_key")
    rewrite_state(d, 10, lambda s: s.update({"transformer.h.2.attn.c_q.weight": torch.zeros(16, 16)}))
    expect_error("unexpected key", d, "unexpected ['transformer.h.2.attn.c_q.weight']")
    d = copy_ckpt("shape")
    rewrite_meta(d, 10, lambda m: m["model_config"].update(vocab_size=41))
    expect_error("shape vs model_config", d, "transformer.wte.weight has shape [40, 16] but model_config implies [41, 16]")
    d = copy_ckpt("dtype")
    rewrite_state(d, 10, lambda s: s.update({"lm_head.weight": torch.zeros(40, 16, dtype=torch.int32)}))
    expect_error("integer tensor", d, "lm_head.weight is torch.int32")
    d = copy_ckpt("config")
    rewrite_meta(d, 10, lambda m: m["model_config"].pop("n_kv_head"))
    expect_error("incomplete model_config", d, "model_config lacks n_kv_head")
    d = copy_ckpt("heads")
    rewrite_meta(d, 10, lambda m: m["model_config"].update(n_head=3))
    expect_error("inconsistent heads", d, "inconsistent heads")
    d = copy_ckpt("corrupt")
    with open(os.path.join(d, "model_000010.pt"), "r+b") as f:
        f.truncate(100)
    expect_error("corrupt pickle", d, "model_000010.pt: cannot load")

    # The command line: exit 1, the message on stderr, nothing left at the output path.
    out = os.path.join(tmp, "cli.safetensors")
    r = subprocess.run([sys.executable, CONVERTER, os.path.join(tmp, "empty"), "-o", out],
                       capture_output=True, text=True)
    check("CLI error exit", r.returncode == 1 and "error:" in r.stderr and not os.path.exists(out)
          and not os.path.exists(out + ".tmp"), f"rc {r.returncode} stderr {r.stderr!r}")
    r = subprocess.run([sys.executable, CONVERTER, CKPT, "-o", out, "--dtype", "bf16"], capture_output=True, text=True)
    meta, tensors = read_safetensors(out)
    check("CLI bf16", r.returncode == 0 and all(t.dtype == torch.bfloat16 for t in tensors.values()) and
          torch.equal(tensors["lm_head.weight"], step10["_orig_mod.lm_head.weight"].bfloat16()), r.stderr)

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
