#!/usr/bin/python3
"""Optimizer fixtures for the C++ tests, from PyTorch (Debian's python3-torch, fp32, CPU).

Run: /usr/bin/python3 tests/reference/optim_reference.py   (rewrites tests/fixtures/optim/)

- adamw.safetensors: torch.optim.AdamW itself (betas 0.8/0.95, eps 1e-10, two parameter groups
  with their own lr, one with weight decay), two steps on fixed gradients; the parameters after
  each step.
- muon.safetensors: Muon written from the spec (§3.2) in fp32 — momentum with Nesterov, Frobenius
  normalisation, five quintic Newton-Schulz iterations (a, b, c) = (3.4445, -4.7750, 2.0315), the
  sqrt(max(1, rows/cols)) scale — two steps (the second uses the momentum buffer) on a wide, a
  tall and a square matrix.
- train5.safetensors: five training steps of a tiny GPT (tests/reference/gpt_reference.py's model)
  with nanochat's optimizers (AdamW groups for lm_head and wte scaled by (C/768)^-0.5, Muon for
  every block matrix), gradient clipping at 1.0, the base_train LR schedule and Muon momentum
  ramp; the loss of each step.
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_reference import Config, forward, param_shapes, random_params, save_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "optim")
NS_A, NS_B, NS_C = 3.4445, -4.7750, 2.0315


def newton_schulz(g):
    x = g.clone()
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.t()
    x = x / (x.norm() + 1e-7)
    for _ in range(5):
        a = x @ x.t()
        b = NS_B * a + NS_C * a @ a
        x = NS_A * x + b @ x
    return x.t() if tall else x


class Muon:
    def __init__(self, params, lr):
        self.params, self.lr = params, lr
        self.buffers = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self, lr_multiplier, momentum):
        for p, buf in zip(self.params, self.buffers):
            buf.mul_(momentum).add_(p.grad, alpha=1 - momentum)
            u = p.grad * (1 - momentum) + buf * momentum  # Nesterov
            x = newton_schulz(u)
            p.add_(x, alpha=-self.lr * lr_multiplier * max(1.0, p.size(0) / p.size(1)) ** 0.5)


def adamw_fixture():
    g = torch.Generator().manual_seed(11)
    a = torch.randn(7, 5, generator=g).requires_grad_(True)
    b = torch.randn(13, generator=g).requires_grad_(True)
    grads = [[torch.randn(7, 5, generator=g), torch.randn(13, generator=g)] for _ in range(2)]
    tensors = {"a": a.detach().clone(), "b": b.detach().clone()}
    opt = torch.optim.AdamW([{"params": [a], "lr": 0.01, "weight_decay": 0.0},
                             {"params": [b], "lr": 0.003, "weight_decay": 0.1}],
                            betas=(0.8, 0.95), eps=1e-10)
    for step, (ga, gb) in enumerate(grads):
        a.grad, b.grad = ga, gb
        opt.step()
        tensors[f"grad{step}.a"], tensors[f"grad{step}.b"] = ga, gb
        tensors[f"after{step}.a"], tensors[f"after{step}.b"] = a.detach().clone(), b.detach().clone()
    save_safetensors(os.path.join(OUT, "adamw.safetensors"), tensors, {"steps": "2"})


def muon_fixture():
    g = torch.Generator().manual_seed(12)
    shapes = {"wide": (16, 40), "tall": (40, 16), "square": (24, 24)}
    params = {k: torch.randn(*s, generator=g) * 0.1 for k, s in shapes.items()}
    tensors = {k: v.clone() for k, v in params.items()}
    opt = Muon(list(params.values()), lr=0.02)
    for step, momentum in enumerate([0.85, 0.8503333]):
        for k, p in params.items():
            p.grad = torch.randn(*shapes[k], generator=g)
            tensors[f"grad{step}.{k}"] = p.grad.clone()
        opt.step(1.0, momentum)
        for k, p in params.items():
            tensors[f"after{step}.{k}"] = p.clone()
    save_safetensors(os.path.join(OUT, "muon.safetensors"), tensors, {"momenta": "0.85,0.8503333"})


def nanochat_optimizers(cfg, params):
    """nanochat's groups: AdamW for lm_head and wte (lr scaled by (dim/768)^-0.5), Muon for every block matrix."""
    s = (cfg.n_embd / 768) ** -0.5
    adamw = torch.optim.AdamW([{"params": [params["lm_head.weight"]], "lr": 0.004 * s},
                               {"params": [params["transformer.wte.weight"]], "lr": 0.2 * s}],
                              betas=(0.8, 0.95), eps=1e-10, weight_decay=0.0)
    muon = Muon([p for n, p in params.items() if n.startswith("transformer.h.")], lr=0.02)
    return adamw, muon


def optimizer_step(adamw, muon, params, it, lrm):
    """One optimizer step as base_train takes it: clip at 1.0, LR multiplier, Muon momentum ramp, zero grads."""
    torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
    for group in adamw.param_groups:
        group.setdefault("initial_lr", group["lr"])
        group["lr"] = group["initial_lr"] * lrm
    frac = min(it / 300, 1.0)
    muon.step(lrm, (1 - frac) * 0.85 + frac * 0.95)
    adamw.step()
    for p in params.values():
        p.grad = None


def train5_fixture():
    cfg, B, T, steps = Config(2, 4, 2, 64, 97, 16), 2, 16, 5
    g = torch.Generator().manual_seed(13)
    params = random_params(cfg, g)
    tensors = {name: params[name].clone() for name, _ in param_shapes(cfg)}
    for p in params.values():
        p.requires_grad_(True)
    adamw, muon = nanochat_optimizers(cfg, params)
    warmdown = round(0.2 * steps)
    losses = []
    for it in range(steps):
        idx = torch.randint(0, cfg.vocab_size, (B, T), generator=g)
        targets = torch.randint(0, cfg.vocab_size, (B, T), generator=g)
        targets[0, :3] = -1
        tensors[f"idx{it}"], tensors[f"targets{it}"] = idx, targets
        _, loss, _ = forward(cfg, params, idx, targets)
        loss.backward()
        optimizer_step(adamw, muon, params, it, 1.0 if it <= steps - warmdown else (steps - it) / warmdown)
        losses.append(loss.item())
    tensors["losses"] = torch.tensor(losses)
    save_safetensors(os.path.join(OUT, "train5.safetensors"), tensors,
                     {"n_layer": "2", "n_head": "4", "n_kv_head": "2", "n_embd": "64",
                      "vocab_size": "97", "batch": str(B), "seq": str(T), "steps": str(steps)})
    print("train5 losses:", " ".join(f"{l:.6f}" for l in losses))


if __name__ == "__main__":
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    adamw_fixture()
    muon_fixture()
    train5_fixture()
