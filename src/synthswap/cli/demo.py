"""`synthswap demo`: the main job on inputs that ship with the installed packages."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run synthswap on built-in public-domain portraits (no data needed)",
        description="Extract faces from two public-domain portraits that ship inside scikit-image and "
                    "matplotlib (the astronaut Eileen Collins and Grace Hopper) and print what was measured.",
    )
    p.add_argument("--out", default="demo_out", help="work folder (default: demo_out)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from synthswap.demo_inputs import write_demo_photos
    from synthswap.extract import extract
    from synthswap.faceset import Faceset

    out = Path(args.out)
    photos = write_demo_photos(out / "inputs")
    summary = extract(photos, out / "faceset", size=256, progress=False)
    print(summary.text())
    faceset = Faceset.open(out / "faceset")
    for face in faceset:
        expr = ", ".join(f"{k} {v:.2f}" for k, v in face.expression.items())
        pose = ", ".join(f"{k} {v:+.0f}" for k, v in face.pose.items())
        print(f"{Path(face.source).name}: {expr}; pose {pose}; sharpness {face.sharpness:.0f}")
    return 0
