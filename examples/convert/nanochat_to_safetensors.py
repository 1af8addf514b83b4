#!/usr/bin/python3
"""Converts a nanochat checkpoint (model_SSSSSS.pt + meta_SSSSSS.json) into one safetensors file that
nanochat.cpp loads: nanochat's parameter names, F32 by default, the model_config as metadata.

Run: /usr/bin/python3 examples/convert/nanochat_to_safetensors.py CHECKPOINT -o model.safetensors
         [--step N] [--dtype f32|bf16]
CHECKPOINT is a checkpoint directory (e.g. ~/.cache/nanochat/base_checkpoints/d20; the largest step is
taken unless --step says otherwise) or a model_SSSSSS.pt file (its meta_SSSSSS.json must sit beside it).
Needs torch (to unpickle the state dict); the output is written without the safetensors package.
"""
import argparse
import glob
import json
import os
import re
import struct
import sys

import torch

CONFIG_KEYS = ["sequence_len", "vocab_size", "n_layer", "n_head", "n_kv_head", "n_embd"]
DTYPES = {"f32": (torch.float32, "F32"), "bf16": (torch.bfloat16, "BF16")}


class ConvertError(Exception):
    pass


def find_checkpoint(source, step):
    """(model path, meta path, step) for a directory + optional step, or a model_SSSSSS.pt file."""
    if os.path.isdir(source):
        if step is None:
            steps = [int(m.group(1)) for p in glob.glob(os.path.join(source, "model_*.pt"))
                     if (m := re.fullmatch(r"model_(\d+)\.pt", os.path.basename(p)))]
            if not steps:
                raise ConvertError(f"{source}: no model_SSSSSS.pt checkpoint in this directory")
            step = max(steps)
        model = os.path.join(source, f"model_{step:06d}.pt")
    else:
        m = re.fullmatch(r"model_(\d+)\.pt", os.path.basename(source))
        if not m:
            raise ConvertError(f"{source}: not a directory or a model_SSSSSS.pt file")
        if step is not None and step != int(m.group(1)):
            raise ConvertError(f"{source}: --step {step} contradicts the file name")
        model, step = source, int(m.group(1))
    meta = os.path.join(os.path.dirname(model), f"meta_{step:06d}.json")
    for path in (model, meta):
        if not os.path.isfile(path):
            raise ConvertError(f"{path}: missing (step {step})")
    return model, meta, step


def read_model_config(meta_path):
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise ConvertError(f"{meta_path}: cannot read: {e}")
    config = meta.get("model_config") if isinstance(meta, dict) else None
    if not isinstance(config, dict):
        raise ConvertError(f"{meta_path}: no model_config object")
    missing = [k for k in CONFIG_KEYS if k not in config]
    if missing:
        raise ConvertError(f"{meta_path}: model_config lacks {', '.join(missing)}")
    bad = [k for k in CONFIG_KEYS if not isinstance(config[k], int) or config[k] <= 0]
    if bad:
        raise ConvertError(f"{meta_path}: model_config {', '.join(bad)} must be positive integers")
    c = {k: config[k] for k in CONFIG_KEYS}
    if c["n_embd"] % c["n_head"] or c["n_head"] % c["n_kv_head"] or c["n_kv_head"] > c["n_head"]:
        raise ConvertError(f"{meta_path}: inconsistent heads in model_config {c}")
    return c


def expected_shapes(c):
    """nanochat's state_dict names and shapes (spec §2.2), in the order the file stores them."""
    C, D = c["n_embd"], c["n_embd"] // c["n_head"]
    shapes = {"transformer.wte.weight": [c["vocab_size"], C]}
    for i in range(c["n_layer"]):
        p = f"transformer.h.{i}."
        shapes[p + "attn.c_q.weight"] = [c["n_head"] * D, C]
        shapes[p + "attn.c_k.weight"] = [c["n_kv_head"] * D, C]
        shapes[p + "attn.c_v.weight"] = [c["n_kv_head"] * D, C]
        shapes[p + "attn.c_proj.weight"] = [C, C]
        shapes[p + "mlp.c_fc.weight"] = [4 * C, C]
        shapes[p + "mlp.c_proj.weight"] = [C, 4 * C]
    shapes["lm_head.weight"] = [c["vocab_size"], C]
    return shapes


