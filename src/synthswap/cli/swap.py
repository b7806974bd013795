"""`synthswap swap train|convert`: the face-swap autoencoder (DeepFaceLab-style df / liae)."""

from __future__ import annotations

import argparse
import json
import sys

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
found are written unchanged and counted in the summary.
"""


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--seed", type=int, default=0, help="random seed (weights init, data order; default: 0)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's choice); 1-2 on a shared machine")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def register(subparsers) -> None:
    swap = subparsers.add_parser(
        "swap", help="train the face-swap model and convert videos with it",
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
    t.add_argument("--src-weights", type=float, nargs="+", metavar="W",
                   help="sampling weight per --src faceset, in order (default: equal per faceset)")
    t.add_argument("--dst", action="append", default=[], metavar="FACESET_B",
                   help="faceset of the destination person B, whose video will be converted (repeatable)")
    t.add_argument("--dst-weights", type=float, nargs="+", metavar="W", help="sampling weight per --dst faceset")
    t.add_argument("--out", required=True, metavar="MODEL_DIR", help="model folder to create (or to resume)")
    t.add_argument("--resume", action="store_true",
                   help="continue the model in --out; its architecture, facesets, seed, batch size, "
                        "loss and augmentation are reused so the run continues exactly")
    t.add_argument("--arch", choices=["df", "liae"], default="df",
                   help="df: one decoder per identity (stronger likeness); liae: shared decoder (better "
                        "lighting/pose match). Default: df")
    t.add_argument("--resolution", type=int, default=96,
                   help="face size in pixels, multiple of 16 in 64..256 (default 96: a CPU-sized model)")
    t.add_argument("--e-dims", type=int, default=32, help="encoder width (default 32; DeepFaceLab uses 64+ on GPU)")
    t.add_argument("--ae-dims", type=int, default=128, help="latent size (default 128; 256+ on GPU)")
    t.add_argument("--d-dims", type=int, default=16, help="decoder width (default 16; 64 on GPU)")
    t.add_argument("--d-mask-dims", type=int, default=8, help="mask-head width (default 8; 22 on GPU)")
    t.add_argument("--batch-size", type=int, default=8, help="faces of A and of B per step, per process (default 8)")
    t.add_argument("--lr", type=float, default=2e-4, help="AdamW learning rate (default 2e-4)")
    t.add_argument("--loss", choices=["l1", "mse"], default="l1",
                   help="pixel loss added to DSSIM on the masked face (default l1)")
    t.add_argument("--eyes-mouth-weight", type=float, default=1.0,
                   help="extra weight of the eye and mouth regions (from landmarks; 0 turns it off; default 1)")
    t.add_argument("--no-warp", action="store_true", help="turn off the random warp of inputs (not recommended)")
    t.add_argument("--no-flip", action="store_true", help="turn off random horizontal flips")
    t.add_argument("--no-color-aug", action="store_true", help="turn off random colour shifts")
    t.add_argument("--steps", type=int, help="stop at this total step count")
    t.add_argument("--minutes", type=float, help="stop after this many minutes of this run")
    t.add_argument("--save-every", type=int, default=500, help="checkpoint every N steps (default 500)")
    t.add_argument("--preview-every", type=int, default=250, help="preview grid every N steps (0: only at the end)")
    t.add_argument("--log-every", type=int, default=10, help="log.csv row every N steps (default 10)")
    _add_common(t)
    t.set_defaults(func=run_train)

    c = sub.add_parser("convert", help="swap A's face into a video (or folder of frames) of B",
                       description="Detect and align B's face in every frame (landmarks smoothed over time), "
                                   "decode it as A, match colours, and blend it back.",
                       epilog=CONVERT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--model", required=True, metavar="MODEL_DIR", help="a folder written by `swap train`")
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", metavar="DEST", help="the destination video (B)")
    src.add_argument("--images", metavar="FOLDER", help="a folder of frames instead of a video; --out is a folder")
    c.add_argument("--out", required=True, help="output .mp4 (for --video) or folder (for --images)")
    c.add_argument("--color", choices=["rct", "hist", "none"], default="rct",
                   help="colour transfer to B's skin: rct (Reinhard in LAB), hist (histogram matching) "
                        "or none (default rct)")
    c.add_argument("--blend", choices=["alpha", "seamless"], default="alpha",
                   help="alpha: feathered mask; seamless: OpenCV seamlessClone (Poisson) then the "
                        "feathered mask (default alpha)")
    c.add_argument("--mask", choices=["learned", "landmarks", "both"], default="both",
                   help="mask to paste with: the model's mask head, the landmark face oval, or their "
                        "product (default both)")
    c.add_argument("--erode", type=float, default=2.0,
                   help="shrink the mask by this many pixels of the model's face size (default 2)")
    c.add_argument("--blur", type=float, default=6.0,
                   help="feather the mask edge over this many face pixels (default 6)")
    c.add_argument("--smooth", type=float, default=1.0,
                   help="One-Euro landmark smoothing min cutoff in Hz; lower = steadier, 0 = off (default 1.0)")
    c.add_argument("--max-frames", type=int, help="convert only the first N frames (for a quick look)")
    c.add_argument("--crf", type=int, default=18, help="H.264 quality, lower is better (default 18)")
    _add_common(c)
    c.set_defaults(func=run_convert)


def _threads(args) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def run_train(args) -> int:
    from synthswap.faceset import FacesetError
    from synthswap.swap.data import Augment
    from synthswap.swap.networks import SwapConfig
    from synthswap.swap.train import SwapTrainError, TrainOptions, train
    from synthswap.training import CheckpointError

    _threads(args)
    if not args.resume and (not args.src or not args.dst):
        print("error: give --src FACESET_A and --dst FACESET_B (or --resume an existing --out)", file=sys.stderr)
        return 2
    config = SwapConfig(arch=args.arch, resolution=args.resolution, e_dims=args.e_dims, ae_dims=args.ae_dims,
                        d_dims=args.d_dims, d_mask_dims=args.d_mask_dims)
    opts = TrainOptions(
        src=args.src, dst=args.dst, out=args.out, config=config, src_weights=args.src_weights,
        dst_weights=args.dst_weights, batch_size=args.batch_size, lr=args.lr, pixel_loss=args.loss,
        eyes_mouth_weight=args.eyes_mouth_weight, steps=args.steps, minutes=args.minutes,
        save_every=args.save_every, preview_every=args.preview_every, log_every=args.log_every,
        seed=args.seed, device=args.device, resume=args.resume,
        augment=Augment(flip=not args.no_flip, warp=not args.no_warp, colour=not args.no_color_aug),
        progress=not args.quiet)
    try:
        summary = train(opts)
    except (SwapTrainError, FacesetError, CheckpointError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if summary["world_size"] == 1 or int(__import__("os").environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, indent=2))
    return 0


def run_convert(args) -> int:
    from synthswap.media import MediaError
    from synthswap.swap.convert import ConvertOptions, convert_images, convert_video
    from synthswap.training import CheckpointError

    _threads(args)
    opts = ConvertOptions(color=args.color, blend=args.blend, mask=args.mask, erode=args.erode, blur=args.blur,
                          smooth_min_cutoff=args.smooth, device=args.device, progress=not args.quiet,
                          max_frames=args.max_frames, crf=args.crf)
    try:
        if args.video:
            summary = convert_video(args.model, args.video, args.out, opts)
        else:
            summary = convert_images(args.model, args.images, args.out, opts)
    except (CheckpointError, MediaError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0
