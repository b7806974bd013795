"""What every benchmark puts its figures beside: this machine's plain matmul speed."""

from __future__ import annotations

import time

import torch


def matmul_gflops(n: int = 2048, repeats: int = 10, dtype: torch.dtype = torch.float32, device: str = "cpu",
                  warmup: int = 1) -> float:
    """GFLOP/s of an n x n matrix product (2 n^3 FLOPs) after `warmup` untimed products.

    On CUDA the timing waits for the GPU before and after the timed products.
    """
    a = torch.rand(n, n, dtype=dtype, device=device)
    b = torch.rand(n, n, dtype=dtype, device=device)
    for _ in range(warmup):
        a @ b
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync()
    return 2 * n**3 * repeats / (time.perf_counter() - t) / 1e9
