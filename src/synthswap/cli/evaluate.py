"""`synthswap evaluate`: metrics of a swapped video against its source and the subject."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path

from synthswap.cli import summary
from synthswap.cli.options import add_common, add_flags, fail, from_args
from synthswap.faceset import FacesetError
from synthswap.media import MediaError
from synthswap.metrics.evaluate import EvaluateError, EvaluateOptions, evaluate, output_paths


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help=summary("evaluate"),
        description=(
            "Read the swapped video and the destination video it was made from in lockstep, analyse the face "
            "in every frame of both, and report per-frame and summary metrics as JSON and Markdown: identity "
            "similarity of the swapped faces to the subject (SFace, and dlib's ResNet as an independent judge) "
            "and to the destination person (identity leakage), expression error, pose error, FID and KID "
            "against real faces of the subject, temporal jitter against the source, and the swap rate."
        ),
        epilog="example: synthswap evaluate --video out.mp4 --source dest.mp4 --subject work/subject "
               "--holdout work/subject_holdout --out out_eval",
    )
    p.add_argument("--video", required=True, help="the swapped video")
    p.add_argument("--source", required=True, help="the destination video it was made from")
    p.add_argument("--subject", required=True, metavar="FACESET", help="faceset of the subject's real faces")
    p.add_argument("--holdout", metavar="FACESET",
                   help="real faces of the subject not used in training, for FID/KID (default: --subject)")
    p.add_argument("--out", metavar="PREFIX", help="write PREFIX.json and PREFIX.md (default: next to --video)")
    add_flags(p, EvaluateOptions)
    add_common(p, device=False, seed=False, threads=False)
    p.set_defaults(func=run)


def _is_evaluation(path: Path) -> bool:
    """Whether `path` is a JSON file an earlier `evaluate` wrote (which it may replace)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and {"video", "source", "subject", "summary", "frames"} <= set(data)


def run(args: argparse.Namespace) -> int:
    prefix = Path(args.out) if args.out else Path(args.video).with_suffix("")
    folder = prefix.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        # Checked now, not after minutes of evaluation.
        return fail(f"{folder}: not a writable folder for the evaluation's files", 1)
    target = Path(str(prefix) + "_eval") if not args.out else prefix
    json_path, md_path = output_paths(target)
    ours = _is_evaluation(json_path)
    for path in (json_path, md_path):
        if (path.exists() or path.is_symlink()) and not ours:
            return fail(f"{path}: exists and was not written by synthswap evaluate; move it away or choose "
                        f"another --out", 1)
    try:
        result = evaluate(args.video, args.source, args.subject, holdout=args.holdout,
                          **asdict(from_args(EvaluateOptions, args)), progress=args.progress)
    except (EvaluateError, MediaError, FacesetError) as exc:
        return fail(str(exc), 1)
    try:
        json_path, md_path = result.write(target)
    except OSError as exc:  # the folder went away or read-only meanwhile, a full disk
        return fail(f"cannot write the evaluation ({exc})", 1)
    for key, value in result.summary().items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    print(f"wrote {json_path} and {md_path}")
    return 0
