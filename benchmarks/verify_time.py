"""How long `synthswap verify` takes on a 1-minute clip (issue 27: under 30 s on 2 cores; not a test).

Builds a 60 s clip at 480 x 480 by looping d6 (the longest people video, 33.6 s) forward, writes it
marked (every frame, as convert marks a frame outside the face) and unmarked, and the marked one again
after the 0.33x downscale and after the filmed screen (the edits whose geometry the search has to find),
then times `verify_file` (what `synthswap verify` runs) on each: wall and CPU seconds, best of
`--repeats`, with torch and OpenCV on `--threads` threads. The unmarked clip is the slowest case: no
geometry reads, so the whole search runs.

    .venv/bin/python benchmarks/verify_time.py --threads 2 --repeats 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import torch

from synthswap.media import VideoWriter, iter_video_frames, probe_video
from synthswap.provenance import watermark
from synthswap.provenance.edits import GEOMETRIC_EDITS, apply_edit
from synthswap.provenance.verify import verify_file

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SOURCE = DATA / "videos" / "people" / "d6.mp4"
RUN_ID = b"\xa1\xb2\xc3"


def one_minute_clip(out: Path, marked: bool, seconds: float = 60.0) -> Path:
    info = probe_video(SOURCE)
    total = round(float(info.fps) * seconds)
    with VideoWriter(out, info.width, info.height, info.fps, crf=18) as writer:
        index = 0
        while index < total:
            for frame in iter_video_frames(SOURCE):
                if index == total:
                    break
                writer.write(watermark.embed(frame.bgr, RUN_ID, index=index) if marked else frame.bgr)
                index += 1
    return out


def timed(path: Path, repeats: int) -> tuple[float, float, object]:
    best_wall, best_cpu, result = float("inf"), float("inf"), None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = verify_file(path)
        best_wall, best_cpu = min(best_wall, time.perf_counter() - wall), min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        marked = one_minute_clip(folder / "marked.mp4", True)
        clips = {"unmarked": one_minute_clip(folder / "unmarked.mp4", False), "marked": marked}
        for edit in (e for e in GEOMETRIC_EDITS if e.scale < 0.5 or e.perspective):
            clips[f"marked, {edit.name}"] = apply_edit(edit, marked, folder / f"edit{len(clips)}.mp4")
        print(f"| 60 s clip ({probe_video(marked).frame_count} frames) | verify wall s | CPU s | frames read | "
              f"result |\n| --- | ---: | ---: | ---: | --- |")
        for name, path in clips.items():
            wall, cpu, result = timed(path, args.repeats)
            found = result.watermark
            said = (f"run id {found.run_id}" if found.run_id else "marker only" if found.found else "no mark") + \
                f", z {found.z:.1f}"
            print(f"| {name} | {wall:.1f} | {cpu:.1f} | {found.frames} | {said} |", flush=True)


if __name__ == "__main__":
    main()
