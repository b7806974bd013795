"""How long the web app's check takes to look at a long video (not a test).

Writes a synthetic clip (moving noise, libx264 ultrafast, x264's default key frame interval of 250)
and times `media.sample_video_frames` (12 frames over the whole clip, key frames only) against
decoding it frame by frame for the same 12 (`iter_video_frames` with every_n).

    .venv/bin/python benchmarks/bench_sample_frames.py --seconds 300 --size 1920x1080
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from synthswap.media import iter_video_frames, probe_video, sample_video_frames


def write_clip(path: Path, seconds: int, width: int, height: int, fps: int = 30) -> None:
    base = np.random.default_rng(0).integers(0, 255, (height, width, 3), np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i in range(seconds * fps):
            frame = av.VideoFrame.from_ndarray(np.roll(base, i * 4, axis=1), format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, default=300)
    p.add_argument("--size", default="1920x1080")
    p.add_argument("--count", type=int, default=12)
    args = p.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mp4"
        write_clip(clip, args.seconds, width, height)
        frames = probe_video(clip).frame_count
        t = time.perf_counter()
        sampled = sample_video_frames(clip, args.count)
        keyframes_s = time.perf_counter() - t
        t = time.perf_counter()
        walked = sum(1 for _ in iter_video_frames(clip, every_n=max(1, frames // args.count), max_frames=args.count))
        sequential_s = time.perf_counter() - t
    print(f"{args.seconds} s of {width}x{height} ({frames} frames): {len(sampled)} frames sampled from key frames "
          f"in {keyframes_s:.2f} s; {walked} by decoding frame by frame in {sequential_s:.2f} s")


if __name__ == "__main__":
    main()
