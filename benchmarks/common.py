"""What the benchmarks share: this machine's plain matmul speed (what figures are put beside), the
swap model's FLOPs per trained image, and writing a benchmark's results."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode


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


def train_flops_per_image(model, res: int, batch: int) -> float:
    """FLOPs of a swap model's training pass (forward + backward of A and B) per trained image."""
    x = torch.rand(batch, 3, res, res).contiguous(memory_format=torch.channels_last)
    with FlopCounterMode(display=False) as fc:
        out = model(x, x)
        sum(o.float().mean() for o in out).backward()
    model.zero_grad(set_to_none=True)
    return fc.get_total_flops() / (2 * batch)


def write_results(results: dict, json_path: str | None) -> None:
    """Print the results (with the load at the end) and, when asked, write them as JSON."""
    results["load_average_end"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=2) + "\n")
