"""Does the run id survive one edit for any run id, or only for some? (not a test)

The watermark's payload bits land on fixed cells of the tile, so on a static clip whether a
bit survives a strong re-encode can depend on its value. This marks the first --frames frames of
one clip with --ids random run ids in turn, writes each as `swap convert` does (H.264 CRF 18),
applies one edit of `provenance.edits.EDITS` (default: CRF 28) and prints what `detect` reads.

    .venv/bin/python benchmarks/watermark_run_ids.py --video ../shared/data/videos/people/d9.mp4 --ids 8
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
from pathlib import Path

import torch

from synthswap.media import VideoWriter, iter_video_frames, probe_video
from synthswap.provenance import watermark
from synthswap.provenance.edits import EDITS, apply_edit


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--video", required=True)
    p.add_argument("--ids", type=int, default=8, help="random run ids tried")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--edit", default="H.264 CRF 28", choices=[e.name for e in EDITS])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    info = probe_video(args.video)
    frames = [f.bgr for f in iter_video_frames(args.video, max_frames=args.frames)]
    edit = next(e for e in EDITS if e.name == args.edit)
    read = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.ids):
            run_id = secrets.token_bytes(watermark.RUN_ID_BYTES)
            marked = Path(tmp) / f"marked{i}.mp4"
            with VideoWriter(marked, info.width, info.height, info.fps, crf=18) as writer:
                for n, frame in enumerate(frames):
                    writer.write(watermark.embed(frame, run_id, index=n))
            edited = apply_edit(edit, marked, Path(tmp) / f"edited{i}.mp4")
            found = watermark.detect([watermark.luma(f.bgr) for f in iter_video_frames(edited)])
            read += found.run_id == run_id.hex()
            print(f"run id {run_id.hex()}: read {found.run_id}, z {found.z:.1f}, "
                  f"{found.frames_decoded}/{found.frames} frames alone", flush=True)
    print(f"{Path(args.video).name}, {args.edit}: run id read in {read} of {args.ids} runs")


if __name__ == "__main__":
    main()
