"""How often a GAN prior's samples are faces, by the detector synthesis uses (not a test).

Renders seeds 0..N-1 (psi 1, like `gan sample`) of a GAN folder's EMA generator, or of each
snapshot `gan train --keep-snapshots` kept, enlarges them as `synthesize` does (cubic, to 128 px
or more), and counts the renders `FaceAnalyzer` finds as a face (YuNet, then FaceMesh), with the
median sharpness of the found ones. This is the count the shipped prior's model card quotes.

    .venv/bin/python benchmarks/gan_faces.py --gan src/synthswap/weights/gan_utk64 [--n 64] [--snapshots]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from synthswap.faces.pipeline import FaceAnalyzer
from synthswap.gan.loading import list_snapshots, load_generator
from synthswap.synth.engines import faces_in_samples


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gan", required=True)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--snapshots", action="store_true", help="also every kept snapshot, in training order")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    analyzer = FaceAnalyzer(128, with_identity=False)
    try:
        runs = [(path.stem, path) for _, path in list_snapshots(args.gan)] if args.snapshots else []
        for name, snapshot in runs + [("checkpoint", None)]:
            G, _ = load_generator(args.gan, snapshot=snapshot)
            found, sharp = faces_in_samples(G, args.n, analyzer)
            print(f"{Path(args.gan).name} {name}: {found} of {args.n} samples found as a face "
                  f"(median sharpness of those {sharp:.1f})", flush=True)
    finally:
        analyzer.close()


if __name__ == "__main__":
    main()
