"""Benchmark of SFace in torch (faces/sface_torch.py) against OpenCV's (not a test).

On this machine and in this one run, for each thread count and batch size:
  - torch forward (no grad) and forward+backward (gradient to the input crops only, as an
    identity loss needs) time per face, the template warp included;
  - cv2.FaceRecognizerSF.feature time per face (one 112 x 112 face per call, as OpenCV takes them);
  - FLOPs per face from torch's FlopCounterMode (a multiply-add counts 2), hence achieved GFLOP/s;
  - a plain fp32 2048x2048 matmul's GFLOP/s at the same thread count, to put that beside.

    .venv/bin/python benchmarks/bench_identity.py --threads 1 2 --batches 1 8 32

Inputs are random crops (--size px, default 128, the swap model's usual size): the cost of
these networks does not depend on the pixels. Nothing is read from ../shared.
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from common import matmul_gflops  # benchmarks/ is on sys.path when a script runs
from synthswap.faces.models import sface_path
from synthswap.faces.sface_torch import sface_identity


def seconds_per_call(fn, min_seconds: float, min_calls: int = 3) -> float:
    fn()  # warm-up
    calls, start = 0, time.perf_counter()
    while calls < min_calls or time.perf_counter() - start < min_seconds:
        fn()
        calls += 1
    return (time.perf_counter() - start) / calls


def flops_per_face(model, size: int) -> tuple[float, float]:
    x = torch.rand(1, 3, size, size)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x)
    forward = fc.get_total_flops()
    x.requires_grad_(True)
    with FlopCounterMode(display=False) as fc:
        model(x).sum().backward()
    return forward, fc.get_total_flops()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--size", type=int, default=128, help="aligned crop size fed to the torch module")
    ap.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds per measurement")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    model = sface_identity()
    recogniser = cv2.FaceRecognizerSF.create(sface_path(), "")
    fwd_flops, train_flops = flops_per_face(model, args.size)
    print(f"torch {torch.__version__}, cv2 {cv2.__version__}, crops {args.size} px; "
          f"GFLOP per face: forward {fwd_flops / 1e9:.3f}, forward+backward {train_flops / 1e9:.3f}")
    rng = np.random.default_rng(0)
    faces112 = rng.integers(0, 256, (32, 112, 112, 3), dtype=np.uint8)
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
        mm_before = matmul_gflops()
        cv2_ms = 1e3 * seconds_per_call(lambda: [recogniser.feature(f) for f in faces112], args.seconds) / len(faces112)
        for batch in args.batches:
            x = torch.rand(batch, 3, args.size, args.size)

            def forward():
                with torch.no_grad():
                    model(x)

            def forward_backward():
                xg = x.clone().requires_grad_(True)
                model(xg).sum().backward()

            fwd_ms = 1e3 * seconds_per_call(forward, args.seconds) / batch
            train_ms = 1e3 * seconds_per_call(forward_backward, args.seconds) / batch
            rows.append(dict(threads=threads, batch=batch, torch_forward_ms=fwd_ms, torch_train_ms=train_ms,
                             cv2_feature_ms=cv2_ms, forward_gflops=fwd_flops / fwd_ms / 1e6,
                             train_gflops=train_flops / train_ms / 1e6))
        mm = (mm_before + matmul_gflops()) / 2
        for row in rows:
            if row["threads"] == threads:
                row["matmul_gflops"] = mm

    print("| threads | batch | torch fwd ms/face | torch fwd+bwd ms/face | cv2 feature ms/face | "
          "fwd GFLOP/s | fwd+bwd GFLOP/s | matmul GFLOP/s | fwd+bwd / matmul |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['threads']} | {r['batch']} | {r['torch_forward_ms']:.1f} | {r['torch_train_ms']:.1f} | "
              f"{r['cv2_feature_ms']:.1f} | {r['forward_gflops']:.1f} | {r['train_gflops']:.1f} | "
              f"{r['matmul_gflops']:.1f} | {r['train_gflops'] / r['matmul_gflops']:.2f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dict(size=args.size, forward_flops=fwd_flops, train_flops=train_flops, rows=rows), fh, indent=1)


if __name__ == "__main__":
    main()
