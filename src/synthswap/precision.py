"""Which float precision the networks compute in: bf16 autocast where the hardware makes it faster,
fp32 elsewhere, chosen once per process and device.

On CUDA, bf16 autocast is the rule wherever the GPU supports it. On a CPU it depends on the chip:
Xeons with AMX tiles or AVX-512 BF16 run oneDNN's bf16 convolutions and matmuls 2-7x faster than
fp32 (docs/benchmarks.md), while on a CPU without them bf16 is emulated and slower. So `auto` on a
CPU looks for those units and then confirms with a short calibration (a convolution forward and
backward in both precisions on one thread, about 0.3 s) that bf16 really is faster on this machine.
Only the networks' forward passes run under autocast: callers cast outputs to fp32 before
losses, metrics and colour work, and parameters, gradients and optimiser state stay fp32.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from functools import lru_cache

import torch

PRECISIONS = ("auto", "fp32", "bf16")
# bf16 must beat fp32 by this factor in the calibration to be chosen by `auto`: a near tie is not
# worth bf16's rounding.
MIN_SPEEDUP = 1.2


@dataclass(frozen=True)
class Precision:
    """The precision a stage runs in, and why (the log and the report print both)."""

    name: str  # "fp32" or "bf16"
    device_type: str  # "cpu" or "cuda"
    reason: str

    @property
    def bf16(self) -> bool:
        return self.name == "bf16"

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context the networks' forward passes run in (a no-op for fp32)."""
        return torch.autocast(device_type=self.device_type, dtype=torch.bfloat16, enabled=self.bf16)

    def describe(self) -> str:
        return f"{self.name} ({self.reason})"


def cpu_bf16_units() -> list[str]:
    """The bf16 matrix units this CPU has, as torch sees them (AMX tiles, AVX-512 BF16)."""
    units = []
    if torch.cpu._is_amx_tile_supported():
        units.append("amx_bf16")
    if torch.cpu._is_avx512_bf16_supported():
        units.append("avx512_bf16")
    return units


def _conv_step(dtype: torch.dtype | None):
    """A 3x3 convolution forward + backward at 64 channels, 32x32, batch 8: the shape of the swap
    model's middle layers."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 64, 32, 32, generator=gen).contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(memory_format=torch.channels_last)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
            y = conv(x)
        y.float().square().mean().backward()

    return step


@lru_cache(maxsize=None)
@torch.enable_grad()  # the step runs a backward pass, also when the caller is inside torch.no_grad()
def cpu_calibration(rounds: int = 5) -> float:
    """fp32 seconds over bf16 seconds for the calibration step on this CPU (once per process).

    On one thread: the ratio is the cores' own, and with two threads on a busy machine one thread
    waiting for the other made the ratio swing from 0.5 to 10 between runs (0.2-3 s each), while on
    one thread it stayed within 2.0-3.0 (0.3 s). fp32 and bf16 are timed in alternation and each
    keeps its best round, so other processes taking the core for a while slow both alike."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        steps = {"fp32": _conv_step(None), "bf16": _conv_step(torch.bfloat16)}
        best = {name: float("inf") for name in steps}
        for step in steps.values():  # the first call pays oneDNN's kernel creation
            step()
        for _ in range(rounds):
            for name, step in steps.items():
                t0 = time.perf_counter()
                step()
                best[name] = min(best[name], time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    return best["fp32"] / best["bf16"]


def resolve_precision(name: str, device: torch.device) -> Precision:
    """The `--precision` a user asked for (auto, fp32, bf16), made concrete for `device`."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision '{name}'; choose one of {', '.join(PRECISIONS)}")
    kind = device.type
    if name == "fp32":
        return Precision("fp32", kind, "asked for")
    if kind == "cuda":
        if torch.cuda.is_bf16_supported():
            return Precision("bf16", kind, "asked for" if name == "bf16" else "this GPU supports bf16")
        if name == "bf16":
            raise ValueError("--precision bf16 was asked for, but this GPU does not support bf16")
        return Precision("fp32", kind, "this GPU has no bf16 support")
    if kind != "cpu":
        return Precision("fp32", kind, f"bf16 is not used on {kind}")
    units = cpu_bf16_units()
    if name == "bf16":
        return Precision("bf16", kind, "asked for" + ("" if units else "; this CPU has no bf16 units, so it is emulated and slow"))
    if not units:
        return Precision("fp32", kind, "this CPU has no bf16 matrix units")
    speedup = cpu_calibration()
    if speedup < MIN_SPEEDUP:
        return Precision("fp32", kind, f"this CPU has {'+'.join(units)} but bf16 ran only {speedup:.2f}x fp32 here")
    return Precision("bf16", kind, f"this CPU has {'+'.join(units)}; bf16 ran {speedup:.1f}x fp32 here")
