"""Which of the six expression measures an output video misses, frame by frame against its destination.

`evaluate` reports one expression error per frame: the L2 length of the difference of the two faces'
6-D expression vectors (faces.measure.expression_vector). This splits it: for every N-th frame where
both faces are found, the difference per measure (mouth open, mouth width, smile, each eye's opening,
brow raise, in eye distances), as the mean absolute difference and the mean signed one (negative: the
output's mouth, eyes or brows less open or raised than the destination's).

    python benchmarks/expression_parts.py --source d10.mp4 --every 8 base=base.mp4 paired=paired.mp4
"""

from __future__ import annotations

import argparse

import numpy as np

from synthswap.faces.measure import EXPRESSION_NAMES
from synthswap.faces.pipeline import FaceAnalyzer
from synthswap.media import iter_video_frames


def expression_differences(video: str, source: str, every: int, size: int = 128) -> np.ndarray:
    """(frames, 6) output minus destination expression measures, on every `every`-th frame."""
    out_analyzer, src_analyzer = FaceAnalyzer(size=size), FaceAnalyzer(size=size)
    rows = []
    for k, (out, src) in enumerate(zip(iter_video_frames(video), iter_video_frames(source))):
        if k % every:
            continue
        o = out_analyzer.analyze(out.bgr[:src.bgr.shape[0], :src.bgr.shape[1]], track=False)
        s = src_analyzer.analyze(src.bgr, track=False)
        if o is not None and s is not None:
            rows.append([o.expression[n] - s.expression[n] for n in EXPRESSION_NAMES])
    return np.array(rows, np.float64).reshape(-1, len(EXPRESSION_NAMES))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("outputs", nargs="+", metavar="LABEL=VIDEO", help="outputs of --source, each with a label")
    p.add_argument("--source", required=True, help="the destination video the outputs were made from")
    p.add_argument("--every", type=int, default=8, help="measure every N-th frame")
    args = p.parse_args()
    print("| output | frames | L2 | " + " | ".join(EXPRESSION_NAMES) + " |")
    print("| --- | ---: | ---: | " + " | ".join("---:" for _ in EXPRESSION_NAMES) + " |")
    for item in args.outputs:
        label, video = item.split("=", 1)
        d = expression_differences(video, args.source, args.every)
        parts = " | ".join(f"{a:.3f} ({m:+.3f})" for a, m in zip(np.abs(d).mean(0), d.mean(0)))
        print(f"| {label} | {len(d)} | {np.linalg.norm(d, axis=1).mean():.3f} | {parts} |")


if __name__ == "__main__":
    main()
