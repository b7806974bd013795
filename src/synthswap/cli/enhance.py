"""`synthswap enhance train | apply | export`: the face enhancer that restores a swapped face's detail."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from synthswap.cli import summary
from synthswap.cli.options import add_common, add_flags, apply_threads, fail, from_args, overlapping
from synthswap.enhance import (
    EnhanceConfig,
    EnhanceError,
    EnhanceTrainOptions,
    enhance_faces,
    export_enhancer,
    finetune_enhancer,
    load_enhancer,
    train_enhancer,
)
from synthswap.enhance.model import MAX_SIZE, SHIPPED_NAME
from synthswap.enhance.train import PhotoPool
from synthswap.faceset import FacesetError
from synthswap.media import MediaError, write_png
from synthswap.options import option
from synthswap.pretrained import PretrainedError
from synthswap.training import CheckpointError

TRAIN_EPILOG = """\
examples (the shipped model: src/synthswap/weights/enhance_utk/MODEL_CARD.md has the exact run):
  synthswap enhance train --data utk_links/train --out enhance_utk --minutes 60 --threads 1
  synthswap enhance train --out enhance_utk --resume --minutes 30        # continue
  synthswap enhance train --init shipped --data work/subject --out enhance_d9 --minutes 1.5

--data takes facesets (their aligned crops) or folders of face photos. Each step degrades random
photos as a swap's face is degraded (down to 48-100 px, blur, autoencoder-like smoothing, noise,
JPEG; docs/enhance.md) and learns to restore them. Ctrl-C saves a checkpoint.
"""

APPLY_EPILOG = """\
example:
  synthswap enhance apply swapped_faces --out big --size 256 --subject work/subject

INPUT is a faceset or a folder of face crops (square, aligned as `synthswap extract` writes them);
each is written to OUT as a PNG of --size px, under its own name.
"""


@dataclass
class ApplyOptions:
    size: int = option(256, "output face size in px", minimum=16, maximum=MAX_SIZE)
    model: str = option(SHIPPED_NAME, "enhancer folder, or 'shipped' (the generic model in the package)")
    subject: str | None = option(None, "fine-tune on this faceset (the subject's own photos) first")
    finetune_minutes: float = option(1.5, "minutes of that fine-tuning", minimum=0)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("enhance", help=summary("enhance"),
                       description="A face restoration network trained on degraded face photos: generic on a "
                                   "face corpus, then fine-tuned on the subject's own photos.")
    cmds = p.add_subparsers(dest="enhance_command", metavar="ACTION", required=True)

    t = cmds.add_parser("train", help="train (or fine-tune, or resume) an enhancer", epilog=TRAIN_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--data", action="append", default=[], metavar="FACESET_OR_FOLDER",
                   help="sharp face images to learn from (repeat to combine); not needed with --resume")
    t.add_argument("--out", required=True, metavar="MODEL_DIR", help="enhancer folder to create (or to resume)")
    t.add_argument("--init", metavar="MODEL", help="start from this enhancer folder, or 'shipped'")
    t.add_argument("--resume", action="store_true", help="continue the enhancer in --out from its checkpoint")
    add_flags(t, EnhanceConfig)  # the network's shape
    add_flags(t, EnhanceTrainOptions)
    add_common(t, precision=True)
    t.set_defaults(func=run_train)

    a = cmds.add_parser("apply", help="enhance face crops to a given size", epilog=APPLY_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("input", metavar="INPUT", help="faceset or folder of face crops")
    a.add_argument("--out", required=True, metavar="DIR", help="new folder for the enhanced PNGs")
    add_flags(a, ApplyOptions)
    add_common(a, precision=True)
    a.set_defaults(func=run_apply)

    e = cmds.add_parser("export", help="write the fp16 copy that ships (each file at most 16 MB)")
    e.add_argument("--model", required=True, metavar="MODEL_DIR", help="a trained enhancer folder")
    e.add_argument("--out", required=True, metavar="DIR", help="e.g. src/synthswap/weights/enhance_utk")
    e.set_defaults(func=run_export)


def run_train(args: argparse.Namespace) -> int:
    apply_threads(args)
    if args.resume and args.init:
        return fail("--resume continues --out; --init starts a new one: give one of them")
    clash = overlapping(args.out, args.data)
    if clash is not None:
        return fail(f"--out {args.out} overlaps the input {clash}; write the enhancer to another folder")
    opts = from_args(EnhanceTrainOptions, args, data=args.data, out=args.out, init=args.init, resume=args.resume,
                     config=from_args(EnhanceConfig, args), seed=args.seed, device=args.device,
                     precision=args.precision, progress=args.progress)
    try:
        summary = train_enhancer(opts)
    except (EnhanceError, CheckpointError, FacesetError, PretrainedError, MediaError) as exc:
        return fail(str(exc))
    print(json.dumps(summary, indent=2))
    return 0


def run_apply(args: argparse.Namespace) -> int:
    apply_threads(args)
    opts = from_args(ApplyOptions, args)
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        return fail(f"--out {out} exists and is not an empty folder; choose a new one (nothing is overwritten)")
    clash = overlapping(out, [args.input, opts.subject])
    if clash is not None:
        return fail(f"--out {out} overlaps the input {clash}")
    try:
        pool = PhotoPool([args.input])
        names = pool.names()
        net = load_enhancer(opts.model)
        if opts.subject and opts.finetune_minutes > 0:
            net = finetune_enhancer(net, opts.subject, opts.finetune_minutes, seed=args.seed,
                                    precision=args.precision)
        faces = [pool.read(i) for i in range(len(pool))]
        big = enhance_faces(net, faces, opts.size, precision=args.precision)
    except (EnhanceError, CheckpointError, FacesetError, PretrainedError, MediaError) as exc:
        return fail(str(exc))
    out.mkdir(parents=True, exist_ok=True)
    for name, img in zip(names, big):
        write_png(out / f"{name}.png", img)
    print(json.dumps({"out": str(out), "faces": len(big), "size": opts.size}, indent=2))
    return 0


def run_export(args: argparse.Namespace) -> int:
    try:
        digests = export_enhancer(args.model, args.out)
    except (EnhanceError, CheckpointError) as exc:
        return fail(str(exc))
    except OSError as exc:
        return fail(f"--out {args.out}: cannot write the weights ({exc})", 1)
    print(json.dumps(digests, indent=2))
    return 0
