"""Does the watermark change what `synthswap evaluate` measures? (not a test)

Converts one destination video with one swap model without the watermark and --repeats times
with it (each a new random run id; everything else identical and deterministic), and evaluates
each against the destination and a subject faceset. Differences are paired frame by frame (the
same frame with and without the mark), with a 95% interval over frames, so "beyond noise" has a
meaning: an interval that excludes 0. As a second scale, the unmarked output re-encoded at CRF 23
is evaluated too: a change the watermark makes should be no larger than what one mild re-encode
does.

    .venv/bin/python benchmarks/watermark_effect.py --model MODEL_DIR --video DEST --subject FACESET \\
        [--frames 75] [--repeats 3] [--threads 1]

Prints the paired differences (Markdown), then a direct check on the
destination's own frames: FaceMesh landmarks, expression vector and SFace embedding of each frame
with the watermark against without, beside the same for a CRF 23 re-encode. --json FILE writes all.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from synthswap.faces.pipeline import FaceAnalyzer
from synthswap.media import VideoWriter, iter_video_frames, probe_video
from synthswap.metrics.evaluate import evaluate
from synthswap.provenance import watermark
from synthswap.provenance.edits import Edit, apply_edit
from synthswap.swap.convert import ConvertOptions, convert_video

def _analyse(path: Path, frames: int | None) -> list:
    analyzer = FaceAnalyzer(128, with_identity=True)
    try:
        return [analyzer.analyze(f.bgr) for f in iter_video_frames(path, max_frames=frames)]
    finally:
        analyzer.close()


def _compare(faces: list, base: list) -> dict[str, float]:
    pairs = [(a, b) for a, b in zip(faces, base) if a is not None and b is not None]
    shift = [np.linalg.norm(a.landmarks_frame[:, :2] - b.landmarks_frame[:, :2], axis=1).mean() for a, b in pairs]
    expr = [np.linalg.norm(np.array(list(a.expression.values())) - np.array(list(b.expression.values())))
            for a, b in pairs]
    cos = [float(np.dot(a.identity, b.identity)) for a, b in pairs]
    return {"landmark_shift_px": float(np.mean(shift)), "expression_l2": float(np.mean(expr)),
            "sface_cosine": float(np.mean(cos))}


def frame_effect(video: str, frames: int | None, tmp: Path) -> dict[str, dict[str, float]]:
    """The destination itself, written as convert writes (CRF 18) with and without the watermark,
    and re-encoded at CRF 23: how far each moves the landmarks, expression and SFace identity."""
    info = probe_video(video)
    plain, marked = tmp / "plain.mp4", tmp / "marked.mp4"
    with VideoWriter(plain, info.width, info.height, info.fps) as a, \
            VideoWriter(marked, info.width, info.height, info.fps) as b:
        for f in iter_video_frames(video, max_frames=frames):
            a.write(f.bgr)
            b.write(watermark.embed(f.bgr, b"\x00\x01\x02", index=f.index))
    base = _analyse(plain, frames)
    crf23 = apply_edit(Edit("CRF 23", crf=23), plain, tmp / "plain_crf23.mp4")
    return {"watermarked": _compare(_analyse(marked, frames), base),
            "re-encoded CRF 23": _compare(_analyse(crf23, frames), base)}


# Summary metric -> the per-frame field behind it, for paired differences frame by frame.
PAIRED = {"identity_to_subject": "id_subject", "identity_to_destination": "id_destination",
          "dlib_distance_to_subject": "dlib_subject", "dlib_distance_to_destination": "dlib_destination",
          "expression_error": "expression_error", "pose_error_deg": "pose_error"}


def paired_difference(a, b, field: str) -> tuple[float, float, int]:
    """Mean over frames of a's value minus b's (same frame), its 95% half-width (1.96 standard
    errors) and the number of frames where both have one."""
    d = np.array([getattr(x, field) - getattr(y, field) for x, y in zip(a.frames, b.frames)
                  if getattr(x, field) is not None and getattr(y, field) is not None])
    if len(d) < 2:
        return float("nan"), float("nan"), len(d)
    return float(d.mean()), float(1.96 * d.std(ddof=1) / np.sqrt(len(d))), len(d)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--video", required=True)
    p.add_argument("--subject", required=True, help="the subject's faceset (identity reference)")
    p.add_argument("--frames", type=int, default=None, help="convert and evaluate only the first N frames")
    p.add_argument("--repeats", type=int, default=3,
                   help="watermarked conversions, each with its own random run id (so its own pattern of bits)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    def convert_and_evaluate(out: Path, mark: bool, keys: Path):
        convert_video(args.model, args.video, out, ConvertOptions(device="cpu", progress=False, max_frames=args.frames,
                                                                  watermark=mark, key_dir=str(keys)))
        return evaluate(out, args.video, args.subject, max_frames=args.frames, fid=False, progress=False)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        off = convert_and_evaluate(tmp / "off.mp4", False, tmp / "keys")
        ons = [convert_and_evaluate(tmp / f"on{i}.mp4", True, tmp / "keys") for i in range(args.repeats)]
        reencoded = apply_edit(Edit("CRF 23", crf=23), tmp / "off.mp4", tmp / "off_crf23.mp4")
        crf23 = evaluate(reencoded, args.video, args.subject, max_frames=args.frames, fid=False, progress=False)
        effect = frame_effect(args.video, args.frames, tmp)

    columns = [f"on #{i + 1} - off" for i in range(args.repeats)] + ["CRF 23 of off - off"]
    print("Paired by frame: mean difference +- 95% half-width (1.96 standard errors over frames).\n")
    print("| metric | off | " + " | ".join(columns) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in columns) + " |")
    table = {}
    for metric, field_name in PAIRED.items():
        base = off.summary()[metric]
        if base is None:
            continue
        cells = [paired_difference(e, off, field_name) for e in ons + [crf23]]
        table[metric] = {"off": base, **{c: {"mean": m, "half_width": h, "frames": n}
                                          for c, (m, h, n) in zip(columns, cells)}}
        print(f"| {metric} | {base:.4f} | " + " | ".join(f"{m:+.4f} +- {h:.4f}" for m, h, _ in cells) + " |")
    for metric in ("landmark_jitter_ratio", "sharpness_ratio"):  # not per-frame pairs: whole-video figures
        vals = [e.summary()[metric] for e in [off] + ons + [crf23]]
        if None not in vals:
            table[metric] = vals
            print(f"| {metric} | {vals[0]:.4f} | " + " | ".join(f"{v - vals[0]:+.4f}" for v in vals[1:]) + " |")
    print("\n| against the unmarked frame (CRF 18) | landmark shift px | expression L2 | SFace cosine |")
    print("| --- | ---: | ---: | ---: |")
    for name, row in effect.items():
        print(f"| {name} | {row['landmark_shift_px']:.3f} | {row['expression_l2']:.4f} | {row['sface_cosine']:.4f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"paired": table, "frame_effect": effect}, indent=2, default=str))


if __name__ == "__main__":
    main()
