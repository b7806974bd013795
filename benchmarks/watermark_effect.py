"""Does the watermark change what `synthswap evaluate` measures? (not a test)

Converts one destination video with one swap model twice, with the watermark and with
--no-watermark (everything else identical and deterministic), and evaluates both against the
destination and a subject faceset. As the scale of "noise", the unmarked output re-encoded at
CRF 23 is evaluated too: a change the watermark makes should be no larger than what one mild
re-encode does.

    .venv/bin/python benchmarks/watermark_effect.py --model MODEL_DIR --video DEST --subject FACESET \\
        [--frames 75] [--threads 1]

Prints the metrics side by side and their differences (Markdown), then a direct check on the
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

METRICS = ["swap_rate", "identity_to_subject", "identity_to_destination", "dlib_distance_to_subject",
           "dlib_distance_to_destination", "expression_error", "pose_error_deg", "landmark_jitter_ratio"]


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
            b.write(watermark.embed(f.bgr, b"\x00\x01\x02"))
    base = _analyse(plain, frames)
    crf23 = apply_edit(Edit("CRF 23", crf=23), plain, tmp / "plain_crf23.mp4")
    return {"watermarked": _compare(_analyse(marked, frames), base),
            "re-encoded CRF 23": _compare(_analyse(crf23, frames), base)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--video", required=True)
    p.add_argument("--subject", required=True, help="the subject's faceset (identity reference)")
    p.add_argument("--frames", type=int, default=None, help="convert and evaluate only the first N frames")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, mark in (("watermark on", True), ("watermark off", False)):
            out = tmp / f"{'on' if mark else 'off'}.mp4"
            convert_video(args.model, args.video, out, ConvertOptions(device="cpu", progress=False,
                                                                      max_frames=args.frames, watermark=mark,
                                                                      key_dir=str(tmp / "keys")))
            results[name] = evaluate(out, args.video, args.subject, max_frames=args.frames, fid=False,
                                     progress=False).summary()
        reencoded = apply_edit(Edit("CRF 23", crf=23), tmp / "off.mp4", tmp / "off_crf23.mp4")
        results["off, re-encoded CRF 23"] = evaluate(reencoded, args.video, args.subject, max_frames=args.frames,
                                                     fid=False, progress=False).summary()
    names = list(results)
    print("| metric | " + " | ".join(names) + " | on - off | CRF 23 - off |")
    print("| --- | " + " | ".join("---:" for _ in names) + " | ---: | ---: |")
    for key in METRICS:
        vals = [results[n].get(key) for n in names]
        if any(v is None for v in vals):
            continue
        print(f"| {key} | " + " | ".join(f"{v:.4f}" for v in vals) +
              f" | {vals[0] - vals[1]:+.4f} | {vals[2] - vals[1]:+.4f} |")
        effect = frame_effect(args.video, args.frames, tmp)
    print("\n| against the unmarked frame (CRF 18) | landmark shift px | expression L2 | SFace cosine |")
    print("| --- | ---: | ---: | ---: |")
    for name, row in effect.items():
        print(f"| {name} | {row['landmark_shift_px']:.3f} | {row['expression_l2']:.4f} | {row['sface_cosine']:.4f} |")
    results["frame_effect"] = effect
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
