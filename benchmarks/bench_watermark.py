"""Benchmark of the invisible watermark (provenance/watermark.py), not a test.

For each clip of ../shared (the first --frames frames):
  - embedding time per frame and PSNR of the marked frame against the unmarked one (all of
    B, G, R; the mark lives in the brightness, the same value added to B, G and R);
  - the mark's RMS in flat 16 px blocks (picture std < 2) and in textured ones (std > 8), and
    SSIM of the brightness (Gaussian 11 x 11, sigma 1.5);
  - the marked frames written as `swap convert` writes them (H.264 CRF 18), then every edit of
    `provenance.edits.EDITS` and `GEOMETRIC_EDITS` (re-encode at CRF 23 and 28, 0.75x downscale,
    10% crop at odd offsets, brightness +20, horizontal flip, rotation +-5 degrees, 0.33x
    downscale, centre crop keeping 0.71, boxes, a filmed screen; each re-encoded without metadata): the fraction of frames whose own
    payload decodes, whether the video-level vote finds the marker and the right run id, and
    the detection time per frame;
  - false positives: the same detection on every unmarked video of ../shared/data/videos (its
    first --frames frames), as it is and after each of the same edits.

    .venv/bin/python benchmarks/bench_watermark.py --frames 60 --threads 1
    .venv/bin/python benchmarks/bench_watermark.py --max-rms 2.6 --no-unmarked  # version 3's strength, PSNR 39.8 dB
    .venv/bin/python benchmarks/bench_watermark.py --model src/synthswap/weights/swap_df64 --no-unmarked

Times are the process's CPU time (one thread: cv2 and torch are set to --threads), so that what
other programs do on a shared machine does not count. Prints Markdown tables (and --json FILE
writes the figures).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from synthswap.media import VideoWriter, iter_video_frames, probe_video
from synthswap.provenance import watermark
from synthswap.metrics.picture import block_energy, ssim
from synthswap.provenance.edits import EDITS, GEOMETRIC_EDITS, Edit, apply_edit
from synthswap.swap.convert import ConvertOptions, convert_video

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "videos"
CLIPS = ["people/d6.mp4", "people/d9.mp4", "people/d20.mp4", "people/d0.mp4", "grid/bbaf2n.mpg",
         "cremad/1001_DFA_HAP_XX.flv"]


def read_planes(path: Path, max_frames: int) -> tuple[list[np.ndarray], list[int]]:
    frames = list(iter_video_frames(path, max_frames=max_frames))
    return [watermark.luma(f.bgr) for f in frames], [f.index for f in frames]


def timed_detect(read: tuple[list[np.ndarray], list[int]]) -> tuple[watermark.Detection, float]:
    planes, indices = read
    t = time.process_time()
    found = watermark.detect(planes, indices=indices)
    return found, (time.process_time() - t) / max(len(planes), 1)


def face_box(video: Path) -> tuple[int, int, int, int] | None:
    """The first frame's face box (FaceMesh landmarks' bounding box) enlarged 1.3x: a face-only crop."""
    from synthswap.faces.pipeline import FaceAnalyzer

    analyzer = FaceAnalyzer(64, with_identity=False)
    try:
        face = analyzer.analyze(next(iter(iter_video_frames(video, max_frames=1))).bgr)
    finally:
        analyzer.close()
    if face is None:
        return None
    (x0, y0), (x1, y1) = face.landmarks_frame[:, :2].min(axis=0), face.landmarks_frame[:, :2].max(axis=0)
    cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, 1.3 * max(x1 - x0, y1 - y0)
    return round(cx - side / 2), round(cy - side / 2), round(side), round(side)


def bench_clip(clip: Path, frames: int, work: Path, model: str | None = None) -> dict:
    run_id = secrets.token_bytes(watermark.RUN_ID_BYTES)
    info = probe_video(clip)
    marked_path = work / f"{clip.stem}_marked.mp4"
    embed_s, psnr, ssims, flat, textured = [], [], [], [], []
    if model is not None:
        # The real output: `swap convert` marks every frame but the swapped face's zone.
        result = convert_video(model, clip, marked_path, ConvertOptions(device="cpu", progress=False, max_frames=frames,
                                                                        key_dir=str(work / "keys")))
        run_id = bytes.fromhex(result["provenance"]["run_id"])
        embed_s, psnr = [float("nan")], [float("nan")]
    else:
        with VideoWriter(marked_path, info.width, info.height, info.fps, crf=18) as writer:
            for frame in iter_video_frames(clip, max_frames=frames):
                t = time.process_time()
                marked = watermark.embed(frame.bgr, run_id, index=frame.index)
                embed_s.append(time.process_time() - t)
                psnr.append(cv2.PSNR(frame.bgr, marked))
                ssims.append(ssim(watermark.luma(frame.bgr), watermark.luma(marked)))
                flat_energy, textured_energy = block_energy(frame.bgr, marked)
                flat += flat_energy
                textured += textured_energy
                writer.write(marked)
    rows = {}
    box = face_box(marked_path)
    face_crop = [Edit("face-only crop, 1.3x the face box (CRF 23)", box=box)] if box else []
    for edit in (None, *EDITS, *GEOMETRIC_EDITS, *face_crop):
        path = marked_path
        if edit is not None:
            path = apply_edit(edit, marked_path, work / f"{clip.stem}_{len(rows)}.mp4")
        found, seconds = timed_detect(read_planes(path, frames))
        rows[edit.name if edit else "as written (CRF 18)"] = {
            **found.to_dict(), "run_id_ok": found.run_id == run_id.hex(), "detect_ms_per_frame": seconds * 1000}
    return {"clip": str(clip.relative_to(DATA)), "size": f"{info.width}x{info.height}",
            "embed_ms_per_frame": 1000 * float(np.mean(embed_s[1:] or embed_s)),
            "psnr_db": float(np.mean(psnr)), "psnr_min_db": float(np.min(psnr)),
            "ssim": float(np.mean(ssims)) if ssims else float("nan"),
            "flat_rms": float(np.sqrt(np.mean(flat))) if flat else float("nan"),
            "textured_rms": float(np.sqrt(np.mean(textured))) if textured else float("nan"), "edits": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=60, help="frames per clip (default 60)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clips", nargs="*", default=CLIPS,
                   help="clips under ../shared/data/videos (none: only the false-positive pass)")
    p.add_argument("--json", help="also write the figures here")
    p.add_argument("--no-unmarked", action="store_true", help="skip the false-positive pass over ../shared")
    p.add_argument("--model", help="mark each clip by converting it with this swap model (`swap convert`, which "
                                   "leaves the face zone unmarked) instead of marking every pixel")
    p.add_argument("--amplitude", type=float, default=watermark.AMPLITUDE,
                   help=f"the mark's amplitude where the mask is 1 (default {watermark.AMPLITUDE}; for the trade-off)")
    p.add_argument("--max-rms", type=float, default=watermark.MAX_RMS,
                   help=f"the mark's RMS per frame (default {watermark.MAX_RMS}: PSNR about 44.8 dB)")
    args = p.parse_args()
    watermark.AMPLITUDE, watermark.MAX_RMS = args.amplitude, args.max_rms
    watermark._tile.cache_clear()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    results = {"frames": args.frames, "threads": args.threads, "clips": [], "unmarked": []}
    with tempfile.TemporaryDirectory() as tmp:
        for clip in args.clips:
            r = bench_clip(DATA / clip, args.frames, Path(tmp), args.model)
            results["clips"].append(r)
            print(json.dumps(r), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for video in [] if args.no_unmarked else sorted(p for p in DATA.rglob("*") if p.is_file()):
            # Every unmarked video as it is and after every edit: none may read as marked.
            for edit in (None, *EDITS, *GEOMETRIC_EDITS):
                path = video if edit is None else apply_edit(edit, video, Path(tmp) / "edited.mp4",
                                                             max_frames=args.frames)
                found, seconds = timed_detect(read_planes(path, args.frames))
                results["unmarked"].append({"video": str(video.relative_to(DATA)), "edit": edit.name if edit else None,
                                            **found.to_dict(), "detect_ms_per_frame": seconds * 1000})
                print(json.dumps(results["unmarked"][-1]), flush=True)
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def print_table(results: dict) -> None:
    clips = results["clips"]
    names = list(dict.fromkeys(n for c in clips for n in c["edits"]))
    print("\n| clip | size | embed ms/frame | PSNR dB (min) | SSIM | RMS flat / textured |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for c in clips:
        print(f"| {c['clip']} | {c['size']} | {c['embed_ms_per_frame']:.0f} | {c['psnr_db']:.1f} ({c['psnr_min_db']:.1f}) "
              f"| {c['ssim']:.4f} | {c['flat_rms']:.2f} / {c['textured_rms']:.2f} |")
    print("\n| edit | " + " | ".join(c["clip"] for c in clips) + " |")
    print("| --- | " + " | ".join("---:" for _ in clips) + " |")
    for name in names:
        cells = []
        for c in clips:
            e = c["edits"].get(name)
            if e is None:
                cells.append("-")
                continue
            if not e["found"]:
                vote = "missed"
            elif e["run_id_ok"]:
                vote = "ok"
            else:
                vote = "marker, id unreadable" if e["run_id"] is None else "WRONG ID"
            cells.append(f"{vote}, {100 * e['confidence']:.0f}%, z {e['z']:.1f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    detect_ms = [e["detect_ms_per_frame"] for c in clips for e in c["edits"].values()] or [float("nan")]
    print(f"\ndetection: {np.median(detect_ms):.0f} ms per frame (median; max {np.max(detect_ms):.0f}, the "
          f"geometric search) over {results['frames']} frames per video")
    if not results["unmarked"]:
        return
    fp = [f"{u['video']} ({u['edit'] or 'as it is'})" for u in results["unmarked"] if u["found"]]
    un_ms = [u["detect_ms_per_frame"] for u in results["unmarked"]]
    print(f"unmarked videos, as they are and after each edit: {len(fp)} false positives of {len(results['unmarked'])} "
          f"({', '.join(fp) or 'none'}); highest marker z on them: "
          f"{max(u['z'] for u in results['unmarked']):.2f} (threshold {watermark.Z_FOUND}); "
          f"{np.median(un_ms):.0f} ms per frame")


if __name__ == "__main__":
    main()
