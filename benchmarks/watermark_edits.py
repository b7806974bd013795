"""The watermark against the edits platforms and people make (issue 27, item 2); not a test.

Each clip of ../shared (its first --frames frames) is marked with one run id and written as `swap
convert` writes it (H.264 CRF 18); each edit below is then applied and re-encoded without metadata
(H.264 CRF 23 unless the edit says otherwise), and `watermark.detect` reads the result as `verify`
does. With --unmarked, every unmarked video of ../shared goes through the same edits: none may read
as marked. One row per edit: in how many clips the marker was found and the run id read, and how
many unmarked videos were flagged (with the highest unmarked z against the threshold), and the
lowest marker z among the marked clips (the margin the edit leaves).

    .venv/bin/python benchmarks/watermark_edits.py            # the marked clips (about 10 minutes)
    .venv/bin/python benchmarks/watermark_edits.py --unmarked # and the false positives (hours on 2 cores)
    .venv/bin/python benchmarks/watermark_edits.py --only rotation --only flip --clips people/d6.mp4
    .venv/bin/python benchmarks/watermark_edits.py --unmarked --skip-marked --only rotation  # false positives alone
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2

from synthswap.media import VideoWriter, iter_video_frames, probe_video
from synthswap.provenance import watermark
from synthswap.provenance.edits import Edit, apply_edit

from bench_watermark import read_planes  # benchmarks/ is on sys.path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "videos"
CLIPS = ["people/d0.mp4", "people/d3.mp4", "people/d6.mp4", "people/d9.mp4", "grid/bbaf2n.mpg"]
RUN_ID = b"\xa1\xb2\xc3"
# The list, in its order.
EDITS = [
    Edit("H.264 CRF 23"),
    Edit("horizontal flip", flip=True),
    *(Edit(f"rotation {a:+g} deg", rotate=a) for a in (2, -2, 5, -5, 10, -10)),
    Edit("rotation 90 deg", rotate=90),
    *(Edit(f"{s:g}x downscale", scale=s) for s in (0.5, 0.33, 0.25)),
    Edit("letterbox into 1280x720", canvas=(1280, 720)),
    Edit("pillarbox into 1080x1920", canvas=(1080, 1920)),
    Edit("centre crop 0.71", crop=0.29),
    Edit("centre crop 0.5", crop=0.5),
    Edit("reframe to 9:16", aspect=9 / 16),
    Edit("H.264 CRF 38", crf=38),
    Edit("H.265 CRF 28", codec="hevc", crf=28),
    Edit("VP9 CRF 36", codec="vp9", crf=36),
    Edit("brightness +30", brightness=30),
    Edit("brightness -30", brightness=-30),
    Edit("contrast 0.7", contrast=0.7),
    Edit("contrast 1.3", contrast=1.3),
    Edit("saturation 0", saturation=0.0),
    Edit("saturation 1.5", saturation=1.5),
    Edit("2 s excerpt from the middle", start_s=0.5, length_s=2.0),
    Edit("screen recording (perspective 3%, 0.75x, gamma 1.2)", perspective=0.03, scale=0.75, gamma=1.2),
]


def mark(clip: Path, frames: int, out: Path) -> Path:
    info = probe_video(clip)
    with VideoWriter(out, info.width, info.height, info.fps, crf=18) as writer:
        for f in iter_video_frames(clip, max_frames=frames):
            writer.write(watermark.embed(f.bgr, RUN_ID, index=f.index))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clips", nargs="*", default=CLIPS, help="clips under ../shared/data/videos")
    p.add_argument("--frames", type=int, default=75, help="frames of each clip (the excerpt needs 2.5 s)")
    p.add_argument("--unmarked", action="store_true", help="also every unmarked video of ../shared, edited alike")
    p.add_argument("--unmarked-frames", type=int, default=30, help="frames of each unmarked video (its search for "
                                                                    "a marker that is not there is the slow part)")
    p.add_argument("--only", action="append", default=[], help="only the edits whose name contains this (repeat: any)")
    p.add_argument("--skip-marked", action="store_true", help="with --unmarked: the false positives alone (the "
                                                              "marked clips' columns print as '-')")
    args = p.parse_args()
    if args.skip_marked and not args.unmarked:
        p.error("--skip-marked needs --unmarked (there would be nothing to measure)")
    cv2.setNumThreads(1)
    edits = [e for e in EDITS if not args.only or any(part in e.name for part in args.only)]
    videos = sorted(v for v in DATA.rglob("*") if v.is_file()) if args.unmarked else []
    print(f"{0 if args.skip_marked else len(args.clips)} marked clips ({args.frames} frames each), {len(videos)} unmarked videos "
          f"({args.unmarked_frames} frames each)\n")
    print("| edit (then re-encoded) | marker found | run id read | run id not read in | lowest marked z "
          "| unmarked flagged | highest unmarked z |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        marked = [] if args.skip_marked else [mark(DATA / clip, args.frames, work / f"marked_{i}.mp4")
                                              for i, clip in enumerate(args.clips)]
        for edit in edits:
            found = read = 0
            missed, zs = [], []
            for clip, path in zip(args.clips, marked):
                planes, indices = read_planes(apply_edit(edit, path, work / "edited.mp4"), args.frames)
                result = watermark.detect(planes, indices=indices)
                found += result.found
                zs.append(result.z)
                read += result.found and result.run_id == RUN_ID.hex()
                if not (result.found and result.run_id == RUN_ID.hex()):
                    missed.append(f"{Path(clip).stem} (z {result.z:.1f})")
            flagged, top = 0, 0.0
            for video in videos:
                planes, indices = read_planes(apply_edit(edit, video, work / "plain.mp4",
                                                         max_frames=args.unmarked_frames), args.unmarked_frames)
                result = watermark.detect(planes, indices=indices)
                flagged += result.found
                top = max(top, result.z)
            marked_columns = (f"{found} / {len(marked)} | {read} / {len(marked)} | {', '.join(missed) or '–'} "
                              f"| {min(zs):.1f}" if marked else "– | – | – | –")
            print(f"| {edit.name} | {marked_columns} | "
                  + (f"{flagged} / {len(videos)} | {top:.2f} |" if videos else "– | – |"), flush=True)
    print(f"\nthreshold z {watermark.Z_FOUND}")


if __name__ == "__main__":
    main()
