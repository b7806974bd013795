"""`synthswap swap train|convert`: the face-swap autoencoder (DeepFaceLab-style df / liae)."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path

from synthswap.cli import summary
from synthswap.cli.options import (
    add_common,
    add_flags,
    fail,
    from_args,
    option_fields,
    overlapping,
)
from synthswap.faceset import FacesetError
from synthswap.media import MediaError, written_by_synthswap
from synthswap.pretrained import PretrainedError, resolve_model
from synthswap.provenance import manifest
from synthswap.swap.convert import ConvertOptions, convert_images, convert_video
from synthswap.swap.data import Augment
from synthswap.swap.loading import read_model_json
from synthswap.swap.networks import SwapConfig
from synthswap.swap.train import SWAP_ID_WEIGHT, SwapTrainError, SwapTrainOptions, train
from synthswap.training import CheckpointError

TRAIN_EPILOG = """\
examples:
  # subject S (A) from a faceset of real photos, destination D (B) from its video's faceset
  synthswap swap train --src facesets/S --dst facesets/D --out models/S_to_D --minutes 60

  # real + synthetic faces of S, the synthetic ones sampled half as often
  synthswap swap train --src facesets/S --src facesets/S_synth --src-weights 1 0.5 \\
      --dst facesets/D --out models/S_to_D --steps 20000

  # continue where it stopped (same optimizer state, step and data order)
  synthswap swap train --out models/S_to_D --resume --steps 40000

  # several processes (DDP: NCCL on GPUs, gloo on CPU); --batch-size is per process
  torchrun --nproc_per_node 2 -m synthswap swap train --src ... --dst ... --out ... --steps 1000

outputs in --out: model.safetensors (weights + optimizer, safetensors), model.json
(config, data, steps, versions), log.csv (losses and images/s per logged step),
preview.png and previews/step_N.png (rows of A, A->A, B, B->B, B->A).
Ctrl-C (SIGINT) or SIGTERM saves a checkpoint before exiting.
"""

CONVERT_EPILOG = """\
examples:
  synthswap swap convert --model models/S_to_D --video D.mp4 --out D_as_S.mp4
  synthswap swap convert --model models/S_to_D --video D.mp4 --out out.mp4 \\
      --color hist --blend seamless --erode 4 --blur 8
  synthswap swap convert --model models/S_to_D --images frames/ --out swapped_frames/

The output video is H.264 at the source's resolution and frame rate, one output frame per
source frame, with the source's audio copied packet for packet. Frames where no face is
found are written unswapped and counted in the summary.

