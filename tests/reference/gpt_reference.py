#!/usr/bin/python3
"""Independent PyTorch model of nanochat's GPT (spec §2.3-2.5) and the parity fixtures for the C++ model.

Run: /usr/bin/python3 tests/reference/gpt_reference.py          regenerates tests/fixtures/model/
     /usr/bin/python3 tests/reference/gpt_reference.py --bench  runs benchmarks/gpt_pytorch_reference.py
Needs only Debian's python3-torch (1.13); files are written by save_safetensors below, byte-reproducible.

Written from the spec, not from nanochat's code: torch 1.13 has neither F.rms_norm nor GQA in SDPA, so
rmsnorm and attention are spelled out. Everything is float32 (the CPU path of nanochat), except in the
bf16 fixtures, whose matmuls (Linear layers and attention's) round their operands to bf16 (Bf16Matmul).

Fixtures (one safetensors file per config; every tensor F32 unless noted):
  <param name>          every parameter, nanochat state_dict names, Linear weights [out, in], random non-zero
  idx, targets          I64 [B, T]; targets == -1 are ignored
  logits                [B, T, V] after the 15*tanh(x/15) softcap
  loss                  [] mean cross-entropy over non-ignored targets
  losses                [B, T] reduction "none" (0 where ignored)
  grad.<param name>     d loss / d param
  metadata              n_layer n_head n_kv_head n_embd vocab_size sequence_len batch seq (decimal strings)
nanochat_ckpt/ holds a tiny checkpoint in nanochat's own format for the converter test (see write_checkpoint).
"""
import json
import math
import os
import struct
import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "model")
SOFTCAP = 15.0
ROTARY_BASE = 10000.0


@dataclass
class Config:
    n_layer: int
    n_head: int
    n_kv_head: int
    n_embd: int
    vocab_size: int
    sequence_len: int

    @property
    def head_dim(self):
        return self.n_embd // self.n_head


def param_shapes(cfg):
    """(name, [out, in]) for every parameter, in nanochat's state_dict order."""
    C, D = cfg.n_embd, cfg.head_dim
    shapes = [("transformer.wte.weight", [cfg.vocab_size, C])]
    for i in range(cfg.n_layer):
        p = f"transformer.h.{i}."
        shapes += [
            (p + "attn.c_q.weight", [cfg.n_head * D, C]),
            (p + "attn.c_k.weight", [cfg.n_kv_head * D, C]),
            (p + "attn.c_v.weight", [cfg.n_kv_head * D, C]),
            (p + "attn.c_proj.weight", [C, C]),
            (p + "mlp.c_fc.weight", [4 * C, C]),
            (p + "mlp.c_proj.weight", [C, 4 * C]),
        ]
    shapes.append(("lm_head.weight", [cfg.vocab_size, C]))
    return shapes


def random_params(cfg, generator, dtype=torch.float32):
    """wte ~ N(0, 1); every Linear ~ N(0, 1/fan_in), so no matrix is zero and activations stay O(1)."""
    params = {}
    for name, shape in param_shapes(cfg):
        std = 1.0 if name == "transformer.wte.weight" else 1.0 / math.sqrt(shape[1])
        params[name] = (torch.randn(shape, generator=generator, dtype=torch.float32) * std).to(dtype)
    return params


def rmsnorm(x):
    # No weight; eps = machine epsilon of x's dtype, as F.rms_norm's default.
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + torch.finfo(x.dtype).eps)