def load_state(model_path, config):
    try:
        try:
            state = torch.load(model_path, map_location="cpu", weights_only=True)
        except TypeError:  # torch older than 1.13 has no weights_only
            state = torch.load(model_path, map_location="cpu")
    except Exception as e:  # a corrupt pickle raises anything from EOFError to RuntimeError
        raise ConvertError(f"{model_path}: cannot load: {e}")
    if not isinstance(state, dict):
        raise ConvertError(f"{model_path}: not a state dict")
    # torch.compile'd models save keys as _orig_mod.<name>; nanochat's loader strips the prefix.
    state = {k[len("_orig_mod."):] if k.startswith("_orig_mod.") else k: v for k, v in state.items()}
    shapes = expected_shapes(config)
    missing = [k for k in shapes if k not in state]
    unexpected = [k for k in state if k not in shapes]
    if missing or unexpected:
        raise ConvertError(f"{model_path}: state dict does not match model_config {config}: "
                           f"missing {missing or 'none'}, unexpected {unexpected or 'none'}")
    for k, shape in shapes.items():
        t = state[k]
        if not isinstance(t, torch.Tensor) or t.dtype not in (torch.float32, torch.bfloat16):
            raise ConvertError(f"{model_path}: {k} is {getattr(t, 'dtype', type(t).__name__)}, "
                               "expected a float32 or bfloat16 tensor")
        if list(t.shape) != shape:
            raise ConvertError(f"{model_path}: {k} has shape {list(t.shape)} but model_config implies {shape}")
    return {k: state[k] for k in shapes}


def write_safetensors(path, tensors, metadata):
    """tensors: name -> (safetensors dtype name, shape, raw little-endian bytes), stored in the given
    order; writes path.tmp, fsyncs, renames. Header padded with spaces to 8-byte alignment."""
    header = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for _, _, data in tensors.values():
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise ConvertError(f"{path}: cannot write: {e}")


def tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16; the bits are the same as int16's
        t = t.view(torch.int16)
    a = t.numpy()
    return (a if sys.byteorder == "little" else a.byteswap()).tobytes()


def convert(source, output, step=None, dtype="f32"):
    model_path, meta_path, step = find_checkpoint(source, step)
    config = read_model_config(meta_path)
    state = load_state(model_path, config)
    torch_dtype, st_dtype = DTYPES[dtype]
    tensors = {k: (st_dtype, list(v.shape), tensor_bytes(v.to(torch_dtype))) for k, v in state.items()}
    metadata = {k: str(v) for k, v in config.items()}
    metadata["source_step"] = str(step)
    write_safetensors(output, tensors, metadata)
    return model_path, step


def main():
    ap = argparse.ArgumentParser(description="Convert a nanochat checkpoint to safetensors for nanochat.cpp.")
    ap.add_argument("checkpoint", help="checkpoint directory or model_SSSSSS.pt file")
    ap.add_argument("-o", "--output", required=True, help="output .safetensors path")
    ap.add_argument("--step", type=int, help="checkpoint step (default: the largest in the directory)")
    ap.add_argument("--dtype", choices=list(DTYPES), default="f32",
                    help="element type of every tensor in the output (bf16 keeps a bf16 wte exactly)")
    args = ap.parse_args()
    try:
        model_path, step = convert(args.checkpoint, args.output, args.step, args.dtype)
    except ConvertError as e:
        print(f"nanochat_to_safetensors: error: {e}", file=sys.stderr)
        return 1
    print(f"converted {model_path} (step {step}) -> {args.output} [{args.dtype}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
