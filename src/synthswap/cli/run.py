"""`synthswap run`: photos (or a clip) of a subject + a destination video -> swapped video + report."""

from __future__ import annotations

import argparse

from synthswap.cli.options import add_flags, fail, from_args
from synthswap.extract import ExtractError
from synthswap.faceset import FacesetError
from synthswap.gan.invert import InversionError
from synthswap.locking import LockError
from synthswap.media import MediaError
from synthswap.pretrained import PretrainedError
from synthswap.stages import StageError
from synthswap.swap.train import SwapTrainError
from synthswap.run import RunOptions, run
from synthswap.training import CheckpointError


# What a stage refuses with a message of its own; anything else is a bug and keeps its traceback.
PIPELINE_ERRORS = (ExtractError, MediaError, FacesetError, CheckpointError, InversionError, SwapTrainError, LockError,
                   StageError, PretrainedError, ValueError, OSError)

RUN_FLAGS_SKIP = {"subject", "video", "out", "progress"}


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The pipeline's options, generated from RunOptions; `demo` reuses them with its own small defaults."""
    add_flags(p, RunOptions, skip=RUN_FLAGS_SKIP)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def options_from_args(args: argparse.Namespace, subject: list[str], video: str, out: str) -> RunOptions:
    return from_args(RunOptions, args, subject=subject, video=video, out=out, progress=not args.quiet)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="the whole job: extract, GAN prior, invert, synthesise, train the swap, convert, evaluate",
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


def execute(opts) -> int:
    try:
        summary = run(opts)
    except PIPELINE_ERRORS as exc:
        return fail(str(exc), 1)
    for key in ("swap_rate", "identity_to_subject", "identity_to_destination", "expression_error", "pose_error_deg"):
        value = summary.get(key)
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    return 0
