"""What every benchmark puts its figures beside: this machine's plain fp32 matmul speed."""

from __future__ import annotations

import time

import torch


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of an n x n fp32 matrix product (2 n^3 FLOPs), after one warm-up product."""
    a, b = torch.rand(n, n), torch.rand(n, n)
    a @ b
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t) / 1e9
