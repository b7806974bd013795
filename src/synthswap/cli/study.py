"""`synthswap study`: the minimum-data experiment grid and its report."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from synthswap.cli.options import add_flags, fail, from_args
from synthswap.cli.run import PIPELINE_ERRORS, request_problem
from synthswap.media import MediaError, probe_video
from synthswap.study.grid import Study, StudyOptions
from synthswap.synth.engines import ENGINES


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'") from exc


def register(sub: argparse._SubParsersAction) -> None:
    d = StudyOptions(subject_video="", dest_video="", out="")
    p = sub.add_parser(
        "study",
        help="how few real images are enough? train swaps on real-k, +GAN and +warp data and compare",
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
    p.add_argument("--k", type=_ints, default=d.ks, help="numbers of real photos, e.g. 1,5,20 (default)")
    p.add_argument("--engines", default=",".join(d.engines), help=f"synthetic engines, comma separated, of {', '.join(ENGINES)} (default: {','.join(d.engines)})")
    p.add_argument("--gan", help="use this trained personal prior instead of training one on the destination")
    p.add_argument("--generic-gan", metavar="GAN_DIR",
                   help="also synthesise from this generic prior (e.g. trained on UTKFace); 'shipped' is the one "
                        "inside the package")
    add_flags(p, StudyOptions)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def check_numbers(opts: StudyOptions) -> str | None:
    if not (math.isfinite(opts.gan_minutes) and opts.gan_minutes > 0):
        return f"--gan-minutes must be more than 0, not {opts.gan_minutes}"
    return request_problem(opts, (
        ("--subject-every-n", opts.subject_every_n, 1), ("--dest-every-n", opts.dest_every_n, 1),
        ("--eval-max-frames", opts.eval_max_frames, 1), ("--directions-n", opts.directions_n, 1),
        ("--invert-steps", opts.invert_steps, 1), ("--pti-steps", opts.pti_steps, 0),
        ("--landmark-steps", opts.landmark_steps, 0), ("--synthetic", opts.synthetic, 0),
        ("--swap-steps", opts.swap_steps, 1), ("--batch-size", opts.batch_size, 1)))


def run(args: argparse.Namespace) -> int:
    opts = from_args(StudyOptions, args, subject_video=args.subject, dest_video=args.dest, out=args.out, ks=args.k,
                     engines=[e for e in args.engines.split(",") if e], generic_gan=args.generic_gan, gan=args.gan,
                     progress=not args.quiet)
    problem = check_numbers(opts)
    if problem is not None:
        return fail(problem)
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
