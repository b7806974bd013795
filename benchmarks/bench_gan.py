"""GAN training throughput: images/s, kimg/s and achieved GFLOP/s beside a plain matmul's.

    .venv/bin/python benchmarks/bench_gan.py --data FACESET [--resolution 64] [--config cpu]
        [--batch 32] [--steps 6] [--threads 1]

FLOPs of one training step (D step + G step, R1 excluded: it runs 1 step in 16) are
counted with torch.utils.flop_counter on the real step; GFLOP/s = FLOPs / measured time.
The matmul reference is fp32 2048x2048 @ 2048x2048 with the same thread count, in the
same process, right before the GAN timing (the CPU is shared, so both see the same load).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from synthswap.training import parameter_count
from synthswap.gan.train import GanTrainer, GanTrainOptions

from common import matmul_gflops  # benchmarks/ is on sys.path when a script runs


class _NoModuleTracker:
    """FlopCounterMode's per-module tracker trips over tensors made under no_grad; we only need the total."""

    parents = ("Global",)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def count_step_flops(trainer: GanTrainer) -> int:
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _NoModuleTracker()
    with counter:
        trainer.train_step()
    return counter.get_total_flops()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--config", default="cpu")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        opts = GanTrainOptions(data=args.data, out=tmp, resolution=args.resolution, preset=args.config,
                            batch=args.batch, kimg=1, r1_interval=10**9, max_images=256, device="cpu",
                            verbose=False)
        tr = GanTrainer(opts)
        tr.train_step()  # warm-up (allocations, first-call overheads)
        flops_step = count_step_flops(tr)
        mm = matmul_gflops()
        t = time.perf_counter()
        for _ in range(args.steps):
            tr.train_step()
        sec = (time.perf_counter() - t) / args.steps
    img_s = args.batch / sec
    result = {
        "resolution": args.resolution, "config": args.config, "batch": args.batch, "threads": args.threads,
        "G_params_M": round(parameter_count(tr.G) / 1e6, 3), "D_params_M": round(parameter_count(tr.D) / 1e6, 3),
        "sec_per_step": round(sec, 3), "img_s": round(img_s, 2), "kimg_s": round(img_s / 1000, 5),
        "kimg_per_hour": round(img_s * 3.6, 1), "gflop_per_img": round(flops_step / args.batch / 1e9, 3),
        "gan_gflop_s": round(flops_step / sec / 1e9, 2), "matmul_gflop_s": round(mm, 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