def rotary_tables(T, D, dtype):
    """cos, sin [1, T, 1, D/2]: computed in fp32, rounded to bf16 as nanochat stores them."""
    inv_freq = 1.0 / (ROTARY_BASE ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
    angles = torch.outer(torch.arange(T, dtype=torch.float32), inv_freq)
    cos = angles.cos().bfloat16().to(dtype)
    sin = angles.sin().bfloat16().to(dtype)
    return cos[None, :, None, :], sin[None, :, None, :]


def apply_rotary(x, cos, sin):
    """Half-split layout: y1 = x1 cos + x2 sin, y2 = -x1 sin + x2 cos (x is [B, T, H, D])."""
    d = x.shape[-1] // 2
    x1, x2 = x[..., :d], x[..., d:]
    return torch.cat([x1 * cos + x2 * sin, -x1 * sin + x2 * cos], dim=-1)


def to_bf16(x):
    return x.bfloat16().to(x.dtype)


class Bf16Matmul(torch.autograd.Function):
    """a @ b with both operands rounded to bf16 and the sums in their dtype; the backward rounds its
    operands likewise (da = bf16(dy) bf16(b)^T, db = bf16(a)^T bf16(dy)): a matmul computing in bf16,
    forward and backward, as the C++ model's bf16 Config does for Linear layers and attention."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return to_bf16(a) @ to_bf16(b)

    @staticmethod
    def backward(ctx, dy):
        a, b = ctx.saved_tensors
        dy = to_bf16(dy)
        da = dy @ to_bf16(b).transpose(-2, -1)
        # a may be batched where b (a weight) is not: sum db over the batch.
        db = (to_bf16(a).transpose(-2, -1) @ dy).reshape(-1, *b.shape).sum(0) if a.dim() > b.dim() else \
            to_bf16(a).transpose(-2, -1) @ dy
        return da, db


def matmul(a, b, compute):
    """a @ b in the compute type: "fp32" (as stored) or "bf16" (see Bf16Matmul)."""
    return Bf16Matmul.apply(a, b) if compute == "bf16" else a @ b


def linear(x, w, compute):
    """A Linear layer's product x @ w.t() in the compute type."""
    return matmul(x, w.t(), compute)


def attention(x, params, prefix, cfg, cos, sin, compute="fp32"):
    B, T, C = x.shape
    H, Hkv, D = cfg.n_head, cfg.n_kv_head, cfg.head_dim
    q = linear(x, params[prefix + "c_q.weight"], compute).view(B, T, H, D)
    k = linear(x, params[prefix + "c_k.weight"], compute).view(B, T, Hkv, D)
    v = linear(x, params[prefix + "c_v.weight"], compute).view(B, T, Hkv, D)
    q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
    q, k = rmsnorm(q), rmsnorm(k)  # QK-norm after rotary
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, heads, T, D]
    group = H // Hkv  # query head h reads KV head h // group
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    scores = matmul(q, k.transpose(-2, -1), compute) / math.sqrt(D)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    scores = scores.masked_fill(~causal, float("-inf"))
    y = matmul(scores.softmax(dim=-1), v, compute)  # [B, H, T, D]
    y = y.transpose(1, 2).reshape(B, T, C)
    return linear(y, params[prefix + "c_proj.weight"], compute)


def mlp(x, params, prefix, compute="fp32"):
    h = F.relu(linear(x, params[prefix + "c_fc.weight"], compute)).square()
    return linear(h, params[prefix + "c_proj.weight"], compute)


def forward(cfg, params, idx, targets=None, compute="fp32"):
    """Returns softcapped logits [B, T, V], and with targets also (mean loss, per-token losses [B, T]).
    compute: the matmuls' compute type, "fp32" or "bf16" (see Bf16Matmul)."""
    B, T = idx.shape
    dtype = params["lm_head.weight"].dtype
    cos, sin = rotary_tables(T, cfg.head_dim, dtype)
    x = rmsnorm(params["transformer.wte.weight"][idx])
    for i in range(cfg.n_layer):
        p = f"transformer.h.{i}."
        x = x + attention(rmsnorm(x), params, p + "attn.", cfg, cos, sin, compute)
        x = x + mlp(rmsnorm(x), params, p + "mlp.", compute)
    x = rmsnorm(x)
    logits = linear(x, params["lm_head.weight"], compute)
    logits = SOFTCAP * torch.tanh(logits / SOFTCAP)
    if targets is None:
        return logits
    flat_logits, flat_targets = logits.reshape(B * T, -1), targets.reshape(B * T)
    loss = F.cross_entropy(flat_logits, flat_targets, ignore_index=-1)
    losses = F.cross_entropy(flat_logits, flat_targets, ignore_index=-1, reduction="none").view(B, T)
    return logits, loss, losses


