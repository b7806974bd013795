"""The Inception network of FID in the two memory layouts (not a test): seconds per batch of 16
images and how far the features move (relative to their largest value).

    .venv/bin/python benchmarks/bench_fid_layout.py [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from synthswap.metrics.fid import InceptionFeatures


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = InceptionFeatures("cpu").model  # the network as FID loads it; called here without its layout change
    x = torch.rand(16, 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 2 - 1
    results = {}
    with torch.no_grad():
        for name, batch in (("contiguous", x), ("channels_last", x.contiguous(memory_format=torch.channels_last))):
            model(batch)  # warm-up
            start = time.perf_counter()
            for _ in range(args.repeats):
                feats = model(batch)
            results[name] = ((time.perf_counter() - start) / args.repeats, feats)
    base = results["contiguous"][1]
    for name, (seconds, feats) in results.items():
        moved = float((feats - base).abs().max() / base.abs().max())
        print(f"{name:14s} {seconds:.3f} s per 16 images   features moved {moved:.1e}")


if __name__ == "__main__":
    main()
