"""What one attempt of the watermark's geometry search costs, not a test.

An attempt (`watermark._phases` then `watermark._best_orientation`) warps the 7 phase sums back,
folds them, and correlates the marker at every roll, mirror/turn and shift of the sign sequence.
Timed on random residuals at two frame sizes, beside the way the shifts were summed before
(a `np.tensordot` and an inverse FFT per shift), whose result must be the same.

    .venv/bin/python benchmarks/watermark_search_cost.py --repeats 20
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from synthswap.provenance import watermark as W


def per_shift_tensordot(phases: np.ndarray) -> float:
    """The best z as the search computed it before: one tensordot and one inverse FFT per shift."""
    best = -np.inf
    for k in range(8):
        spectra = np.fft.rfft2(np.stack([W._orient(p, k) for p in phases]))
        for o in range(W.PERIOD):
            corr = np.fft.irfft2(np.tensordot(W._SHIFTS[o], spectra, 1) * W._TEMPLATE_FFT, s=(W.TILE, W.TILE))
            at = np.unravel_index(int(np.argmax(corr)), corr.shape)
            best = max(best, W._z(corr, at))
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    print("| frame | warp + fold (ms) | correlation, batched (ms) | correlation, per-shift tensordot (ms) | ratio |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for side in (384, 480):
        sums = [rng.standard_normal((side, side)).astype(np.float32) for _ in range(W.PERIOD)]
        count = np.full(W.PERIOD, 10, np.float32)
        geometry = W.Geometry(1.0, 0.75)
        t = time.perf_counter()
        for _ in range(args.repeats):
            phases = W._phases(sums, count, geometry)
        fold_ms = (time.perf_counter() - t) / args.repeats * 1000
        t = time.perf_counter()
        for _ in range(args.repeats):
            batched = W._best_orientation(phases, geometry)[0]
        batched_ms = (time.perf_counter() - t) / args.repeats * 1000
        t = time.perf_counter()
        for _ in range(args.repeats):
            reference = per_shift_tensordot(phases)
        reference_ms = (time.perf_counter() - t) / args.repeats * 1000
        assert abs(batched - reference) < 1e-6 * max(1.0, abs(reference)), (batched, reference)
        print(f"| {side} x {side} | {fold_ms:.1f} | {batched_ms:.1f} | {reference_ms:.1f} | "
              f"{reference_ms / batched_ms:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
