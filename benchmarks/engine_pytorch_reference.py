#!/usr/bin/python3
"""PyTorch cached decode for the side-by-side with bench_engine (docs/benchmarks.md, "Engine").

Uses the independent reference model's pieces (tests/reference/gpt_reference.py, fp32) with a
nanochat-style KV cache ([B, Hkv, Tcap, D] per layer, written at pos, read [:pos+T]); queries of
a one-token step see every cached key. Same shapes as bench_engine: prompt 256, then 64 timed
decode steps, batch 1 and 8, d4 (vocab 65536) and d8 (vocab 8192).
--dtype bfloat16 stores every matrix (wte, the block Linears, lm_head) in bf16 and multiplies in
bf16 as autocast does (the activations are rounded to bf16 at each matmul; oneDNN's bf16 GEMM);
norms, rotary, attention, softmax and the fp32 KV cache are as in float32.
Run: OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 benchmarks/engine_pytorch_reference.py
     [--threads N] [--dtype float32 bfloat16]
(Debian's OpenBLAS 0.3.21, which torch uses for fp32 matmuls, does not recognise recent Intel
CPUs and falls back to SSE3 kernels unless OPENBLAS_CORETYPE names one it has.)
"""
import argparse
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
from gpt_reference import SOFTCAP, Config, apply_rotary, random_params, rmsnorm, rotary_tables  # noqa: E402

PROMPT, STEPS = 256, 64


def attend(q, k, v, cfg):
    group = cfg.n_head // cfg.n_kv_head
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(cfg.head_dim)
    Tq, Tk = q.shape[2], k.shape[2]
    if Tq > 1:  # prefix visible, causal inside the chunk
        mask = torch.ones(Tq, Tk, dtype=torch.bool).tril(diagonal=Tk - Tq)
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1) @ v


def lin(x, w):
    """x @ w.t(); a bf16 w multiplies in bf16 (autocast's rounding of x), the result back in fp32."""
    if w.dtype == torch.bfloat16:
        return (x.to(torch.bfloat16) @ w.t()).float()
    return x @ w.t()


def forward(cfg, p, idx, cache, pos, cos, sin):
    B, T = idx.shape
    H, Hkv, D = cfg.n_head, cfg.n_kv_head, cfg.head_dim
    c, s = cos[:, pos:pos + T], sin[:, pos:pos + T]
    x = rmsnorm(p["transformer.wte.weight"][idx].float())
    for i in range(cfg.n_layer):
        pre = f"transformer.h.{i}."
        xn = rmsnorm(x)
        q = lin(xn, p[pre + "attn.c_q.weight"]).view(B, T, H, D)
        k = lin(xn, p[pre + "attn.c_k.weight"]).view(B, T, Hkv, D)
        v = lin(xn, p[pre + "attn.c_v.weight"]).view(B, T, Hkv, D)
        q, k = rmsnorm(apply_rotary(q, c, s)), rmsnorm(apply_rotary(k, c, s))
        kc, vc = cache[i]
        kc[:B, :, pos:pos + T] = k.transpose(1, 2)
        vc[:B, :, pos:pos + T] = v.transpose(1, 2)
        y = attend(q.transpose(1, 2), kc[:B, :, :pos + T], vc[:B, :, :pos + T], cfg)
        x = x + lin(y.transpose(1, 2).reshape(B, T, -1), p[pre + "attn.c_proj.weight"])
        x = x + lin(torch.relu(lin(rmsnorm(x), p[pre + "mlp.c_fc.weight"])).square(), p[pre + "mlp.c_proj.weight"])
    logits = lin(rmsnorm(x[:, -1]), p["lm_head.weight"])
    return SOFTCAP * torch.tanh(logits / SOFTCAP)


def bench(depth, vocab, batch, dtype):
    dim = 64 * depth
    heads = (dim + 127) // 128
    cfg = Config(depth, heads, heads, dim, vocab, PROMPT)
    p = random_params(cfg, torch.Generator().manual_seed(1))
    if dtype == "bfloat16":  # every matrix; the reference model has no other parameters
        p = {name: t.to(torch.bfloat16) if t.dim() == 2 else t for name, t in p.items()}
    cos, sin = rotary_tables(10 * PROMPT, cfg.head_dim, torch.float32)
    cache = [(torch.zeros(batch, heads, 1024, cfg.head_dim), torch.zeros(batch, heads, 1024, cfg.head_dim))
             for _ in range(depth)]
    prompt = torch.randint(0, vocab, (1, PROMPT))
    col = torch.randint(0, vocab, (batch, 1))
    best = float("inf")
    with torch.inference_mode():
        for _ in range(3):
            forward(cfg, p, prompt, cache, 0, cos, sin)
            for kc, vc in cache:  # broadcast the prefill to every row
                kc[1:, :, :PROMPT] = kc[:1, :, :PROMPT]
                vc[1:, :, :PROMPT] = vc[:1, :, :PROMPT]
            t0 = time.perf_counter()
            for s in range(STEPS):
                forward(cfg, p, col, cache, PROMPT + s, cos, sin)
            best = min(best, time.perf_counter() - t0)
    print(f"pytorch {dtype} decode d{depth} vocab {vocab} batch {batch}: {batch * STEPS / best:.1f} tok/s "
          f"(best of 3, {torch.get_num_threads()} threads, torch {torch.__version__})", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", nargs="+", choices=("float32", "bfloat16"), default=["float32", "bfloat16"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for dtype in args.dtype:
        for depth, vocab in ((4, 65536), (8, 8192)):
            for batch in (1, 8):
                bench(depth, vocab, batch, dtype)


if __name__ == "__main__":
    main()
