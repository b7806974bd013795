"""Does the watermark change what `synthswap evaluate` measures? (not a test)

Converts one destination video with one swap model twice, with the watermark and with
--no-watermark (everything else identical and deterministic), and evaluates both against the
destination and a subject faceset. As the scale of "noise", the unmarked output re-encoded at
CRF 23 is evaluated too: a change the watermark makes should be no larger than what one mild
re-encode does.

    .venv/bin/python benchmarks/watermark_effect.py --model MODEL_DIR --video DEST --subject FACESET \\
        [--frames 75] [--threads 1]

Prints the metrics side by side and their differences (Markdown), and --json FILE writes them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from synthswap.metrics.evaluate import evaluate
from synthswap.provenance.edits import Edit, apply_edit
from synthswap.swap.convert import ConvertOptions, convert_video

METRICS = ["swap_rate", "identity_to_subject", "identity_to_destination", "dlib_distance_to_subject",
           "dlib_distance_to_destination", "expression_error", "pose_error_deg", "landmark_jitter_ratio"]


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
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
