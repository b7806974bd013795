"""`synthswap study`: the minimum-data experiment grid and its report."""

from __future__ import annotations

import argparse
import sys


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'") from exc


def register(sub: argparse._SubParsersAction) -> None:
    from synthswap.study.grid import StudyOptions

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
    p.add_argument("--engines", default=",".join(d.engines), help="synthetic engines: gan,warp (default)")
    p.add_argument("--gan", help="use this trained personal prior instead of training one on the destination")
    p.add_argument("--generic-gan", help="also synthesise from this generic prior (e.g. trained on UTKFace)")
    for name, kind, help_text in [
        ("size", int, "crop size of extracted faces"),
        ("subject_every_n", int, "subject frames extracted (every n-th)"),
        ("dest_every_n", int, "destination frames extracted (every n-th)"),
        ("subject_train_fraction", float, "share of the subject video's time used for training photos"),
        ("dest_train_fraction", float, "share of the destination video's time used for training"),
        ("eval_max_frames", int, "frames of the destination's held-out end that are converted"),
        ("gan_resolution", int, "personal prior's resolution"),
        ("gan_minutes", float, "personal prior's training budget"),
        ("directions_n", int, "GAN samples measured to fit the directions"),
        ("invert_steps", int, "projection steps"),
        ("pti_steps", int, "pivotal-tuning steps"),
        ("synthetic", int, "synthetic images per condition"),
        ("swap_resolution", int, "swap model size"),
        ("swap_steps", int, "swap training steps, the same for every condition"),
        ("batch_size", int, "swap training batch"),
        ("seed", int, "seed shared by every condition"),
    ]:
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=getattr(d, name),
                       help=f"{help_text} (default: {getattr(d, name)})")
    p.add_argument("--device", default=d.device, help="auto, cpu or cuda")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from synthswap.extract import ExtractError
    from synthswap.faceset import FacesetError
    from synthswap.media import MediaError
    from synthswap.study.grid import Study, StudyOptions
    from synthswap.training import CheckpointError

    opts = StudyOptions(
        subject_video=args.subject, dest_video=args.dest, out=args.out, ks=args.k,
        engines=[e for e in args.engines.split(",") if e], generic_gan=args.generic_gan, gan=args.gan,
        size=args.size, subject_every_n=args.subject_every_n, dest_every_n=args.dest_every_n,
        subject_train_fraction=args.subject_train_fraction, dest_train_fraction=args.dest_train_fraction,
        eval_max_frames=args.eval_max_frames, gan_resolution=args.gan_resolution, gan_minutes=args.gan_minutes,
        directions_n=args.directions_n, invert_steps=args.invert_steps, pti_steps=args.pti_steps,
        synthetic=args.synthetic, swap_resolution=args.swap_resolution, swap_steps=args.swap_steps,
        batch_size=args.batch_size, seed=args.seed, device=args.device, progress=not args.quiet)
    try:
        Study(opts).run()
    except (ExtractError, MediaError, FacesetError, CheckpointError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}/report.md and {args.out}/report.html")
    return 0
