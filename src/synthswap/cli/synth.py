"""`synthswap synthesize`, `synthswap coverage`, and the `gan invert` / `gan directions` subcommands.

`register(subparsers)` adds the top-level commands; `register_gan_subcommands(gan_subparsers)`
adds `invert` and `directions` under `synthswap gan` (called from cli/gan.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from synthswap.cli import quiet_native_logs
from synthswap.cli.options import (
    add_common,
    apply_threads,
    fail,
    finite_float,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
)
from synthswap.faces.identity import SAME_PERSON_COSINE
from synthswap.faceset import Faceset, FacesetError
from synthswap.gan.directions import (
    DIRECTIONS_FILE,
    DirectionsError,
    DirectionsOptions,
    directions_for_gan,
    format_report,
    load_directions,
)
from synthswap.gan.invert import InversionError, InvertOptions, invert
from synthswap.metrics.coverage import DEFAULT_EPS, coverage
from synthswap.synth.base import SynthError, SynthOptions
from synthswap.synth.engines import ENGINES
from synthswap.synth.pipeline import format_summary, synthesize
from synthswap.training import CheckpointError

INVERT_EPILOG = """\
example:
  synthswap extract photos/ --out subject --size 128
  synthswap gan invert --gan gan_d6 --faces subject --out subject_inv

