"""Does `torch.compile` (inductor, CPU) speed up the swap training step? Not a test.

The step of `benchmarks/bench_precision.py` (sampling and augmentation, the model's forward, the
reconstruction losses, backward, AdamW; no identity loss), timed as it is and with the model's
forward and losses compiled, in fp32 and bf16 autocast, after a warm-up that includes compilation.
The losses' `float()` of their parts breaks the graph in two; the model's forward is whole.

    .venv/bin/python benchmarks/bench_compile.py --threads 2 --resolution 64 --steps 24
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from synthswap.swap.losses import swap_loss

from bench_precision import SwapStep, reference_facesets  # benchmarks/ is on sys.path

MODES = ("fp32", "bf16", "fp32-compiled", "bf16-compiled")


def compiled_step(step: SwapStep):
    """The same step with the forward and losses through torch.compile."""
    def forward_and_losses(wa, wb, ta, ma, ra, tb, mb, rb):
        with step.precision.autocast():
            pa, pma, pb, pmb = step.model(wa, wb)
        return swap_loss(pa, pma, ta, ma, ra)[0] + swap_loss(pb, pmb, tb, mb, rb)[0]

    forward = torch.compile(forward_and_losses)

    def run(with_identity: bool) -> None:
        assert not with_identity, "the compiled step has no identity loss"
        wa, ta, ma, ra, wb, tb, mb, rb = step.next_batch()
        loss = forward(wa, wb, ta, ma, ra, tb, mb, rb)
        step.opt.zero_grad(set_to_none=True)
        loss.backward()
        step.opt.step()

    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--steps", type=int, default=24)
    p.add_argument("--batch-size", type=int, default=8)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        a, b = reference_facesets(Path(tmp))
        print(f"| mode ({args.resolution} px, batch {args.batch_size} + {args.batch_size}, {args.threads} threads) "
              f"| warm-up incl. compilation (s) | images/s |")
        print("| --- | ---: | ---: |")
        for mode in MODES:
            step = SwapStep(a, b, args.resolution, args.batch_size, torch.bfloat16 if "bf16" in mode else None)
            run = compiled_step(step) if mode.endswith("compiled") else step
            t = time.perf_counter()
            for _ in range(3):
                run(False)
            warm = time.perf_counter() - t
            t = time.perf_counter()
            for _ in range(args.steps):
                run(False)
            rate = 2 * args.batch_size * args.steps / (time.perf_counter() - t)
            print(f"| {mode} | {warm:.1f} | {rate:.1f} |", flush=True)


if __name__ == "__main__":
    main()
