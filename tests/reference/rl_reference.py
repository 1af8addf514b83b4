#!/usr/bin/python3
"""chat_rl fixture for the C++ tests: nanochat's RL objective (spec §5.6) on a fixed rollout, in PyTorch.

Run: /usr/bin/python3 tests/reference/rl_reference.py   (rewrites tests/fixtures/train/rl_step.safetensors)

Written from the spec: two examples of four samples each (device batch 2, so two passes per example,
two examples per rank) on a tiny GPT (tests/reference/gpt_reference.py's model, fp32). Each sample is a
prompt (mask 0), sampled tokens (mask 1) and, in some, a forced tool output (mask 0). Per example:
rewards -> advantages = reward - mean; sequences padded to the example's longest with <|assistant_end|>
(the pad id); inputs = ids[:, :-1], targets = ids[:, 1:] with -1 where mask[1:] == 0; per pass of two
rows, loss = -sum(logp * advantage_row) / (valid targets in the pass * passes * examples per rank),
backward accumulated over every pass of both examples.

Tensors (I64 unless noted):
  <param name>               F32, every parameter (random, non-zero)
  ex<e>.sequences            [4, L] each sample's tokens, -1 after its end; ex<e>.lengths [4]
  ex<e>.masks                [4, L] the engine's mask (0 after the end)
  ex<e>.rewards, .advantages F32 [4]
  ex<e>.inputs, .targets     [4, Lmax - 1] as nanochat builds them (Lmax: the example's longest)
  ex<e>.losses               F32 [passes] each pass's loss
  grad.<param name>          F32, the gradient accumulated over all passes
  seeds                      [n, 4]: step, example index, sampling step, hash((step, idx, s)) & 0x7FFFFFFF
metadata: n_layer n_head n_kv_head n_embd vocab_size sequence_len pad device_batch_size examples samples
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_reference import Config, forward, random_params, save_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "train")
CFG = Config(n_layer=2, n_head=2, n_kv_head=1, n_embd=32, vocab_size=29, sequence_len=16)
PAD = 27  # stands for <|assistant_end|>
B, SAMPLES, EXAMPLES = 2, 4, 2


def rollout(g, rewards):
    """Four samples: a shared 4-token prompt, then 2..8 tokens, the third sample with a forced 3-token
    tool output in the middle."""
    prompt = torch.randint(0, 26, (4,), generator=g).tolist()
    seqs, masks = [], []
    for i in range(SAMPLES):
        n = int(torch.randint(2, 9, (1,), generator=g))
        gen = torch.randint(0, 26, (n,), generator=g).tolist()
        mask = [1] * n
        if i == 2:
            gen = gen[:1] + [26, 5, 28] + gen[1:]
            mask = mask[:1] + [0, 0, 0] + mask[1:]
        seqs.append(prompt + gen)
        masks.append([0] * 4 + mask)
    return seqs, masks, torch.tensor(rewards, dtype=torch.float32)


def main():
    g = torch.Generator().manual_seed(5)
    params = random_params(CFG, g)
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    tensors = dict(params)
    for e, rewards in enumerate([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0]]):
        seqs, masks, r = rollout(g, rewards)
        adv = r - r.mean()
        longest = max(len(s) for s in seqs)
        ids = torch.tensor([s + [PAD] * (longest - len(s)) for s in seqs])
        mask = torch.tensor([m + [0] * (longest - len(m)) for m in masks])
        inputs, targets = ids[:, :-1], ids[:, 1:].clone()
        targets[mask[:, 1:] == 0] = -1
        passes = SAMPLES // B
        losses = []
        for p in range(passes):
            x, y, a = inputs[p * B:(p + 1) * B], targets[p * B:(p + 1) * B], adv[p * B:(p + 1) * B]
            _, _, nll = forward(CFG, leaves, x, y)
            logp = -nll
            valid = (y >= 0).sum().clamp(min=1)
            loss = -(logp * a.unsqueeze(-1)).sum() / (valid * passes * EXAMPLES)
            loss.backward()
            losses.append(loss.detach())
        tensors[f"ex{e}.sequences"] = torch.tensor([s + [-1] * (longest - len(s)) for s in seqs])
        tensors[f"ex{e}.lengths"] = torch.tensor([len(s) for s in seqs])
        tensors[f"ex{e}.masks"] = mask
        tensors[f"ex{e}.rewards"] = r
        tensors[f"ex{e}.advantages"] = adv
        tensors[f"ex{e}.inputs"] = inputs.contiguous()
        tensors[f"ex{e}.targets"] = targets
        tensors[f"ex{e}.losses"] = torch.stack(losses)
    for k in params:
        assert leaves[k].grad.abs().sum() > 0, f"zero grad for {k}"
        tensors["grad." + k] = leaves[k].grad
    triples = [(0, 0, 0), (1, 2, 3), (59, 7472, 1), (466, 123, 0), (2**40, 5, 9)]
    tensors["seeds"] = torch.tensor([[s, i, k, hash((s, i, k)) & 0x7FFFFFFF] for s, i, k in triples])
    metadata = {"n_layer": CFG.n_layer, "n_head": CFG.n_head, "n_kv_head": CFG.n_kv_head, "n_embd": CFG.n_embd,
                "vocab_size": CFG.vocab_size, "sequence_len": CFG.sequence_len, "pad": PAD,
                "device_batch_size": B, "examples": EXAMPLES, "samples": SAMPLES}
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "rl_step.safetensors")
    save_safetensors(path, tensors, {k: str(v) for k, v in metadata.items()})
    print(f"wrote {os.path.relpath(path)}: {os.path.getsize(path)} bytes, pass losses "
          f"{[round(float(x), 6) for e in range(EXAMPLES) for x in tensors[f'ex{e}.losses']]}")


if __name__ == "__main__":
    main()
