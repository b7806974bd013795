"""`synthswap synthesize` and `synthswap coverage`: many images of the subject, and how much of a
destination's expressions a training set covers. (The GAN's own steps, `gan invert` and `gan
directions`, are in cli/gan.py.)"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass

from synthswap.cli import summary
from synthswap.cli.options import (
    add_common,
    add_flags,
    fail,
    from_args,
)
from synthswap.faceset import Faceset, FacesetError
from synthswap.metrics.coverage import DEFAULT_EPS, coverage
from synthswap.options import option
from synthswap.synth.base import SynthError, SynthOptions
from synthswap.synth.pipeline import format_summary, synthesize

SYNTH_EPILOG = """\
examples:
  # GAN engine, expressions of the GAN's training data
  synthswap synthesize --inversion subject_inv --n 500 --out subject_synth
  # aim at the destination video's expressions and poses, report coverage
  synthswap synthesize --inversion subject_inv --n 500 --out subject_synth --match faces_dest
  # the classical control: warp the real photos
  synthswap synthesize --engine warp --faces subject --n 500 --out subject_warp --match faces_dest

The output is an ordinary faceset (rows marked synthetic, edit metadata in each row's meta;
latents.safetensors holds the W+ of each GAN face) plus synthesis.json (acceptance rate,
identity cosines, expression spread, coverage). Train on it next to the real photos:
  synthswap swap train --src subject --src subject_synth ...
"""


@dataclass(kw_only=True)
class CoverageOptions:
    """`coverage`'s settings (--dest and --train are paths)."""

    eps: float = option(DEFAULT_EPS, "coverage radius", above=0)


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "synthesize", help=summary("synthesize"),
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=SYNTH_EPILOG,
        description="Make N images of the subject by editing their GAN inversion along expression and pose "
                    "directions (--engine gan) or by warping their real photos (--engine warp). Every image is "
                    "re-detected, measured and kept only if its SFace identity cosine to the real photos reaches "
                    "--min-identity.")
    s.add_argument("--out", required=True, metavar="SYNTH_FACESET", help="new faceset folder to write")
    add_flags(s, SynthOptions)
    add_common(s, precision=True)
    s.set_defaults(func=run_synthesize)

    c = sub.add_parser(
        "coverage", help=summary("coverage"),
        description="Fraction of destination frames whose expression-and-pose vector (6 expression measures + "
                    "yaw + pitch, each faceset centred on its neutral face, in fixed units) has a training face "
                    "within eps.")
    c.add_argument("--dest", required=True, metavar="FACESET", help="destination faceset")
    c.add_argument("--train", required=True, action="append", metavar="FACESET",
                   help="training faceset (repeat to pool several, e.g. real + synthetic)")
    add_flags(c, CoverageOptions)
    c.add_argument("--json", action="store_true", help="print the full result as JSON")
    c.set_defaults(func=run_coverage)


def run_synthesize(args: argparse.Namespace) -> int:
    opts = from_args(SynthOptions, args)
    try:
        summary = synthesize(opts)
    except (SynthError, FacesetError, ValueError) as exc:
        return fail(str(exc))
    print(format_summary(summary))
    return 0


def run_coverage(args: argparse.Namespace) -> int:
    try:
        result = coverage(Faceset.open(args.dest, progress=True), [Faceset.open(p, progress=True) for p in args.train],
                          **asdict(from_args(CoverageOptions, args)))
    except (FacesetError, ValueError) as exc:
        return fail(str(exc))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(f"coverage {result.coverage:.1%} of {result.n_destination} destination frames by "
              f"{result.n_training} training faces (eps {result.eps}; median nearest distance "
              f"{result.median_distance:.2f})")
    return 0
