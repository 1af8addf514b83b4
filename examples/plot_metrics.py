#!/usr/bin/env python3
"""Draws a training run's curves from base_train's metrics.jsonl as an SVG (standard library only).

Usage: python3 examples/plot_metrics.py BASE/base_checkpoints/d4/metrics.jsonl -o curve.svg
Plots the validation bits per byte (left axis) and the smoothed training loss (right axis)
against the step.
"""
import argparse
import json
import sys

W, H, PAD = 640, 360, 56


def scale(values, lo_px, hi_px):
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    return lambda v: lo_px + (v - lo) / span * (hi_px - lo_px), lo, hi


def polyline(points, color):
    return f'<polyline fill="none" stroke="{color}" stroke-width="2" points="' + " ".join(
        f"{x:.1f},{y:.1f}" for x, y in points) + '"/>'


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("metrics")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    evals, steps = [], []
    with open(args.metrics) as f:
        for line in f:
            row = json.loads(line)
            (evals if "val_bpb" in row else steps).append(row)
    if not evals:
        sys.exit(f"{args.metrics}: no val_bpb lines")
    last = max(r["step"] for r in evals + steps) or 1
    x = lambda s: PAD + s / last * (W - 2 * PAD)  # noqa: E731
    y_bpb, bpb_lo, bpb_hi = scale([r["val_bpb"] for r in evals], H - PAD, PAD)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="black"/>',
             f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{H - PAD}" stroke="black"/>',
             f'<text x="{W / 2}" y="{H - 16}" text-anchor="middle">step (0 to {last})</text>',
             f'<text x="{PAD}" y="{PAD - 10}" fill="#1f77b4">val bpb {bpb_hi:.3f} (top) to {bpb_lo:.3f}</text>',
             polyline([(x(r["step"]), y_bpb(r["val_bpb"])) for r in evals], "#1f77b4")]
    parts += [f'<circle cx="{x(r["step"]):.1f}" cy="{y_bpb(r["val_bpb"]):.1f}" r="3" fill="#1f77b4"/>' for r in evals]
    if steps:
        y_loss, loss_lo, loss_hi = scale([r["loss"] for r in steps], H - PAD, PAD)
        parts += [polyline([(x(r["step"]), y_loss(r["loss"])) for r in steps], "#ff7f0e"),
                  f'<text x="{W - PAD}" y="{PAD - 10}" fill="#ff7f0e" text-anchor="end">'
                  f'train loss {loss_hi:.2f} (top) to {loss_lo:.2f}</text>']
    parts.append("</svg>")
    with open(args.out, "w") as f:
        f.write("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
