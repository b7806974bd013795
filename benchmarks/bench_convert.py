"""Benchmark of `swap convert` (not a test): frames per second on a real video and where the time goes.

Converts the first N frames of a people video with the shipped 64 px swap model, in each asked
precision, with and without the shipped face enhancer, and times every stage of a frame by wrapping
the functions that do it (the product code carries no timers): decoding, face detection and
landmarks, the swap model, enlarging the face to its size in the frame (bicubic or the enhancer),
colour transfer, mask and blending, the invisible watermark, encoding, and the C2PA signature at
the end. Stage seconds are summed over the run, whichever thread spent them: decoding runs ahead
and the watermark behind the face pipeline on threads of their own, so the stages can
add up to more than the wall time ("other", the wall time less the stages, is then negative).

    .venv/bin/python benchmarks/bench_convert.py --threads 2 --frames 150 --json bench_convert.json

Needs ../shared/data (videos/people/d9.mp4 by default, 512x512 at 25 fps).
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

import torch

from common import write_results  # benchmarks/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]
DATA = (ROOT / ".." / "shared" / "data").resolve()


class StageClock:
    """Seconds spent per stage, from wrappers put around the functions that do each stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def timed(self, stage: str, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - t
        return wrapper

    def timed_iterator(self, stage: str, fn):
        """A generator function whose every `next` is timed (decoding happens inside `next`)."""
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            it = fn(*args, **kwargs)
            while True:
                t = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    self.seconds[stage] += time.perf_counter() - t
                    return
                self.seconds[stage] += time.perf_counter() - t
                yield item
        return wrapper


def profiled_convert(model: Path, video: Path, out: Path, frames: int, precision: str, enhancer: str | None) -> dict:
    from synthswap.faces.pipeline import FaceAnalyzer
    from synthswap.media import VideoWriter
    from synthswap.swap import convert

    clock = StageClock()
    patches = [
        (convert, "iter_video_frames", clock.timed_iterator("decode", convert.iter_video_frames)),
        (FaceAnalyzer, "analyze", clock.timed("detect + landmarks", FaceAnalyzer.analyze)),
        (FaceAnalyzer, "from_landmarks", clock.timed("detect + landmarks", FaceAnalyzer.from_landmarks)),
        (convert.FaceSwapper, "_swap_crop", clock.timed("swap model", convert.FaceSwapper._swap_crop)),
        (convert.FaceSwapper, "_enlarge", clock.timed("enlarge (bicubic or enhancer)", convert.FaceSwapper._enlarge)),
        (convert, "transfer", clock.timed("colour transfer", convert.transfer)),
        (convert.FaceSwapper, "_paste_mask", clock.timed("mask + blend", convert.FaceSwapper._paste_mask)),
        (convert.FaceSwapper, "_blend", clock.timed("mask + blend", convert.FaceSwapper._blend)),
        (convert, "_mark", clock.timed("watermark", convert._mark)),
        (VideoWriter, "write", clock.timed("encode", VideoWriter.write)),
        (convert, "_sign", clock.timed("C2PA signature", convert._sign)),
    ]
    opts = convert.ConvertOptions(max_frames=frames, precision=precision, enhancer=enhancer, progress=False)
    with ExitStack() as stack:
        for owner, name, wrapper in patches:
            stack.enter_context(mock.patch.object(owner, name, wrapper))
        t = time.perf_counter()
        summary = convert.convert_video(model, video, out, opts)
        total = time.perf_counter() - t
    stages = {k: round(v, 3) for k, v in sorted(clock.seconds.items(), key=lambda kv: -kv[1])}
    stages["other (loading, set-up, the loop)"] = round(total - sum(clock.seconds.values()), 3)
    n = summary["frames"]
    return {"precision": precision, "enhancer": enhancer or "none (bicubic)", "frames": n,
            "faces_swapped": summary["faces_swapped"], "seconds": round(total, 2),
            "frames_per_s": round(n / total, 2), "size": f"{summary['width']}x{summary['height']}",
            "stage_seconds": stages, "stage_ms_per_frame": {k: round(1000 * v / n, 1) for k, v in stages.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", default=str(DATA / "videos" / "people" / "d9.mp4"))
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "auto"])
    ap.add_argument("--enhancers", nargs="+", default=["none", "shipped"], help="'none', 'shipped' or folders")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    video = Path(args.video)
    if not video.is_file():
        raise SystemExit(f"error: {video} not found (needs ../shared/data)")
    torch.set_num_threads(args.threads)
    from synthswap.pretrained import shipped_model

    model = shipped_model("swap")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for enhancer in args.enhancers:
            for precision in args.precisions:
                out = Path(tmp) / f"out_{precision}_{len(runs)}.mp4"
                runs.append(profiled_convert(model, video, out, args.frames, precision,
                                             None if enhancer == "none" else enhancer))
                print(f"{runs[-1]['enhancer']:>18} {precision}: {runs[-1]['frames_per_s']} frames/s", flush=True)
    write_results({"video": str(video), "threads": args.threads, "model": "shipped swap_df64 (64 px)",
                   "runs": runs}, args.json)


if __name__ == "__main__":
    main()
