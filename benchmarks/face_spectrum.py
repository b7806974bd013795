"""Which spatial frequencies a swapped face lacks, against the destination's face (issue 21; not a test).

`evaluate`'s sharpness ratio is one number; this splits it by frequency. For each frame where the
destination (source) video shows a face, both frames are cut at the same aligned box (the source face's
alignment, at `--size` px), windowed, and their power spectra averaged over frames; printed is the
output's power over the destination's in rings of cycles per crop. A band near 1 has the destination's
detail; a band far below 1 is what the swap blurs away. Above the swap model's own resolution, what
is there comes from the enhancer (or interpolation) and from the codec's noise floor, which both
videos share.

    .venv/bin/python benchmarks/face_spectrum.py --video OUT.mp4 --source DEST.mp4 --frames 40
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from synthswap.faces.align import warp_to_crop
from synthswap.faces.pipeline import FaceAnalyzer
from synthswap.media import iter_video_frames

BANDS = (0, 8, 16, 24, 32, 48, 64, 96, 128)  # ring edges, cycles per 256 px crop (scaled with --size)


def band_powers(gray: np.ndarray, rings: list[np.ndarray]) -> np.ndarray:
    """Mean power of the windowed, mean-removed picture in each ring of its centred spectrum."""
    size = gray.shape[0]
    window = np.outer(np.hanning(size), np.hanning(size))
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2((gray - gray.mean()) * window))) ** 2
    return np.array([spectrum[ring].mean() for ring in rings])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", required=True, help="the swapped video")
    parser.add_argument("--source", required=True, help="the destination video it was made from")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", type=int, default=256, help="aligned crop size (default: 256)")
    args = parser.parse_args()
    size = args.size
    edges = [round(b * size / 256) for b in BANDS]
    yy, xx = np.mgrid[-size // 2:size // 2, -size // 2:size // 2]
    radius = np.hypot(yy, xx)
    rings = [(radius >= lo) & (radius < hi) for lo, hi in zip(edges[:-1], edges[1:])]
    analyzer = FaceAnalyzer(size=size)
    output_power, source_power, frames = np.zeros(len(rings)), np.zeros(len(rings)), 0
    try:
        pairs = zip(iter_video_frames(args.video, max_frames=args.frames),
                    iter_video_frames(args.source, max_frames=args.frames))
        for out_frame, src_frame in pairs:
            face = analyzer.analyze(src_frame.bgr)
            if face is None:
                continue
            out_crop = warp_to_crop(out_frame.bgr, face.affine, size, cv2.INTER_CUBIC)
            for crop, total in ((out_crop, output_power), (face.crop, source_power)):
                total += band_powers(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float64), rings)
            frames += 1
    finally:
        analyzer.close()
    if not frames:
        raise SystemExit("no face found in the source frames read")
    print(f"{frames} frames, faces aligned at {size} px; output power / destination power per ring")
    print("| cycles per crop | ratio |\n| --- | ---: |")
    for lo, hi, out, src in zip(edges[:-1], edges[1:], output_power, source_power):
        print(f"| {lo}-{hi} | {out / src:.3f} |")


if __name__ == "__main__":
    main()