def save_safetensors(path, tensors, metadata):
    """Writes tensors (name -> F32/I64 torch tensor) in the given order, metadata keys sorted, so that
    regenerating gives the same bytes (the safetensors package orders metadata at random)."""
    names = {torch.float32: "F32", torch.int64: "I64"}
    header, blobs, offset = {"__metadata__": dict(sorted(metadata.items()))}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().numpy().tobytes()  # little-endian hosts only, as the C++ side
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def rel_err(a, ref):
    return ((a.double() - ref.double()).norm() / ref.double().norm().clamp_min(1e-30)).item()


FIXTURE_CONFIGS = {
    # name: (config, batch, seq, seed, ignore fraction, whole ignored rows)
    "gqa": (Config(2, 4, 2, 64, 97, 16), 2, 16, 1, 0.2, []),
    "odd_t": (Config(2, 2, 2, 64, 128, 13), 3, 13, 2, 0.1, []),
    "mqa_ignored": (Config(3, 3, 1, 24, 50, 7), 2, 7, 3, 0.5, [1]),
    # longer than the Cpu attention's 128-row query blocks, and not a multiple of them
    "long_t": (Config(1, 2, 1, 32, 61, 150), 2, 150, 4, 0.1, []),
}
# The same, with every matmul computed in bf16 (Bf16Matmul).
BF16_FIXTURE_CONFIGS = {
    "gqa_bf16": (Config(2, 4, 2, 64, 97, 16), 2, 16, 5, 0.2, []),
}


def write_fixture(name, cfg, B, T, seed, ignore_fraction, ignored_rows, compute="fp32"):
    g = torch.Generator().manual_seed(seed)
    params = random_params(cfg, g)
    idx = torch.randint(0, cfg.vocab_size, (B, T), generator=g, dtype=torch.int64)
    targets = torch.randint(0, cfg.vocab_size, (B, T), generator=g, dtype=torch.int64)
    targets[torch.rand(B, T, generator=g) < ignore_fraction] = -1
    for row in ignored_rows:
        targets[row] = -1
    assert (targets != -1).any(), "at least one target must count"

    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    logits, loss, losses = forward(cfg, leaves, idx, targets, compute)
    loss.backward()

    # The same computation in float64 bounds how far fp32 rounding alone moves each result; the C++
    # tests compare at 1e-5, which is only fair if the fp32 reference is well inside that. With bf16
    # products it says instead how far bf16 moves them (the C++ test must see that much difference
    # between its fp32 and bf16 computations, and far less between its bf16 one and this).
    leaves64 = {k: v.double().requires_grad_(True) for k, v in params.items()}
    logits64, loss64, losses64 = forward(cfg, leaves64, idx, targets)
    loss64.backward()
    worst = max([rel_err(logits, logits64), rel_err(loss, loss64), rel_err(losses, losses64)] +
                [rel_err(leaves[k].grad, leaves64[k].grad) for k in params])
    if compute == "fp32":
        assert worst < 1e-5, f"{name}: fp32 reference is {worst:.2e} from fp64, too ill-conditioned"

    tensors = dict(params)
    tensors.update(idx=idx, targets=targets, logits=logits.detach(), loss=loss.detach().reshape(()),
                   losses=losses.detach())
    for k in params:
        assert leaves[k].grad is not None and leaves[k].grad.abs().sum() > 0, f"{name}: zero grad for {k}"
        tensors["grad." + k] = leaves[k].grad
    metadata = {
        "n_layer": cfg.n_layer, "n_head": cfg.n_head, "n_kv_head": cfg.n_kv_head, "n_embd": cfg.n_embd,
        "vocab_size": cfg.vocab_size, "sequence_len": cfg.sequence_len, "batch": B, "seq": T,
    }
    path = os.path.join(FIXTURES, name + ".safetensors")
    save_safetensors(path, tensors, {k: str(v) for k, v in metadata.items()})
    print(f"wrote {os.path.relpath(path)}: {os.path.getsize(path)} bytes, loss {loss.item():.6f}, "
          f"{int((targets != -1).sum())}/{B * T} targets counted, {compute} vs fp64 worst rel err {worst:.1e}")


