"""`synthswap run`: photos (or a clip) of a subject + a destination video -> swapped video + report."""

from __future__ import annotations

import argparse
import sys


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The pipeline's options; `demo` reuses them with its own small defaults."""
    from synthswap.run import RunOptions

    d = RunOptions(subject=[], video="", out="")
    p.add_argument("--work", help="work directory holding every stage's output (default: OUT_work/ beside OUT)")
    p.add_argument("--size", type=int, default=d.size, help=f"crop size of extracted faces (default: {d.size})")
    p.add_argument("--every-n", type=int, default=d.every_n, metavar="N",
                   help="use every N-th destination frame for training (all frames are converted)")
    p.add_argument("--subject-every-n", type=int, default=d.subject_every_n, metavar="N",
                   help="when the subject is a video: keep every N-th frame")
    p.add_argument("--subject-max-frames", type=int, default=d.subject_max_frames, metavar="N",
                   help="when the subject is a video: keep at most N frames")
    p.add_argument("--engine", choices=["gan", "warp"], default=d.engine,
                   help="how to synthesise extra subject images: the GAN (default) or the warp control")
    p.add_argument("--synthetic", type=int, default=d.synthetic, metavar="N",
                   help=f"synthetic images to make (default: {d.synthetic}; 0: real photos only)")
    p.add_argument("--gan", metavar="GAN_DIR", default=d.gan,
                   help="use this trained prior (`gan train` output: e.g. trained on a GPU, or a generic prior) "
                        "instead of training a personal one here")
    p.add_argument("--gan-resolution", type=int, default=d.gan_resolution, help="GAN resolution (default: 64)")
    p.add_argument("--gan-minutes", type=float, default=d.gan_minutes, help="GAN training budget (default: 60)")
    p.add_argument("--directions-n", type=int, default=d.directions_n, metavar="N",
                   help="GAN samples measured to fit expression directions (default: 3000)")
    p.add_argument("--invert-steps", type=int, default=d.invert_steps, help="projection steps per photo")
    p.add_argument("--pti-steps", type=int, default=d.pti_steps, help="pivotal-tuning steps")
    p.add_argument("--landmark-steps", type=int, default=d.landmark_steps,
                   help="training steps of the inversion's landmark regressor (0: no landmark loss)")
    p.add_argument("--swap-resolution", type=int, default=d.swap_resolution, help="swap model size (default: 96)")
    p.add_argument("--swap-minutes", type=float, default=d.swap_minutes, help="swap training budget (default: 60)")
    p.add_argument("--swap-steps", type=int, default=d.swap_steps, help="swap training steps (ends at whichever "
                                                                        "of steps and minutes comes first)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="swap training batch (default: 8)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, help="auto, cpu or cuda (default: auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def options_from_args(args: argparse.Namespace, subject: list[str], video: str, out: str):
    from synthswap.run import RunOptions

    return RunOptions(subject=subject, video=video, out=out, work=args.work, size=args.size, every_n=args.every_n,
                      subject_every_n=args.subject_every_n, subject_max_frames=args.subject_max_frames,
                      gan=args.gan, gan_resolution=args.gan_resolution, gan_minutes=args.gan_minutes,
                      directions_n=args.directions_n, invert_steps=args.invert_steps, pti_steps=args.pti_steps,
                      landmark_steps=args.landmark_steps,
                      synthetic=args.synthetic, engine=args.engine, swap_resolution=args.swap_resolution,
                      swap_minutes=args.swap_minutes, swap_steps=args.swap_steps, batch_size=args.batch_size,
                      seed=args.seed, device=args.device, progress=not args.quiet)


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
    from synthswap.extract import ExtractError
    from synthswap.faceset import FacesetError
    from synthswap.media import MediaError
    from synthswap.run import run
    from synthswap.training import CheckpointError

    try:
        summary = run(opts)
    except (ExtractError, MediaError, FacesetError, CheckpointError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for key in ("swap_rate", "identity_to_subject", "identity_to_destination", "expression_error", "pose_error_deg"):
        value = summary.get(key)
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    return 0
