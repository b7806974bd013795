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
    fail,
    nonnegative_float,
    nonnegative_int,
    overlapping,
    positive_float,
    positive_int,
)
from synthswap.faceset import FacesetError
from synthswap.media import MediaError, written_by_synthswap
from synthswap.pretrained import PretrainedError, resolve_model
from synthswap.swap.color import COLOR_MODES
from synthswap.swap.convert import BLEND_MODES, MASK_MODES, ConvertOptions, convert_images, convert_video
from synthswap.swap.data import Augment
from synthswap.swap.loading import read_model_json
from synthswap.swap.losses import PIXEL_LOSSES
from synthswap.swap.networks import ARCHITECTURES, PARTS, SwapConfig
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


def _parts(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def add_model_flags(p: argparse.ArgumentParser) -> None:
    """The swap model's shape; unset flags come from --init's model, else from SwapConfig."""
    cfg = SwapConfig()
    p.add_argument("--arch", choices=ARCHITECTURES,
                   help=f"df: one decoder per identity (stronger likeness); liae: shared decoder (better "
                        f"lighting/pose match). Default: {cfg.arch}")
    p.add_argument("--resolution", type=int,
                   help=f"face size in pixels, multiple of 16 in 64..256 (default {cfg.resolution}: the size of the "
                        f"shipped pretrained model); with --init of a smaller model, a whole multiple of its size "
                        f"(its weights are grown to this size as a warm start)")
    p.add_argument("--e-dims", type=int, help=f"encoder width (default {cfg.e_dims}; DeepFaceLab uses 64+ on GPU)")
    p.add_argument("--ae-dims", type=int, help=f"latent size (default {cfg.ae_dims}; 256+ on GPU)")
    p.add_argument("--d-dims", type=int, help=f"decoder width (default {cfg.d_dims}; 64 on GPU)")
    p.add_argument("--d-mask-dims", type=int, help=f"mask-head width (default {cfg.d_mask_dims}; 22 on GPU)")


def model_config(args: argparse.Namespace, base: SwapConfig | None = None) -> SwapConfig:
    """SwapConfig from the model flags; flags left unset keep `base`'s value (the --init model's)."""
    base = base or SwapConfig()
    given = {name: getattr(args, name) for name in ("arch", "resolution", "e_dims", "ae_dims", "d_dims", "d_mask_dims")
             if getattr(args, name) is not None}
    return replace(base, **given)


def register(subparsers) -> None:
    d = SwapTrainOptions(src=[], dst=[], out="")
    conv = ConvertOptions()
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
    t.add_argument("--src", action="append", default=[], metavar="FACESET_A",
                   help="faceset of the subject A (repeat to combine, e.g. real + synthetic)")
    t.add_argument("--src-weights", type=nonnegative_float, nargs="+", metavar="W",
                   help="sampling weight per --src faceset, in order (default: equal per faceset)")
    t.add_argument("--dst", action="append", default=[], metavar="FACESET_B",
                   help="faceset of the destination person B, whose video will be converted (repeatable)")
    t.add_argument("--dst-weights", type=nonnegative_float, nargs="+", metavar="W", help="sampling weight per --dst faceset")
    t.add_argument("--out", required=True, metavar="MODEL_DIR", help="model folder to create (or to resume)")
    t.add_argument("--resume", action="store_true",
                   help="continue the model in --out; its architecture, facesets, seed, batch size, "
                        "loss and augmentation are reused so the run continues exactly")
    t.add_argument("--init", metavar="PRETRAINED",
                   help="start from a pretrained model's weights: a folder written by `synthswap pretrain` (or "
                        "`swap train`), or 'shipped' for the one inside the package; the architecture and sizes "
                        "come from it. Fine-tuning from it needs several times fewer steps than training from "
                        "scratch (see docs/swap.md)")
    t.add_argument("--init-parts", type=_parts, metavar="PART,...",
                   help=f"which parts to copy with --init (default: all; df: {','.join(PARTS['df'])}; liae: "
                        f"{','.join(PARTS['liae'])}); the rest start from random weights")
    add_model_flags(t)
    t.add_argument("--batch-size", type=positive_int, default=d.batch_size,
                   help=f"faces of A and of B per step, per process (default {d.batch_size})")
    t.add_argument("--lr", type=positive_float, default=d.lr, help=f"AdamW learning rate (default {d.lr})")
    t.add_argument("--loss", choices=PIXEL_LOSSES, default=d.pixel_loss,
                   help=f"pixel loss added to DSSIM on the masked face (default {d.pixel_loss})")
    t.add_argument("--eyes-mouth-weight", type=nonnegative_float, default=d.eyes_mouth_weight,
                   help=f"extra weight of the eye and mouth regions (from landmarks; 0 turns it off; "
                        f"default {d.eyes_mouth_weight})")
    t.add_argument("--id-weight", type=nonnegative_float, default=SWAP_ID_WEIGHT,
                   help=f"identity supervision: weight of 1 - SFace cosine of the swapped faces (B->A) to the "
                        f"subject's real photos and of A->A to their own photo (0: off; default {SWAP_ID_WEIGHT}, "
                        f"measured in docs/study/identity_rerun.md)")
    t.add_argument("--id-every", type=positive_int, default=d.id_every,
                   help=f"apply the identity loss every N steps (its cost per face: README, \"Identity as a training signal\"; "
                        f"default {d.id_every})")
    t.add_argument("--pose-weight", type=nonnegative_float, default=d.pose_weight,
                   help=f"with --id-weight: weight of the B->A swaps' head-pose drift from the B face (eye-line angle, "
                        f"nose offset and height, from a small landmark regressor fitted on both facesets first), "
                        f"so identity is not bought with pose. 0: off (default {d.pose_weight})")
    t.add_argument("--multiscale-dssim", action="store_true",
                   help="DSSIM at two window sizes (DeepFaceLab SAEHD's choice at 128 px and up) instead of one")
    t.add_argument("--synthetic-resolution", type=nonnegative_int, default=d.synthetic_resolution, metavar="PX",
                   help="synthetic faces (rendered at PX and enlarged) supervise only detail up to PX; real photos "
                        "teach the rest (0: every face at full resolution; default 0)")
    t.add_argument("--no-warp", action="store_true", help="turn off the random warp of inputs (not recommended)")
    t.add_argument("--no-flip", action="store_true", help="turn off random horizontal flips")
    t.add_argument("--no-color-aug", action="store_true", help="turn off random colour shifts")
    t.add_argument("--steps", type=positive_int, help="stop at this total step count")
    t.add_argument("--minutes", type=positive_float, help="stop after this many minutes of this run")
    t.add_argument("--save-every", type=nonnegative_int, default=d.save_every,
                   help=f"checkpoint every N steps (0: only at the end; default {d.save_every})")
    t.add_argument("--preview-every", type=nonnegative_int, default=d.preview_every,
                   help=f"preview grid every N steps (0: only at the end; default {d.preview_every})")
    t.add_argument("--log-every", type=positive_int, default=d.log_every,
                   help=f"log.csv row every N steps (default {d.log_every})")
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
    c.add_argument("--color", choices=COLOR_MODES, default=conv.color,
                   help=f"colour transfer to B's skin: rct (Reinhard in LAB), hist (histogram matching) "
                        f"or none (default {conv.color})")
    c.add_argument("--blend", choices=BLEND_MODES, default=conv.blend,
                   help=f"alpha: feathered mask; seamless: OpenCV seamlessClone (Poisson) then the "
                        f"feathered mask (default {conv.blend})")
    c.add_argument("--mask", choices=MASK_MODES, default=conv.mask,
                   help=f"mask to paste with: the model's mask head, the landmark face oval, or their "
                        f"product (default {conv.mask})")
    c.add_argument("--erode", type=nonnegative_float, default=conv.erode,
                   help=f"shrink the mask by this many pixels of the model's face size (default {conv.erode})")
    c.add_argument("--blur", type=nonnegative_float, default=conv.blur,
                   help=f"feather the mask edge over this many face pixels (default {conv.blur})")
    c.add_argument("--smooth", type=nonnegative_float, default=conv.smooth_min_cutoff,
                   help=f"One-Euro landmark smoothing min cutoff in Hz; lower = steadier, 0 = off "
                        f"(default {conv.smooth_min_cutoff})")
    c.add_argument("--max-frames", type=positive_int, help="convert only the first N frames (for a quick look)")
    c.add_argument("--crf", type=int, default=conv.crf, choices=range(0, 52), metavar="0-51",
                   help=f"H.264 quality, lower is better (default {conv.crf})")
    c.add_argument("--no-watermark", action="store_true",
                   help="do not put the invisible watermark in the frames (an explicit opt-out: the output's "
                        "metadata and manifest still say it is synthetic, and record that the watermark is off)")
    c.add_argument("--enhancer", metavar="ENHANCER_DIR",
                   help="restore the swapped face's detail at the size it has in the frame with this face enhancer "
                        "(a `synthswap enhance train` folder, e.g. fine-tuned on the subject, or 'shipped'); "
                        "default: enlarge it by bicubic interpolation")
    c.add_argument("--max-place-size", type=positive_int, default=conv.max_place_size, metavar="PX",
                   help=f"the largest size the face is composed at before it goes into the frame (its size in the "
                        f"frame, up to this; default {conv.max_place_size})")
    c.add_argument("--gan", metavar="GAN_DIR",
                   help="the GAN prior whose synthetic faces trained the model: its sha256 goes into the metadata")
    c.add_argument("--key-dir", metavar="DIR",
                   help="folder of the C2PA signing key, made on first use (default: $SYNTHSWAP_KEY_DIR or "
                        "~/.config/synthswap/signing)")
    add_common(c, precision=True)
    c.set_defaults(func=run_convert)


def run_train(args) -> int:
    if not args.resume and (not args.src or not args.dst):
        return fail("give --src FACESET_A and --dst FACESET_B (or --resume an existing --out)")
    clash = overlapping(args.out, [*args.src, *args.dst, args.init])
    if clash is not None:
        return fail(f"--out {args.out} overlaps the input {clash}; write the model to another folder")
    try:
        init = resolve_model(args.init, "swap")
        base = SwapConfig.from_dict(read_model_json(init)["config"]) if init else None
    except (PretrainedError, CheckpointError) as exc:
        return fail(f"--init: {exc}")
    config = model_config(args, base)
    opts = SwapTrainOptions(init=init, init_parts=args.init_parts,
        src=args.src, dst=args.dst, out=args.out, config=config, src_weights=args.src_weights,
        dst_weights=args.dst_weights, batch_size=args.batch_size, lr=args.lr, pixel_loss=args.loss,
        eyes_mouth_weight=args.eyes_mouth_weight, id_weight=args.id_weight, id_every=args.id_every,
        pose_weight=args.pose_weight, multiscale_dssim=args.multiscale_dssim,
        synthetic_resolution=args.synthetic_resolution, steps=args.steps, minutes=args.minutes,
        save_every=args.save_every, preview_every=args.preview_every, log_every=args.log_every,
        seed=args.seed, device=args.device, precision=args.precision, resume=args.resume,
        augment=Augment(flip=not args.no_flip, warp=not args.no_warp, colour=not args.no_color_aug),
        progress=args.progress)
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
    opts = ConvertOptions(color=args.color, blend=args.blend, mask=args.mask, erode=args.erode, blur=args.blur,
                          smooth_min_cutoff=args.smooth, device=args.device, precision=args.precision,
                          progress=args.progress,
                          max_frames=args.max_frames, crf=args.crf, watermark=not args.no_watermark, gan=args.gan,
                          key_dir=args.key_dir, max_place_size=args.max_place_size)
    try:
        opts.enhancer = resolve_model(args.enhancer, "enhance")
    except PretrainedError as exc:
        return fail(f"--enhancer: {exc}")
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
