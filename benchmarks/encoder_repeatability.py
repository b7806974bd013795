"""Probe (not a test): does `media.VideoWriter` write the same bits for the same frames?

Decodes a clip once, then encodes those very frames N times with the product's writer (libx264,
CRF 18, veryfast) at each asked x264 thread count, and prints how many different outputs came out
(the SHA-256 of the decoded pictures of each file). The face pipeline before the writer is
deterministic; this is what is left when a tiny run's output frames differ between two runs.

    .venv/bin/python benchmarks/encoder_repeatability.py --repeats 12 --threads 1 4

Needs ../shared/data (videos/grid/bbaf2n.mpg by default: 360 x 288, whose width is not a multiple of
16, so its last macroblock column is part padding).
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path

import av

from synthswap import media

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", default=str(DATA / "videos/grid/bbaf2n.mpg"))
    p.add_argument("--repeats", type=int, default=12)
    p.add_argument("--threads", type=int, nargs="+", default=[1, media.X264_THREADS])
    args = p.parse_args()
    info = media.probe_video(args.video)
    frames = [(f.bgr.copy(), f.time_s) for f in media.iter_video_frames(args.video)]
    with tempfile.TemporaryDirectory() as tmp:
        for threads in args.threads:
            media.X264_THREADS = threads
            outputs: dict[str, int] = {}
            for i in range(args.repeats):
                out = Path(tmp) / f"enc{i}.mp4"
                with media.VideoWriter(out, info.width, info.height, info.fps) as writer:
                    for bgr, time_s in frames:
                        writer.write(bgr, time_s)
                digest = hashlib.sha256()
                with av.open(str(out)) as container:
                    for frame in container.decode(video=0):
                        digest.update(frame.to_ndarray(format="bgr24").tobytes())
                key = digest.hexdigest()[:12]
                outputs[key] = outputs.get(key, 0) + 1
            print(f"x264 threads {threads}: {len(outputs)} different output(s) in {args.repeats} encodes {outputs}")


if __name__ == "__main__":
    main()
