#!/usr/bin/python3
"""PyTorch side of the GPT forward+backward benchmark: tokens/s of the reference model
(tests/reference/gpt_reference.py, CPU) for the two configs the C++ model is compared on, in fp32
and with the forward under torch.autocast(bfloat16).

Run: /usr/bin/python3 benchmarks/gpt_pytorch_reference.py [--config d4|d8] [--dtype float32|bfloat16]
                                                            [--threads 2] [--steps 5] [--warmup 2]
                                                            [--profile]
     (or /usr/bin/python3 tests/reference/gpt_reference.py --bench ...)
One step = forward + cross-entropy + backward of the whole model (no optimizer); gradients are dropped
between steps. Report both numbers next to the C++ ones, measured on the same machine and thread count.
"""
import argparse
import contextlib
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
from gpt_reference import Config, forward, param_shapes, random_params  # noqa: E402

# name: (config, batch B, sequence T)
BENCH_CONFIGS = {
    "d4": (Config(n_layer=4, n_head=2, n_kv_head=2, n_embd=256, vocab_size=65536, sequence_len=1024), 1, 1024),
    "d8": (Config(n_layer=8, n_head=4, n_kv_head=4, n_embd=512, vocab_size=8192, sequence_len=512), 4, 512),
}


def autocast(dtype):
    """PyTorch's mixed precision on the CPU for bfloat16 (what nanochat uses on a GPU), else nothing."""
    return torch.autocast("cpu", dtype=torch.bfloat16) if dtype == "bfloat16" else contextlib.nullcontext()


def flops_per_token(cfg, T):
    """nanochat's estimate (spec §2.6): 6 (N - N_wte) + 12 L H D T."""
    n = sum(shape[0] * shape[1] for _, shape in param_shapes(cfg))
    n_wte = cfg.vocab_size * cfg.n_embd
    return 6 * (n - n_wte) + 12 * cfg.n_layer * cfg.n_head * cfg.head_dim * T


def bench(name, steps, warmup, profile=False, dtype="float32"):
    cfg, B, T = BENCH_CONFIGS[name]
    g = torch.Generator().manual_seed(0)
    params = {k: v.requires_grad_(True) for k, v in random_params(cfg, g).items()}
    idx = torch.randint(0, cfg.vocab_size, (B, T), generator=g)
    targets = torch.randint(0, cfg.vocab_size, (B, T), generator=g)

    def step():
        for p in params.values():
            p.grad = None
        with autocast(dtype):
            logits = forward(cfg, params, idx)  # one mean cross-entropy, as nanochat's training step
        loss = F.cross_entropy(logits.float().view(B * T, -1), targets.view(B * T), ignore_index=-1)
        loss.backward()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    median = times[len(times) // 2]
    tokens = B * T
    gflops = flops_per_token(cfg, T) * tokens / median / 1e9
    print(f"{name} {dtype}: L={cfg.n_layer} C={cfg.n_embd} H={cfg.n_head} V={cfg.vocab_size} B={B} T={T} "
          f"threads={torch.get_num_threads()}: median {median * 1e3:.1f} ms/step (min {times[0] * 1e3:.1f}), "
          f"{tokens / median:.0f} tokens/s, {gflops:.1f} GFLOP/s (nanochat's FLOPs estimate)")
    if profile:  # one more step under the profiler: where PyTorch's time goes, by op
        with torch.autograd.profiler.profile() as prof:
            step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=[*BENCH_CONFIGS, "all"], default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--profile", action="store_true", help="also print the time per op of one step")
    ap.add_argument("--dtype", choices=["float32", "bfloat16", "all"], default="all",
                    help="bfloat16: the forward under torch.autocast (oneDNN's bf16 matmuls, AMX where there is one)")
    ap.add_argument("--bench", action="store_true", help="accepted for symmetry with gpt_reference.py")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.warmup} warmup + {args.steps} timed steps")
    for dtype in ["float32", "bfloat16"] if args.dtype == "all" else [args.dtype]:
        for name in BENCH_CONFIGS if args.config == "all" else [args.config]:
            bench(name, args.steps, args.warmup, args.profile, dtype)


if __name__ == "__main__":
    main()