outputs in INV_DIR: pivots.safetensors (one W+ per photo), generator.safetensors (the tuned
generator), inversion.json (per-photo reconstruction error and identity cosine for the mean w,
the projection and PTI), preview.png (rows: photo, mean w, projection, PTI).
"""

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


def register(sub: argparse._SubParsersAction) -> None:
    d = SynthOptions(out="")
    s = sub.add_parser(
        "synthesize", help="synthesise many images of the subject with varied expressions",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=SYNTH_EPILOG,
        description="Make N images of the subject by editing their GAN inversion along expression and pose "
                    "directions (--engine gan) or by warping their real photos (--engine warp). Every image is "
                    "re-detected, measured and kept only if its SFace identity cosine to the real photos reaches "
                    "--min-identity.")
    s.add_argument("--engine", default=d.engine, choices=tuple(ENGINES), help=f"default: {d.engine}")
    s.add_argument("--inversion", metavar="INV_DIR", help="folder written by `gan invert` (gan engine)")
    s.add_argument("--faces", metavar="FACESET",
                   help="the subject's real faceset (warp engine; gan: overrides the path the inversion recorded)")
    s.add_argument("--n", type=positive_int, default=d.n, help=f"number of images to keep (default {d.n})")
    s.add_argument("--out", required=True, metavar="SYNTH_FACESET", help="new faceset folder to write")
    s.add_argument("--match", metavar="DEST_FACESET",
                   help="aim at the expressions and poses of this (destination) faceset and report its coverage")
    s.add_argument("--coverage-of", metavar="DEST_FACESET",
                   help="report coverage of this faceset without aiming at it")
    s.add_argument("--directions", metavar="FILE", help="directions file (default: GAN_DIR/directions.safetensors)")
    s.add_argument("--min-identity", type=finite_float, default=SAME_PERSON_COSINE,
                   help=f"keep images whose SFace cosine to the real photos is at least this "
                        f"(default {SAME_PERSON_COSINE}, SFace's same-person threshold)")
    s.add_argument("--min-sharpness", type=nonnegative_float, default=d.min_sharpness,
                   help=f"realism gate: keep images at least this sharp relative to the median of the real photos "
                        f"(variance of the Laplacian in the face; 0: off; default {d.min_sharpness})")
    s.add_argument("--identity-steps", type=nonnegative_int, default=d.identity_steps,
                   help=f"gan engine: Adam steps on each edited latent towards the subject's identity, held near "
                        f"the edit (0: plain direction steps; default {d.identity_steps})")
    s.add_argument("--max-attempts", type=positive_int, help="give up after this many candidates (default 4 x N)")
    s.add_argument("--size", type=int, help="crop size of the output (default: the subject faceset's)")
    s.add_argument("--eps", type=positive_float, default=d.eps, help=f"coverage radius (default {d.eps})")
    s.add_argument("--strength", type=finite_float, default=d.strength,
                   help=f"scale of every edit: 1 aims exactly at the target, 0.5 half-way (default {d.strength})")
    add_common(s)
    s.set_defaults(func=run_synthesize)

    c = sub.add_parser(
        "coverage", help="how much of a destination's expressions a training faceset covers",
        description="Fraction of destination frames whose expression-and-pose vector (6 expression measures + "
                    "yaw + pitch, each faceset centred on its neutral face, in fixed units) has a training face "
                    "within eps.")
    c.add_argument("--dest", required=True, metavar="FACESET", help="destination faceset")
    c.add_argument("--train", required=True, action="append", metavar="FACESET",
                   help="training faceset (repeat to pool several, e.g. real + synthetic)")
    c.add_argument("--eps", type=positive_float, default=DEFAULT_EPS, help=f"coverage radius (default {DEFAULT_EPS})")
    c.add_argument("--json", action="store_true", help="print the full result as JSON")
    c.set_defaults(func=run_coverage)


def register_gan_subcommands(gsub: argparse._SubParsersAction) -> None:
    inv = InvertOptions(gan="", faces="", out="")
    dirs = DirectionsOptions(gan="")
    i = gsub.add_parser(
        "invert", help="invert the subject's photos into the GAN (W+ projection + pivotal tuning)",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=INVERT_EPILOG,
        description="Optimise one W+ latent per photo from the mean w (pixel loss on the face mask, "
                    "discriminator-feature perceptual loss, landmark loss), then fine-tune a copy of the "
                    "generator around these pivots (PTI) with a locality regulariser.")
    i.add_argument("--gan", required=True, metavar="GAN_DIR", help="folder written by `gan train`")
    i.add_argument("--faces", required=True, metavar="SUBJECT_FACESET", help="the subject's real faceset")
    i.add_argument("--out", required=True, metavar="INV_DIR", help="new output folder")
    i.add_argument("--max-photos", type=positive_int, default=inv.max_photos,
                   help=f"invert at most the first N faces (default {inv.max_photos})")
    i.add_argument("--steps", type=positive_int, default=inv.steps, help=f"projection steps (default {inv.steps})")
    i.add_argument("--lr", type=positive_float, default=inv.lr, help=f"projection learning rate (default {inv.lr})")
    i.add_argument("--pti-steps", type=nonnegative_int, default=inv.pti_steps,
                   help=f"pivotal tuning steps (default {inv.pti_steps}; 0 = none)")
    i.add_argument("--pti-lr", type=positive_float, default=inv.pti_lr, help=f"pivotal tuning learning rate (default {inv.pti_lr})")
    i.add_argument("--w-perceptual", type=nonnegative_float, default=inv.w_perceptual,
                   help=f"perceptual (D features) loss weight (default {inv.w_perceptual})")
    i.add_argument("--w-landmark", type=nonnegative_float, default=inv.w_landmark,
                   help=f"landmark loss weight (0: off; default {inv.w_landmark})")
    i.add_argument("--locality", type=nonnegative_float, default=inv.locality,
                   help=f"PTI locality regulariser weight (0: off; default {inv.locality})")
    i.add_argument("--landmark-steps", type=nonnegative_int, default=inv.landmark_steps,
                   help=f"training steps of the landmark regressor (default {inv.landmark_steps})")
    i.add_argument("--w-identity", type=nonnegative_float, default=inv.w_identity,
                   help=f"identity loss weight: 1 - SFace cosine of each render to its photo (0: off; "
                        f"default {inv.w_identity})")
    i.add_argument("--identity-every", type=positive_int, default=inv.identity_every,
                   help=f"apply the identity loss every N steps (~0.1 s per photo on a CPU core; "
                        f"default {inv.identity_every})")
    add_common(i)
    i.set_defaults(func=run_invert)

    dp = gsub.add_parser(
        "directions", help="fit expression and pose directions in W",
        description="Sample latents, render and measure them with the extraction code (expression vector, yaw, "
                    "pitch), fit a ridge regression per attribute in W, and save unit directions (plain and "
                    "conditioned on the other attributes) with their held-out R^2.")
    dp.add_argument("--gan", required=True, metavar="GAN_DIR", help="folder written by `gan train`")
    dp.add_argument("--n", type=positive_int, default=dirs.n, help=f"samples to render and measure (default {dirs.n})")
    dp.add_argument("--out", metavar="FILE",
                    help="output .safetensors file, new or an earlier directions file (default "
                         "GAN_DIR/directions.safetensors)")
    dp.add_argument("--truncation", type=finite_float, default=dirs.truncation, metavar="PSI",
                   help=f"truncation psi (default {dirs.truncation})")
    dp.add_argument("--around", metavar="INV_DIR",
                   help="fit local directions around this inversion's pivots, rendered by its tuned generator "
                        "(for a prior whose own samples are rarely measurable as faces)")
    dp.add_argument("--no-pose-regressor", action="store_true",
                   help="measure yaw/pitch of the renders with FaceMesh instead of a small CNN trained on the "
                        "GAN's real training faces (FaceMesh's pose is unreliable at 64 px; the CNN takes ~1 min)")
    dp.add_argument("--radius", type=positive_float, default=dirs.radius,
                   help=f"with --around: how far samples stray from the pivots, in units of a random w's "
                        f"offset from the mean w (default {dirs.radius})")
    add_common(dp)
    dp.set_defaults(func=run_directions)


def run_invert(args: argparse.Namespace) -> int:
    apply_threads(args)
    opts = InvertOptions(gan=args.gan, faces=args.faces, out=args.out, max_photos=args.max_photos, steps=args.steps,
                         lr=args.lr, pti_steps=args.pti_steps, pti_lr=args.pti_lr, w_perceptual=args.w_perceptual,
                         w_landmark=args.w_landmark, locality=args.locality, landmark_steps=args.landmark_steps,
                         w_identity=args.w_identity, identity_every=args.identity_every,
                         seed=args.seed, device=args.device, progress=not args.quiet)
    try:
        s = invert(opts)
    except (InversionError, FacesetError, CheckpointError, ValueError) as exc:
        return fail(str(exc))
    print(f"inverted {s['photos']} photo(s) into {args.out} in {s['seconds']:.0f} s")
    print(f"masked MSE: mean w {s['mse']['mean_w']:.4f} -> projection {s['mse']['projection']:.4f} -> "
          f"PTI {s['mse']['pti']:.4f}")
    print(f"identity cosine: mean w {s['identity']['mean_w']:.3f}, projection {s['identity']['projection']:.3f}, "
          f"PTI {s['identity']['pti']:.3f} (found as a face: {s['found']['mean_w']}, {s['found']['projection']}, "
          f"{s['found']['pti']} of {s['photos']}; real photo at GAN resolution: {s['identity_ceiling']:.3f})")
    print(f"dlib distance to the photos (the judge; same person below 0.6): mean w "
          f"{s['identity_dlib']['mean_w']:.3f}, projection {s['identity_dlib']['projection']:.3f}, "
          f"PTI {s['identity_dlib']['pti']:.3f}")
    print(f"locality drift (mean |change| on random samples): {s['locality_drift']:.4f}")
    return 0


def check_directions_out(out: Path) -> str | None:
    """Why `gan directions` must not write `out` (checked before minutes of rendering), or None."""
    if out.suffix != ".safetensors":
        return f"--out {out}: give a .safetensors file (the report goes beside it as .json)"
    if out.is_dir():
        return f"--out {out}: is a folder; give the .safetensors file to write"
    if out.exists():
        try:
            load_directions(out)  # an earlier `gan directions` output may be replaced; nothing else
        except (DirectionsError, CheckpointError):
            return f"--out {out}: exists and is not a directions file; move it away or choose another --out"
    folder = out.resolve().parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        return f"--out {out}: {folder} is not a writable folder"
    return None


def run_directions(args: argparse.Namespace) -> int:
    apply_threads(args)
    out = Path(args.out) if args.out else Path(args.gan) / DIRECTIONS_FILE
    problem = check_directions_out(out) if args.out or Path(args.gan).is_dir() else None
    if problem is not None:
        return fail(problem)
    try:
        d, path = directions_for_gan(DirectionsOptions(
            gan=args.gan, out=args.out, n=args.n, truncation=args.truncation, around=args.around, radius=args.radius,
            pose_regressor=not args.no_pose_regressor, seed=args.seed, device=args.device, progress=not args.quiet))
    except (DirectionsError, CheckpointError, InversionError, ValueError) as exc:
        return fail(str(exc))
    print(format_report(d))
    print(f"directions written to {path} (report: {path.with_suffix('.json')})")
    return 0


def run_synthesize(args: argparse.Namespace) -> int:
    apply_threads(args)
    opts = SynthOptions(out=args.out, n=args.n, engine=args.engine, inversion=args.inversion, faces=args.faces,
                        match=args.match, coverage_of=args.coverage_of, directions=args.directions,
                        min_identity=args.min_identity, min_sharpness=args.min_sharpness,
                        identity_steps=args.identity_steps, max_attempts=args.max_attempts, size=args.size, eps=args.eps,
                        strength=args.strength, seed=args.seed, device=args.device, progress=not args.quiet)
    try:
        summary = synthesize(opts)
    except (SynthError, FacesetError, ValueError) as exc:
        return fail(str(exc))
    print(format_summary(summary))
    return 0


def run_coverage(args: argparse.Namespace) -> int:
    try:
        result = coverage(Faceset.open(args.dest), [Faceset.open(p) for p in args.train], eps=args.eps)
    except (FacesetError, ValueError) as exc:
        return fail(str(exc))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(f"coverage {result.coverage:.1%} of {result.n_destination} destination frames by "
              f"{result.n_training} training faces (eps {result.eps}; median nearest distance "
              f"{result.median_distance:.2f})")
    return 0


def gan_main(argv: list[str] | None = None) -> int:
    """`python -m synthswap.cli.synth invert|directions ...`: the same subcommands as
    `synthswap gan invert|directions`, usable whether or not cli/gan.py registers them."""
    quiet_native_logs()
    parser = argparse.ArgumentParser(prog="python -m synthswap.cli.synth")
    register_gan_subcommands(parser.add_subparsers(dest="gan_command", metavar="SUBCOMMAND", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(gan_main())