CKPT_CONFIG = Config(n_layer=2, n_head=2, n_kv_head=1, n_embd=16, vocab_size=40, sequence_len=8)


def write_checkpoint():
    """A nanochat-format checkpoint dir for the converter test: step 3 (plain keys, all fp32) and the
    newer step 10 (torch.compile's `_orig_mod.` prefixes, wte in bf16, as CUDA runs save it), each with
    its meta_SSSSSS.json. expected.safetensors holds step 10's state as fp32 under nanochat's names plus
    `idx` [2, 5] and the softcapped `logits` [2, 5, V] that state gives (for the C++ model's tests)."""
    out = os.path.join(FIXTURES, "nanochat_ckpt")
    os.makedirs(out, exist_ok=True)
    cfg = CKPT_CONFIG
    model_config = {k: getattr(cfg, k) for k in
                    ["sequence_len", "vocab_size", "n_layer", "n_head", "n_kv_head", "n_embd"]}
    g = torch.Generator().manual_seed(1234)
    for step, compiled in [(3, False), (10, True)]:
        params = random_params(cfg, g)
        state = {}
        for k, v in params.items():
            if k == "transformer.wte.weight" and compiled:
                v = v.bfloat16()
            state[("_orig_mod." if compiled else "") + k] = v
        torch.save(state, os.path.join(out, f"model_{step:06d}.pt"))
        meta = {"step": step, "val_bpb": 3.5, "model_config": model_config,
                "user_config": {"depth": cfg.n_layer}, "device_batch_size": 2, "max_seq_len": cfg.sequence_len}
        with open(os.path.join(out, f"meta_{step:06d}.json"), "w") as f:
            json.dump(meta, f, indent=2)
    # params now holds step 10's values; the model runs on the fp32 upcast of the bf16 wte.
    state32 = {k: (v.bfloat16().float() if k == "transformer.wte.weight" else v) for k, v in params.items()}
    idx = torch.randint(0, cfg.vocab_size, (2, 5), generator=g, dtype=torch.int64)
    with torch.no_grad():
        logits = forward(cfg, state32, idx)
    expected = dict(state32, idx=idx, logits=logits)
    save_safetensors(os.path.join(out, "expected.safetensors"), expected,
                     dict({k: str(v) for k, v in model_config.items()}, source_step="10"))
    print(f"wrote {os.path.relpath(out)}/ (model/meta for steps 3 and 10, expected.safetensors)")


def main():
    if "--bench" in sys.argv[1:]:
        import runpy
        sys.argv = [sys.argv[0]] + [a for a in sys.argv[1:] if a != "--bench"]
        runpy.run_path(os.path.join(HERE, "..", "..", "benchmarks", "gpt_pytorch_reference.py"), run_name="__main__")
        return
    torch.set_num_threads(1)  # reduction order, hence the fixtures' last bits, independent of the machine
    os.makedirs(FIXTURES, exist_ok=True)
    for name, (cfg, B, T, seed, ignore_fraction, rows) in FIXTURE_CONFIGS.items():
        write_fixture(name, cfg, B, T, seed, ignore_fraction, rows)
    for name, (cfg, B, T, seed, ignore_fraction, rows) in BF16_FIXTURE_CONFIGS.items():
        write_fixture(name, cfg, B, T, seed, ignore_fraction, rows, compute="bf16")
    write_checkpoint()


if __name__ == "__main__":
    main()
