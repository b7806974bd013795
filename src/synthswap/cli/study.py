"""`synthswap study`: the minimum-data experiment grid and its report."""

from __future__ import annotations

import argparse
from pathlib import Path

from synthswap.cli import summary
from synthswap.cli.options import add_flags, fail, from_args
from synthswap.media import MediaError, probe_video
from synthswap.options import OptionError
from synthswap.run import PIPELINE_ERRORS
from synthswap.study.grid import Study, StudyOptions


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "study",
        help=summary("study"),
        description=(
            "From a subject video and a destination video, build training sets from the same data (all real "
            "frames; k real photos; k photos + GAN-synthetic; k photos + warp-synthetic; k photos + synthetic from "
            "a generic prior if --generic-gan is given), train every swap model with the same step budget and "
            "seed, convert the held-out end of the destination video, evaluate, and write report.md and "
            "report.html with the gap-recovery ratio R. Splits are by time. Every stage is cached: rerun the "
            "same command to resume; finished conditions are not retrained."
        ),
        epilog="example: synthswap study --subject d6.mp4 --dest d9.mp4 --out study --k 5,20 --swap-steps 1500",
    )
    p.add_argument("--subject", required=True, metavar="VIDEO", help="video of the subject (many frames)")
    p.add_argument("--dest", required=True, metavar="VIDEO", help="destination video")
    p.add_argument("--out", required=True, metavar="DIR", help="study folder")
    add_flags(p, StudyOptions)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    opts = from_args(StudyOptions, args, subject_video=args.subject, dest_video=args.dest, out=args.out)
    try:
        opts.validate()  # the same check Study() makes, before any video is read
    except OptionError as exc:
        return fail(str(exc))
    if Path(args.out).exists() and not Path(args.out).is_dir():
        return fail(f"--out {args.out}: is a file; the study needs a folder", 1)
    for video in (args.subject, args.dest):  # an unreadable one fails now, not after the other's extraction
        try:
            probe_video(video)
        except MediaError as exc:
            return fail(str(exc), 1)
    try:
        Study(opts).run()
    except PIPELINE_ERRORS as exc:
        return fail(str(exc), 1)
    print(f"wrote {args.out}/report.md and {args.out}/report.html")
    return 0
