#!/usr/bin/env python3
"""Draws a training run's curves from its metrics.jsonl as an SVG (standard library only).

Usage: python3 examples/plot_metrics.py BASE/base_checkpoints/d4/metrics.jsonl -o curve.svg
       python3 examples/plot_metrics.py BASE/chatsft_checkpoints/d4/metrics.jsonl -o sft.svg --title "chat_sft d4"
Plots the validation metric (left axis, blue, with a dot per evaluation) and the training curve
(right axis, orange) against the step. It reads each stage's keys: base_train and mid_train
write "val_bpb" and a smoothed "loss", chat_sft "val_loss" and a per-step "train_loss", chat_rl
"pass@1".."pass@k" at evaluations and a per-step "reward" (its mean over the step's samples);
per-step values are drawn smoothed as base_train smooths its loss (an EMA of 0.9, debiased) so
the curves compare. For chat_rl the largest k's pass@k is drawn dashed beside pass@1.
"""
import argparse
import json
import sys

W, H, PAD = 640, 360, 56
VALIDATION_KEYS = {"val_bpb": "val bpb", "val_loss": "val loss", "pass@1": "pass@1"}
# chat_rl also writes a per-step "loss" (its policy-gradient loss): its "reward" comes first.
TRAIN_KEYS = {"reward": "reward (EMA 0.9)", "loss": "train loss", "train_loss": "train loss (EMA 0.9)"}
SMOOTHED_KEYS = {"reward", "train_loss"}


def scale(values, lo_px, hi_px):
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    return lambda v: lo_px + (v - lo) / span * (hi_px - lo_px), lo, hi


def polyline(points, color, dashed=False):
    dash = ' stroke-dasharray="6,4"' if dashed else ""
    return f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="' + " ".join(
        f"{x:.1f},{y:.1f}" for x, y in points) + '"/>'


def smoothed(values):
    """base_train's debiased EMA of the training loss."""
    out, ema = [], 0.0
    for i, v in enumerate(values):
        ema = 0.9 * ema + 0.1 * v
        out.append(ema / (1 - 0.9 ** (i + 1)))
    return out


def read_rows(path):
    rows = []
    try:
        with open(path) as f:
            lines = f.readlines()
    except OSError as e:
        sys.exit(f"{path}: cannot read ({e.strerror})")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            sys.exit(f"{path}:{n}: not a JSON line ({e})")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("metrics")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--title", default="", help="a line above the plot, e.g. the stage and the command")
    args = ap.parse_args()
    rows = read_rows(args.metrics)
    val_key = next((k for k in VALIDATION_KEYS if any(k in r for r in rows)), None)
    if val_key is None:
        sys.exit(f"{args.metrics}: no {' or '.join(VALIDATION_KEYS)} lines")
    train_key = next((k for k in TRAIN_KEYS if any(k in r for r in rows)), None)
    evals = [r for r in rows if val_key in r]
    steps = [r for r in rows if train_key and train_key in r]
    train = [r[train_key] for r in steps]
    if train_key in SMOOTHED_KEYS:
        train = smoothed(train)
    # chat_rl's widest pass@k, drawn dashed on pass@1's axis
    top_k = max((int(k[5:]) for r in evals for k in r if k.startswith("pass@")), default=1)
    top_key = f"pass@{top_k}" if val_key == "pass@1" and top_k > 1 else None
    last = max(r["step"] for r in evals + steps) or 1
    x = lambda s: PAD + s / last * (W - 2 * PAD)  # noqa: E731
    val_values = [r[val_key] for r in evals] + ([r[top_key] for r in evals] if top_key else [])
    y_val, val_lo, val_hi = scale(val_values, H - PAD, PAD)
    val_label = VALIDATION_KEYS[val_key] + (f" (solid), {top_key} (dashed)" if top_key else "")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="black"/>',
             f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{H - PAD}" stroke="black"/>',
             f'<text x="{W / 2}" y="{H - 16}" text-anchor="middle">step (0 to {last})</text>',
             f'<text x="{PAD}" y="{PAD - (26 if top_key else 10)}" fill="#1f77b4">{val_label} {val_hi:.3f} (top) to {val_lo:.3f}</text>',
             polyline([(x(r["step"]), y_val(r[val_key])) for r in evals], "#1f77b4")]
    if args.title:
        parts.insert(2, f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="13">{escape(args.title)}</text>')
    parts += [f'<circle cx="{x(r["step"]):.1f}" cy="{y_val(r[val_key]):.1f}" r="3" fill="#1f77b4"/>' for r in evals]
    if top_key:
        parts.append(polyline([(x(r["step"]), y_val(r[top_key])) for r in evals], "#1f77b4", dashed=True))
    if steps:
        y_loss, loss_lo, loss_hi = scale(train, H - PAD, PAD)
        parts += [polyline([(x(r["step"]), y_loss(v)) for r, v in zip(steps, train)], "#ff7f0e"),
                  f'<text x="{W - PAD}" y="{PAD - 10}" fill="#ff7f0e" text-anchor="end">'
                  f'{TRAIN_KEYS[train_key]} {loss_hi:.2f} (top) to {loss_lo:.2f}</text>']
    parts.append("</svg>")
    with open(args.out, "w") as f:
        f.write("\n".join(parts) + "\n")


def escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


if __name__ == "__main__":
    main()
