"""`synthswap run`: photos (or a clip) of a subject + a destination video -> swapped video + report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from synthswap.cli import summary
from synthswap.cli.options import add_flags, fail, from_args
from synthswap.media import VIDEO_EXTENSIONS, MediaError, is_video, probe_video
from synthswap.options import OptionError
from synthswap.run import PIPELINE_ERRORS, RunOptions, run

RUN_FLAGS_SKIP = {"subject", "video", "out"}


def add_run_arguments(p: argparse.ArgumentParser, defaults: dict[str, Any] | None = None) -> None:
    """The pipeline's options, generated from RunOptions; `demo` reuses them with its own small defaults."""
    add_flags(p, RunOptions, skip=RUN_FLAGS_SKIP, defaults=defaults)


def options_from_args(args: argparse.Namespace, subject: list[str], video: str, out: str) -> RunOptions:
    return from_args(RunOptions, args, subject=subject, video=video, out=out)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help=summary("run"),
        description=(
            "Make OUT.mp4: the destination video with the subject's face. Extracts both, trains a personal GAN "
            "prior on the destination's frames and the subject's photos, inverts the photos into it, synthesises "
            "extra subject images aimed at the destination's expressions, trains the swap model on real + "
            "synthetic faces, converts the video (audio kept) and evaluates it (report.html beside OUT). Every "
            "stage is cached in the work directory and skipped when its inputs did not change; run the same "
            "command again after an interruption to resume."
        ),
        epilog="example: synthswap run --subject photos/ --video dest.mp4 --out out.mp4 --gan-minutes 30",
    )
    p.add_argument("--subject", nargs="+", required=True, metavar="PHOTOS_OR_VIDEO",
                   help="photos, folders of photos or a video of the subject")
    p.add_argument("--video", required=True, metavar="DEST", help="the destination video")
    p.add_argument("--out", required=True, metavar="OUT.mp4", help="the swapped video to write")
    add_run_arguments(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    return execute(options_from_args(args, args.subject, args.video, args.out))


def execute(opts: RunOptions) -> int:
    try:
        opts.validate()  # before any file is looked at: the same check as the web form's
    except OptionError as exc:
        return fail(str(exc))
    if not is_video(Path(opts.video)):  # a photo would make a one-frame "video" without a word
        return fail(f"--video {opts.video}: not a video file ({', '.join(sorted(VIDEO_EXTENSIONS))})", 1)
    if Path(opts.video).exists():  # an unreadable one fails now, not after the subject's extraction
        try:
            probe_video(opts.video)
        except MediaError as exc:
            return fail(str(exc), 1)
    try:
        summary = run(opts)
    except PIPELINE_ERRORS as exc:
        return fail(str(exc), 1)
    for key in ("swap_rate", "identity_to_subject", "identity_to_destination", "expression_error", "pose_error_deg"):
        value = summary.get(key)
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    return 0
