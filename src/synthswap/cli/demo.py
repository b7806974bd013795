"""`synthswap demo`: the whole job on inputs that ship with the installed packages."""

from __future__ import annotations

import argparse
from pathlib import Path

from synthswap.cli import summary
from synthswap.cli.options import fail
from synthswap.cli.run import add_run_arguments, execute, options_from_args
from synthswap.demo_inputs import animate_portrait, astronaut_bgr, grace_hopper_bgr
from synthswap.media import MediaError, write_png


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help=summary("demo"),
        description="`synthswap run` with small budgets, the shipped GAN prior and the shipped pretrained swap "
                    "model, on an example that needs nothing but the installed "
                    "packages: the subject is scikit-image's astronaut photo (Eileen Collins, one photo), the "
                    "destination a 2-second clip made by animating matplotlib's grace_hopper.jpg with "
                    "landmark-driven warping. Leaves OUT/out.mp4 and OUT/out_report.html.",
    )
    p.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    # Small budgets, so that the demo runs in minutes on 2 CPU cores: it inverts into the shipped GAN
    # prior and fine-tunes the shipped pretrained swap model (see README for what it measures).
    add_run_arguments(p, defaults=dict(size=128, directions_n=300, invert_steps=100, pti_steps=200,
                                       landmark_steps=100, synthetic=40, swap_minutes=3.0, swap_steps=None))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return fail(f"--out {out}: is a file; the demo needs a folder")
    inputs = out / "inputs"
    subject, video = inputs / "astronaut.png", inputs / "grace_hopper.mp4"
    try:
        inputs.mkdir(parents=True, exist_ok=True)
        if not subject.exists():
            write_png(subject, astronaut_bgr())
        if not video.exists():  # made once, so a rerun finds its stages up to date
            animate_portrait(grace_hopper_bgr(), video)
    except (OSError, MediaError) as exc:  # a read-only or full folder
        return fail(f"{out}: cannot write the demo's inputs ({exc})", 1)
    return execute(options_from_args(args, [str(subject)], str(video), str(out / "out.mp4")))
