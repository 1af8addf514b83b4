#!/usr/bin/python3
"""PyTorch cached decode for the side-by-side with bench_engine (docs/benchmarks.md, "Engine").

Uses the independent reference model's pieces (tests/reference/gpt_reference.py, fp32) with a
nanochat-style KV cache ([B, Hkv, Tcap, D] per layer, written at pos, read [:pos+T]); queries of
a one-token step see every cached key. Same shapes as bench_engine: prompt 256, then 64 timed
decode steps, batch 1 and 8, d4 (vocab 65536) and d8 (vocab 8192).
Run: /usr/bin/python3 benchmarks/engine_pytorch_reference.py [--threads N]
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


def forward(cfg, p, idx, cache, pos, cos, sin):
    B, T = idx.shape
    H, Hkv, D = cfg.n_head, cfg.n_kv_head, cfg.head_dim
    c, s = cos[:, pos:pos + T], sin[:, pos:pos + T]
    x = rmsnorm(p["transformer.wte.weight"][idx])
    for i in range(cfg.n_layer):
        pre = f"transformer.h.{i}."
        xn = rmsnorm(x)
        q = (xn @ p[pre + "attn.c_q.weight"].t()).view(B, T, H, D)
        k = (xn @ p[pre + "attn.c_k.weight"].t()).view(B, T, Hkv, D)
        v = (xn @ p[pre + "attn.c_v.weight"].t()).view(B, T, Hkv, D)
        q, k = rmsnorm(apply_rotary(q, c, s)), rmsnorm(apply_rotary(k, c, s))
        kc, vc = cache[i]
        kc[:B, :, pos:pos + T] = k.transpose(1, 2)
        vc[:B, :, pos:pos + T] = v.transpose(1, 2)
        y = attend(q.transpose(1, 2), kc[:B, :, :pos + T], vc[:B, :, :pos + T], cfg)
        x = x + y.transpose(1, 2).reshape(B, T, -1) @ p[pre + "attn.c_proj.weight"].t()
        x = x + torch.relu(rmsnorm(x) @ p[pre + "mlp.c_fc.weight"].t()).square() @ p[pre + "mlp.c_proj.weight"].t()
    logits = rmsnorm(x[:, -1]) @ p["lm_head.weight"].t()
    return SOFTCAP * torch.tanh(logits / SOFTCAP)


def bench(depth, vocab, batch):
    dim = 64 * depth
    heads = (dim + 127) // 128
    cfg = Config(depth, heads, heads, dim, vocab, PROMPT)
    p = random_params(cfg, torch.Generator().manual_seed(1))
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
    print(f"pytorch decode d{depth} vocab {vocab} batch {batch}: {batch * STEPS / best:.1f} tok/s "
          f"(best of 3, {torch.get_num_threads()} threads, torch {torch.__version__})", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for depth, vocab in ((4, 65536), (8, 8192)):
        for batch in (1, 8):
            bench(depth, vocab, batch)


if __name__ == "__main__":
    main()
