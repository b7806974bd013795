"""`synthswap run`: photos (or a clip) of a subject + a destination video -> swapped video + report."""

from __future__ import annotations

import argparse
from pathlib import Path

from synthswap.cli.options import add_flags, fail, from_args
from synthswap.extract import CROP_SIZES, ExtractError
from synthswap.faceset import FacesetError
from synthswap.gan.invert import InversionError
from synthswap.gan.networks import RESOLUTIONS
from synthswap.locking import LockError
from synthswap.media import VIDEO_EXTENSIONS, MediaError, is_video, probe_video
from synthswap.pretrained import PretrainedError
from synthswap.stages import StageError
from synthswap.swap.networks import SwapConfig
from synthswap.swap.train import SwapTrainError
from synthswap.run import RunOptions, run
from synthswap.training import CheckpointError, resolve_device


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


def request_problem(opts, minimums: tuple[tuple[str, int, int], ...]) -> str | None:
    """What the flags' types do not say, checked before any stage runs (a stage would refuse it only
    after the stages before it had run): crop size, both resolutions, each (flag, value, least) of
    `minimums`, and a --device this machine lacks. Shared by `run` and `study`."""
    low, high = CROP_SIZES
    if not low <= opts.size <= high:
        return f"--size must be between {low} and {high}, not {opts.size}"
    if opts.gan_resolution not in RESOLUTIONS:
        return f"--gan-resolution must be one of {', '.join(map(str, RESOLUTIONS))}, not {opts.gan_resolution}"
    for flag, value, least in minimums:
        if value < least:
            return f"{flag} must be at least {least}, not {value}"
    try:
        SwapConfig(resolution=opts.swap_resolution).validate()
    except ValueError as exc:
        return f"--swap-resolution: {exc}"
    try:
        resolve_device(opts.device)  # --device cuda on a machine without: now, not at the first training
    except ValueError as exc:
        return str(exc)
    return None


def check_numbers(opts: RunOptions) -> str | None:
    return request_problem(opts, (("--directions-n", opts.directions_n, 1), ("--invert-steps", opts.invert_steps, 1),
                                ("--pti-steps", opts.pti_steps, 0), ("--landmark-steps", opts.landmark_steps, 0)))


def execute(opts) -> int:
    problem = check_numbers(opts)
    if problem is not None:
        return fail(problem)
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
