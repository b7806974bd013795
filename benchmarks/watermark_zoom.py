"""A side-by-side zoom of the watermark on a flat area and on texture (docs), not a test.

One frame of a clip, marked as `swap convert` marks it, and three panels per region, each
enlarged 4x with nearest-neighbour: unmarked, marked, and the difference times 10 around grey
128. The flat region is the 96 px square with the lowest picture std, the textured one the
highest; `--flat-only` keeps the flat one alone.

    .venv/bin/python benchmarks/watermark_zoom.py --video demo_out/inputs/grace_hopper.mp4 \\
        --out docs/provenance/watermark_zoom.png
    .venv/bin/python benchmarks/watermark_zoom.py --video demo_out/inputs/grace_hopper.mp4 \\
        --flat-only --out docs/provenance/watermark_zoom_flat.png

The docs' zooms are of the demo's public-domain clip: frames of ../shared's videos may not be committed.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from synthswap import atomic
from synthswap.media import iter_video_frames
from synthswap.provenance import watermark

SIDE, ZOOM = 96, 4


def pick(grey: np.ndarray, lowest: bool) -> tuple[int, int]:
    """Top-left corner of the SIDE-px square (on a 16 px grid) with the lowest or highest std."""
    best, at = None, (0, 0)
    for y in range(0, grey.shape[0] - SIDE + 1, 16):
        for x in range(0, grey.shape[1] - SIDE + 1, 16):
            std = float(grey[y:y + SIDE, x:x + SIDE].std())
            if best is None or (std < best if lowest else std > best):
                best, at = std, (y, x)
    return at


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--video", required=True)
    p.add_argument("--frame", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--flat-only", action="store_true", help="only the flat square (no textured one, e.g. no face)")
    args = p.parse_args()
    frame = next(f.bgr for f in iter_video_frames(args.video, max_frames=args.frame + 1) if f.index == args.frame)
    marked = watermark.embed(frame, b"\x01\x02\x03", index=args.frame)
    grey = watermark.luma(frame)
    rows = []
    for lowest in (True,) if args.flat_only else (True, False):
        y, x = pick(grey, lowest)
        a, b = frame[y:y + SIDE, x:x + SIDE], marked[y:y + SIDE, x:x + SIDE]
        diff = np.clip(128 + 10 * (b.astype(np.int16) - a), 0, 255).astype(np.uint8)
        panels = [cv2.resize(t, None, fx=ZOOM, fy=ZOOM, interpolation=cv2.INTER_NEAREST) for t in (a, b, diff)]
        gap = np.full((SIDE * ZOOM, 8, 3), 255, np.uint8)
        rows.append(np.hstack([panels[0], gap, panels[1], gap, panels[2]]))
        print(f"{'flat' if lowest else 'textured'} square at x={x}, y={y}: picture std {grey[y:y + SIDE, x:x + SIDE].std():.2f}, "
              f"mark RMS {np.sqrt(np.mean((b.astype(np.float32) - a) ** 2)):.2f} grey levels")
    gap = np.full((8, rows[0].shape[1], 3), 255, np.uint8)
    image = np.vstack([rows[0], *([gap, rows[1]] if len(rows) > 1 else [])])
    atomic.write_bytes(args.out, cv2.imencode(".png", image)[1].tobytes())
    print(f"wrote {args.out} (rows: flat{'' if args.flat_only else ', textured'}; columns: unmarked, marked, "
          f"10x difference)")


if __name__ == "__main__":
    main()
