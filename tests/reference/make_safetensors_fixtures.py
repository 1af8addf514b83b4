#!/usr/bin/env python3
"""Writes tests/fixtures/safetensors/python_written.safetensors with the official `safetensors`
package, so the C++ reader is checked against the reference writer, not only against itself.

Run: /usr/bin/python3 tests/reference/make_safetensors_fixtures.py
Needs torch and safetensors (pip install safetensors). Values follow formulas that
tests/core/test_safetensors.cpp recomputes; change both together.
"""
import os

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "safetensors", "python_written.safetensors")


def main():
    tensors = {
        # f32[i] = i * 0.25 - 3, shape [2, 3, 4]
        "f32_3d": (torch.arange(24, dtype=torch.float32) * 0.25 - 3).reshape(2, 3, 4),
        # bf16[i] = i * 0.5 - 8 (exact in bf16), shape [5, 7]
        "bf16_2d": (torch.arange(35, dtype=torch.float32) * 0.5 - 8).to(torch.bfloat16).reshape(5, 7),
        # i64[i] = 2^40 + i * 3 - 7, shape [6]
        "i64_1d": 2**40 + torch.arange(6, dtype=torch.int64) * 3 - 7,
        # i32[i] = -1000 * i, shape [1, 2, 2, 3]
        "i32_4d": (torch.arange(12, dtype=torch.int32) * -1000).reshape(1, 2, 2, 3),
        # u8[i] = (i * 37) % 256, shape [40]
        "u8_1d": (torch.arange(40, dtype=torch.int64) * 37 % 256).to(torch.uint8),
        # a rank-0 scalar 2.5 and an empty tensor
        "scalar": torch.tensor(2.5, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(tensors, OUT, metadata={"format": "pt", "note": "written by safetensors \u00e9\"\\"})
    print("wrote", os.path.normpath(OUT), os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