Every output says it is synthetic: container tags (PNG text for --images), an invisible
watermark in every frame (--no-watermark turns it off, and the tags say so) and, for MP4
and MOV, a signed C2PA manifest. Check a file with `synthswap verify FILE`.
"""


def model_config(args: argparse.Namespace, base: SwapConfig | None = None) -> SwapConfig:
    """SwapConfig from the model flags (SwapConfig's fields); flags left unset keep `base`'s value
    (the --init model's)."""
    given = {f.name: getattr(args, f.name) for f in option_fields(SwapConfig) if getattr(args, f.name) is not None}
    return replace(base or SwapConfig(), **given)


def register(subparsers) -> None:
    swap = subparsers.add_parser(
        "swap", help=summary("swap"),
        description="DeepFaceLab-style face swap: a shared encoder and per-identity decoders (df) or "
                    "shared decoder with split bottlenecks (liae), trained on faces of A (the subject) and "
                    "B (the destination), then used to put A's face on every frame of B's video.")
    sub = swap.add_subparsers(dest="swap_command", metavar="ACTION", required=True)

    t = sub.add_parser("train", help="train (or resume) a swap model on two facesets",
                       description="Train the swap autoencoder on faceset(s) of A (--src) and B (--dst). "
                                   "A budget is required: --steps (total steps, counting earlier runs) "
                                   "and/or --minutes (this run's wall-clock time).",
                       epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    # "extend": `--src real synthetic` and `--src real --src synthetic` mean the same.
    t.add_argument("--src", action="extend", nargs="+", default=[], metavar="FACESET_A",
                   help="faceset(s) of the subject A, combined (e.g. real + synthetic: --src real synthetic)")
    t.add_argument("--dst", action="extend", nargs="+", default=[], metavar="FACESET_B",
                   help="faceset(s) of the destination person B, whose video will be converted")
    t.add_argument("--out", required=True, metavar="MODEL_DIR", help="model folder to create (or to resume)")
    t.add_argument("--resume", action="store_true",
                   help="continue the model in --out; its architecture, facesets, seed, batch size, "
                        "loss and augmentation are reused so the run continues exactly")
    t.add_argument("--init", metavar="PRETRAINED",
                   help="start from a pretrained model's weights: a folder written by `synthswap pretrain` (or "
                        "`swap train`), or 'shipped' for the one inside the package; the architecture and sizes "
                        "come from it. Fine-tuning from it needs several times fewer steps than training from "
                        "scratch (see docs/swap.md)")
    add_flags(t, SwapConfig, unset="as --init's model")  # the model's shape
    # swap train's identity loss is on by default; the dataclass's is off (pretrain, library callers)
    add_flags(t, SwapTrainOptions, defaults={"id_weight": SWAP_ID_WEIGHT})
    add_flags(t, Augment)
    add_common(t, precision=True)
    t.set_defaults(func=run_train)

    c = sub.add_parser("convert", help="swap A's face into a video (or folder of frames) of B",
                       description="Detect and align B's face in every frame (landmarks smoothed over time), "
                                   "decode it as A, match colours, and blend it back.",
                       epilog=CONVERT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--model", required=True, metavar="MODEL_DIR", help="a folder written by `swap train`")
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", metavar="DEST", help="the destination video (B)")
    src.add_argument("--images", metavar="FOLDER", help="a folder of frames instead of a video; --out is a folder")
    c.add_argument("--out", required=True,
                   help="output .mp4, .mov or .mkv (for --video) or folder (for --images); an existing one is "
                        "replaced only if synthswap wrote it")
    add_flags(c, ConvertOptions)
    add_common(c, precision=True)
    c.set_defaults(func=run_convert)


def run_train(args) -> int:
    if not args.resume and (not args.src or not args.dst):
        return fail("give --src FACESET_A and --dst FACESET_B (or --resume an existing --out)")
    clash = overlapping(args.out, [*args.src, *args.dst, args.init])
    if clash is not None:
        return fail(f"--out {args.out} overlaps the input {clash}; write the model to another folder")
    try:
        init = resolve_model(args.init, "swap", args.resolution)
        base = SwapConfig.from_dict(read_model_json(init)["config"]) if init else None
    except (PretrainedError, CheckpointError) as exc:
        return fail(f"--init: {exc}")
    config = model_config(args, base)
    opts = from_args(SwapTrainOptions, args, init=init, config=config, augment=from_args(Augment, args))
    return train_and_report(opts)


def train_and_report(opts: SwapTrainOptions) -> int:
    """Run the swap trainer (for `swap train` and `pretrain`): the summary as JSON, one error line on a
    refused request, 130 when a signal stopped it (its checkpoint is saved)."""
    try:
        summary = train(opts)
    except (SwapTrainError, FacesetError, CheckpointError, ValueError) as exc:
        return fail(str(exc))
    except OSError as exc:  # a read-only or full output folder
        return fail(f"{opts.out}: cannot write the model folder ({exc})", 1)
    if summary["world_size"] == 1 or int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, indent=2))
    if summary["stopped_by_signal"]:
        return fail(f"interrupted at step {summary['step']}; checkpoint saved in {opts.out}: "
                    f"add --resume to continue", 130)
    return 0


def run_convert(args) -> int:
    opts = from_args(ConvertOptions, args)
    try:
        opts.enhancer = resolve_model(args.enhancer, "enhance")
    except PretrainedError as exc:
        return fail(f"--enhancer: {exc}")
    if (args.sign_cert is None) != (args.sign_key is None):
        return fail("--sign-cert and --sign-key go together")
    if args.sign_cert:
        try:  # refused before any work, not after the conversion as a missing manifest
            manifest.user_signing_key(args.sign_cert, args.sign_key)
        except manifest.ManifestError as exc:
            return fail(str(exc))
    out = Path(args.out)
    if args.video and out.is_file() and out.resolve() != Path(args.video).resolve() and not written_by_synthswap(out):
        return fail(f"--out {out}: exists and was not written by synthswap; move it away or choose another --out")
    try:
        if args.video:
            summary = convert_video(args.model, args.video, args.out, opts)
        else:
            summary = convert_images(args.model, args.images, args.out, opts)
    except (CheckpointError, MediaError, ValueError) as exc:
        return fail(str(exc))
    except OSError as exc:  # a read-only or full output folder
        return fail(f"--out {out}: cannot write ({exc.strerror or exc})", 1)
    print(json.dumps(summary, indent=2))
    return 0
