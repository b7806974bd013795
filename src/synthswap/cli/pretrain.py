"""`synthswap pretrain`: the swap model trained on a many-identity face corpus, to fine-tune from;
`synthswap export-weights`: the fp16 copies of a pretrained swap model and a GAN prior that ship."""

from __future__ import annotations

import argparse
import json
import os

from synthswap.cli import summary
from synthswap.cli.options import (
    add_common,
    add_flags,
    fail,
    from_args,
    option_fields,
    overlapping,
)
from synthswap.cli.swap import model_config, train_and_report
from synthswap.export_weights import export_gan, export_swap
from synthswap.pretrained import PretrainedError
from synthswap.swap.loading import read_model_json
from synthswap.swap.networks import SwapConfig
from synthswap.swap.train import SwapTrainOptions
from synthswap.training import CheckpointError

PRETRAIN_EPILOG = """\
example (the shipped model; see src/synthswap/weights/MODEL_CARD.md for the exact run):
  synthswap extract ../shared/data/faces/utkface --out utk --size 96
  synthswap pretrain --data utk --out pretrained_df64 --minutes 600 --threads 1
  synthswap pretrain --out pretrained_df64 --resume --minutes 600        # continue
  synthswap swap train --init pretrained_df64 --src subject --dst dest --out model --steps 500

Both sides of the autoencoder (A and B) are drawn from the corpus, as in DeepFaceLab's pretrain
mode, so the encoder, bottleneck and both decoders learn faces in general. Never pretrain on the
people you will swap: the point is a start that knows faces, not these faces. Outputs are those
of `swap train` (model.safetensors, model.json, log.csv, preview.png); Ctrl-C saves a checkpoint.
"""

PRETRAIN_OPTIONS = {"batch_size", "steps", "minutes", "save_every", "preview_every"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help=summary("pretrain"),
                       description="Train the swap autoencoder with both sides drawn from a many-identity face "
                                   "corpus, so that a new pair fine-tunes from it (`swap train --init`) instead "
                                   "of starting from random weights.",
                       epilog=PRETRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append", default=[], metavar="FACESET",
                   help="faceset(s) of the corpus (repeat to combine); not needed with --resume")
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help="model folder to create (or to resume)")
    p.add_argument("--resume", action="store_true", help="continue the model in --out from its checkpoint")
    add_flags(p, SwapConfig)  # the model's shape
    # of swap train's options, those a corpus run uses (both sides are the corpus; no identity loss)
    add_flags(p, SwapTrainOptions, skip={f.name for f in option_fields(SwapTrainOptions)} - PRETRAIN_OPTIONS)
    add_common(p, precision=True)
    p.set_defaults(func=run_pretrain)

    e = sub.add_parser("export-weights", help=summary("export-weights"),
                       description="Write inference copies (fp16 weights, no optimizer state, no paths of this "
                                   "machine; split into files of at most 16 MB) of a swap model and/or a GAN prior "
                                   "into OUT/swap_ARCHRES (e.g. swap_df64, swap_df128) and OUT/gan_utk64, and print "
                                   "their sha256, which synthswap/pretrained.py records and checks on load.")
    e.add_argument("--swap", metavar="MODEL_DIR", help="a pretrained swap model folder")
    e.add_argument("--gan", metavar="GAN_DIR", help="a GAN prior folder")
    e.add_argument("--out", required=True, metavar="DIR", help="where the folders go (the package: "
                                                                "src/synthswap/weights)")
    e.set_defaults(func=run_export)


def run_pretrain(args: argparse.Namespace) -> int:
    if not args.resume and not args.data:
        return fail("give the corpus with --data FACESET (or --resume an existing --out)")
    clash = overlapping(args.out, args.data)
    if clash is not None:
        return fail(f"--out {args.out} overlaps the input {clash}; write the model to another folder")
    opts = from_args(SwapTrainOptions, args, src=args.data, dst=args.data, config=model_config(args))
    return train_and_report(opts)


def run_export(args: argparse.Namespace) -> int:
    if not args.swap and not args.gan:
        return fail("give --swap MODEL_DIR and/or --gan GAN_DIR")
    written = {}
    try:
        if args.swap:
            config = read_model_json(args.swap)["config"]
            folder = f"swap_{config['arch']}{config['resolution']}"
            written[folder] = export_swap(args.swap, os.path.join(args.out, folder))
        if args.gan:
            written["gan_utk64"] = export_gan(args.gan, os.path.join(args.out, "gan_utk64"))
    except (CheckpointError, PretrainedError) as exc:
        return fail(str(exc))
    except OSError as exc:  # --out a file, read-only, a full disk
        return fail(f"--out {args.out}: cannot write the weights ({exc})", 1)
    print(json.dumps(written, indent=2))
    return 0
