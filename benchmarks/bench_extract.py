"""Extraction throughput on a real 480p video, with a per-stage breakdown.

    .venv/bin/python benchmarks/bench_extract.py [--video PATH] [--frames N] [--size 256]

Prints a Markdown table: end-to-end frames/s of `extract` (decode in a background
thread, analysis, PNG writing) and the seconds per frame spent in each stage.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")

from synthswap.extract import extract  # noqa: E402
from synthswap.media import iter_video_frames, probe_video  # noqa: E402

DEFAULT_VIDEO = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "videos" / "people" / "d6.mp4"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO.resolve())
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()

    info = probe_video(args.video)
    start = time.perf_counter()
    decoded = sum(1 for _ in iter_video_frames(args.video, max_frames=args.frames))
    decode_s = (time.perf_counter() - start) / decoded

    with tempfile.TemporaryDirectory() as tmp:
        summary = extract([args.video], Path(tmp) / "fs", size=args.size, max_frames=args.frames, progress=False)
    n = summary.frames
    stages = {"decode (alone, overlapped in a thread during extract)": decode_s}
    stages.update({name: seconds / n for name, seconds in summary.timings.items()})
    accounted = sum(summary.timings.values()) / n
    total = summary.seconds / n
    print(f"video: {args.video.name} {info.width}x{info.height}, {n} frames, --size {args.size}, "
          f"{os.cpu_count()} CPUs\n")
    print(f"end to end: **{n / summary.seconds:.1f} frames/s** ({total * 1000:.1f} ms/frame)\n")
    print("| stage | ms/frame | share of end-to-end |\n| --- | ---: | ---: |")
    for name, sec in stages.items():
        print(f"| {name} | {sec * 1000:.1f} | {sec / total:.0%} |")
    rest = total - accounted
    print(f"| crop/mask PNG writing, manifest, bookkeeping | {rest * 1000:.1f} | {rest / total:.0%} |")


if __name__ == "__main__":
    main()
