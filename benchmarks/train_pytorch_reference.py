#!/usr/bin/python3
"""PyTorch side of the base_train speed comparison: whole training steps of the reference model
(tests/reference/gpt_reference.py, CPU; fp32, or the forward under torch.autocast(bfloat16)) with
nanochat's optimizers as tests/reference/optim_reference.py writes them (the same code the 5-step
parity fixture comes from): forward, mean cross-entropy, backward, global gradient clipping at
1.0, the LR multiplier, AdamW for lm_head and wte, Muon (five Newton-Schulz iterations in fp32)
for every block matrix.

Run: /usr/bin/python3 benchmarks/train_pytorch_reference.py [--config main|d8] [--dtype float32|bfloat16]
                                                              [--threads 2] [--steps 10]
and compare with base_train's steady tok/sec for the same shape (docs/benchmarks.md gives both
commands). The tokens are random: PyTorch reads no data, which only flatters it.
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_pytorch_reference import autocast  # noqa: E402
from gpt_reference import Config, forward, random_params  # noqa: E402
from optim_reference import nanochat_optimizers, optimizer_step  # noqa: E402

# name: (config, device batch B, sequence T); "main" is the main job's base_train shape.
TRAIN_CONFIGS = {
    "main": (Config(n_layer=4, n_head=2, n_kv_head=2, n_embd=256, vocab_size=4096, sequence_len=256), 8, 256),
    "d8": (Config(n_layer=8, n_head=4, n_kv_head=4, n_embd=512, vocab_size=4096, sequence_len=512), 4, 512),
}


def bench(name, steps, warmup, dtype):
    cfg, B, T = TRAIN_CONFIGS[name]
    g = torch.Generator().manual_seed(0)
    params = {k: v.requires_grad_(True) for k, v in random_params(cfg, g).items()}
    adamw, muon = nanochat_optimizers(cfg, params)
    batches = [(torch.randint(0, cfg.vocab_size, (B, T), generator=g),
                torch.randint(0, cfg.vocab_size, (B, T), generator=g)) for _ in range(4)]

    def step(it):
        idx, targets = batches[it % len(batches)]
        with autocast(dtype):
            logits = forward(cfg, params, idx)
        loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1), ignore_index=-1)
        loss.backward()
        optimizer_step(adamw, muon, params, it, 1.0)

    for it in range(warmup):
        step(it)
    times = []
    for it in range(warmup, warmup + steps):
        t0 = time.perf_counter()
        step(it)
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    print(f"{name} {dtype}: L={cfg.n_layer} C={cfg.n_embd} H={cfg.n_head} V={cfg.vocab_size} B={B} T={T} "
          f"threads={torch.get_num_threads()}: median {median * 1e3:.1f} ms/step (min {min(times) * 1e3:.1f}), "
          f"{B * T / median:.0f} tok/s (best step {B * T / min(times):.0f})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=[*TRAIN_CONFIGS, "all"], default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--dtype", choices=["float32", "bfloat16", "all"], default="all",
                    help="bfloat16: the forward under torch.autocast, as base_train --dtype bfloat16")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.warmup} warmup + {args.steps} timed steps")
    for dtype in ["float32", "bfloat16"] if args.dtype == "all" else [args.dtype]:
        for name in TRAIN_CONFIGS if args.config == "all" else [args.config]:
            bench(name, args.steps, args.warmup, dtype)


if __name__ == "__main__":
    main()
