"""Training the swap autoencoder: the loop, checkpoints, previews, logs, resume and DDP.

A model folder holds:
  model.safetensors   weights + AdamW state + step (safetensors; written atomically)
  model.json          config, data, steps, versions (what `swap convert` reads first)
  log.csv             one row per logged step (loss parts, images/s)
  preview.png         the latest preview grid; previews/step_NNNNNNN.png keeps the history
  landmark_net.safetensors  the pose loss's landmark regressor (with the identity loss), so a resume
                      does not fit it again

The data of step n comes from a generator seeded with (seed, n, rank) (see data.py),
so `--resume` continues with the same weights, optimizer state, step and data order
as a run that was never interrupted.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from synthswap.atomic import write_json as atomic_write_json
from synthswap.faces.landmark_net import SUBSET, LandmarkNet, train_landmark_net
from synthswap.faces.sface_torch import sface_identity
from synthswap.locking import LockError, locked_output
from synthswap.media import write_png
from synthswap.options import option
from synthswap.patch_gan import PatchDiscriminator, discriminator_loss, generator_loss
from synthswap.precision import Precision, resolve_precision
from synthswap.swap.data import Augment, FaceSource, draw_augment, step_rng
from synthswap.swap.loading import (
    CHECKPOINT_FILE,
    MODEL_FORMAT,
    MODEL_JSON,
    load_model,
    read_model_json,
)
from synthswap.swap.losses import (
    PIXEL_LOSSES,
    band_limited,
    low_pass,
    identity_loss,
    pose_loss,
    shading_loss,
    swap_loss,
)
from synthswap.swap.networks import PARTS, SwapConfig, SwapModel, resized_state
from synthswap.swap.paired_targets import paired_targets
from synthswap.training import (
    Budget,
    annealed_lr,
    CheckpointError,
    CsvLog,
    StopRequest,
    atomic_save_tensors,
    process_group,
    library_versions,
    load_checkpoint,
    load_tensors,
    parameter_count,
    save_checkpoint,
)

LOG_FIELDS = ["step", "time_s", "loss", "loss_a", "loss_b", "dssim_a", "dssim_b", "pixel_a", "pixel_b",
              "eyes_mouth_a", "eyes_mouth_b", "mask_a", "mask_b", "id_swap", "id_rec", "shading_swap", "paired_swap", "pose_swap",
              "gan", "disc", "images_per_s", "lr", "warp"]


# The identity-loss weight `run`, `study` and `swap train` use (with SWAP_POSE_WEIGHT beside it): on the
# study's d9 -> d6 conditions it took dlib's distance to the held-out subject from 0.62-0.69 to 0.54-0.60
# with expression error within 6% and pose error 8% lower on average (docs/study/identity_rerun.md).
SWAP_ID_WEIGHT = 1.0
# The head-pose weight that goes with it (`--pose-weight`), measured in docs/swap.md.
SWAP_POSE_WEIGHT = 3.0
# The GAN power `run` and `study` use (`swap train --gan-power` stays 0 unless asked): in a whole `run`
# on the reference pair at equal minutes it took sharpness from 0.29 to 0.49 of the destination's, FID
# from 196 to 172 and dlib's distance from 0.339 to 0.327 (docs/swap.md, "SAEHD's GAN power").
SWAP_GAN_POWER = 0.1
# Faces and steps the landmark regressor of the pose loss is fitted on (about a minute on a CPU), and
# the size it sees them at: head pose needs no more, and at a 128 px model's size the fit cost 2.4x more.
LANDMARK_FACES, LANDMARK_STEPS, LANDMARK_RESOLUTION = 1000, 400, 64
LANDMARK_NET_FILE = "landmark_net.safetensors"  # the pose loss's regressor, kept for a resume


class SwapTrainError(Exception):
    """A training request that cannot be carried out (bad options, existing output...)."""


@dataclass
class SwapTrainOptions:
    src: list[str]
    dst: list[str]
    out: str
    config: SwapConfig = field(default_factory=SwapConfig)
    src_weights: list[float] | None = option(None, "sampling weight per --src faceset, in order (default: equal per "
                                                   "faceset)", minimum=0, spaced=True, metavar="W")
    dst_weights: list[float] | None = option(None, "sampling weight per --dst faceset, in order (default: equal per "
                                                   "faceset)", minimum=0, spaced=True, metavar="W")
    batch_size: int = option(8, "faces of A and of B per step, per process", minimum=1)
    lr: float = option(2e-4, "AdamW learning rate", above=0)
    # A short fine-tune ends on noisy weights at a constant rate; lowering it at the end is what
    # DeepFaceLab's users do (SAEHD's "LR dropout") for the last of the detail.
    lr_anneal: float = option(0.0, "the last fraction of the budget (steps or minutes) over which the learning rate "
                                   "falls linearly to a tenth of --lr (0: constant)", minimum=0, maximum=1)
    # The random warp teaches the decoder to draw a face from a distorted one, which it can only do
    # softly; DeepFaceLab's users turn it off once the face is learned, for the photos' own detail.
    warp_off_last: float = option(0.0, "the last fraction of the budget (steps or minutes) trained without the "
                                       "random warp of inputs, so the model learns the photos' own detail "
                                       "(0: warp throughout; docs/swap.md)", minimum=0, maximum=1, metavar="F")
    pixel_loss: str = option("l1", "pixel loss added to DSSIM on the masked face", choices=PIXEL_LOSSES, flag="loss")
    eyes_mouth_weight: float = option(1.0, "extra weight of the eye and mouth regions (from landmarks; 0 turns it "
                                           "off)", minimum=0)
    # DSSIM at two windows (DeepFaceLab SAEHD's choice at 128 px and up; losses.multiscale_dssim).
    multiscale_dssim: bool = option(False, "DSSIM at two window sizes (DeepFaceLab SAEHD's choice at 128 px and up) "
                                           "instead of one")
    # Synthetic faces (rendered at this many px and enlarged) supervise only up to this resolution;
    # real photos teach the detail above it (losses.band_limited). 0: every face at full resolution.
    synthetic_resolution: int = option(0, "synthetic faces (rendered at PX and enlarged) supervise only detail up to "
                                          "PX; real photos teach the rest (0: every face at full resolution)",
                                       minimum=0, metavar="PX")
    # Identity supervision (SFace in torch): the B->A swaps pulled towards the subject's real photos
    # and the A->A reconstructions towards their own photo, every `id_every` steps (0: off).
    id_weight: float = option(0.0, "identity supervision: weight of 1 - SFace cosine of the swapped faces (B->A) to "
                                   "the subject's real photos and of A->A to their own photo (0: off; docs/swap.md)",
                              minimum=0)
    id_every: int = option(4, "apply the identity loss (and --paired-weight's) every N steps", minimum=1)
    id_jitter: bool = option(False, "embed the B->A swaps mirrored, shifted, scaled and with colour drained at random "
                                    "for the identity loss, so it rewards the face rather than patterns tuned to the "
                                    "identity network's exact pixels (streaks, colour splits; docs/swap.md)")
    shading_weight: float = option(0.0, "with --id-weight: weight of the B->A swaps' coarse shading (a 4x4 grid of "
                                        "colour, less the face's mean) held to the B face's, so identity is not "
                                        "bought with a colour split or bands of light (0: off; docs/swap.md)",
                                   minimum=0)
    paired_weight: float = option(0.0, "weight of a reconstruction loss on the B->A swaps (every --id-every steps) "
                                       "against the subject's own photo warped to each B face's expression and "
                                       "pose: a target of real pixels for what the swap should look like (0: off; "
                                       "docs/swap.md)", minimum=0)
    # A warped photo is right in its coarse shape and colour but a little off in its fine detail, which a
    # pixel loss would average into blur: supervise the B->A swaps only up to this resolution.
    paired_resolution: int = option(0, "with --paired-weight: hold the B->A swaps to their targets only up to PX "
                                       "(both reduced to PX and brought back), so the detail above it is the "
                                       "decoder's own (0: at full resolution)", minimum=0, metavar="PX")
    # With the identity loss, the B->A swaps' head pose is held to the B face's (see losses.pose_loss).
    pose_weight: float = option(SWAP_POSE_WEIGHT, "with --id-weight: weight of the B->A swaps' head-pose drift from "
                                                  "the B face (eye-line angle, nose offset and height, from a small "
                                                  "landmark regressor fitted on both facesets first), so identity "
                                                  "is not bought with pose; 0: off", minimum=0)
    gan_power: float = option(0.0, "weight of a patch discriminator's term on A's masked reconstructions, which pays "
                                   "for a photo's texture (DeepFaceLab SAEHD's 'GAN power'; 0: off; may be turned "
                                   "on when resuming, as SAEHD users do once the face is learned)", minimum=0)
    steps: int | None = option(None, "stop at this total step count", minimum=1)
    minutes: float | None = option(None, "stop after this many minutes of this run", above=0)
    save_every: int = option(500, "checkpoint every N steps (0: only at the end)", minimum=0)
    preview_every: int = option(250, "preview grid every N steps (0: only at the end)", minimum=0)
    preview_minutes: float = option(1.0, "also a preview grid every N minutes, the first after half of that, so "
                                         "a slow model shows its face early (0: by steps only)", minimum=0)
    log_every: int = option(10, "log.csv row every N steps", minimum=1)
    seed: int = 0
    device: str = "auto"
    # auto: bf16 autocast where it is faster (synthswap.precision), fp32 elsewhere.
    precision: str = "auto"
    resume: bool = False
    augment: Augment = field(default_factory=Augment)
    # Start from a pretrained model's weights (a model folder; see `synthswap pretrain`), copying
    # these parts (networks.PARTS names; None: every part). Ignored when resuming.
    init: str | None = None
    init_parts: list[str] | None = option(
        None, f"which parts to copy with --init (default: all; df: {','.join(PARTS['df'])}; liae: "
              f"{','.join(PARTS['liae'])}); the rest start from random weights",
        choices=tuple(dict.fromkeys(p for parts in PARTS.values() for p in parts)), metavar="PART,...")
    progress: bool = True


def _to_tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    # channels_last helps on CPU too (oneDNN convolutions ran ~1.5x faster in our measurements).
    return torch.from_numpy(x).to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)


def _landmark_training_data(sources: list[FaceSource]) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to LANDMARK_FACES evenly spaced faces of both people (uint8 NCHW at LANDMARK_RESOLUTION at
    most) and their FaceMesh points (SUBSET, [0, 1] crop units)."""
    points = np.concatenate([s.landmarks[:, SUBSET] / s.size for s in sources])
    idx = np.linspace(0, len(points) - 1, min(LANDMARK_FACES, len(points))).round().astype(int)
    # the faces at `idx` of all sources one after the other, read from each source (in memory or not)
    starts = np.cumsum([0] + [len(s) for s in sources])
    images = np.concatenate([s.faces(idx[(idx >= a) & (idx < b)] - a)[0]
                             for s, a, b in zip(sources, starts[:-1], starts[1:])])
    faces = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    if faces.shape[-1] > LANDMARK_RESOLUTION:
        faces = F.interpolate(faces.float(), size=LANDMARK_RESOLUTION, mode="area").round().to(torch.uint8)
    return faces, torch.from_numpy(points[idx].astype(np.float32))


def fit_landmark_net(sources: list[FaceSource], seed: int, device: torch.device,
                     precision: Precision | None = None, keep_in: Path | None = None) -> torch.nn.Module:
    """The landmark regressor `pose_loss` measures with, fitted on both people's faces (their FaceMesh
    points from extraction) at the model's resolution, in the swap's own colour order. Deterministic
    for a seed. With `keep_in` (the model folder), the fitted weights are kept there and a later session
    on the same faces and seed (a resume) reads them instead of fitting again: the fit is 30-45 s on 2
    cores, and the pose loss keeps measuring with the very same regressor."""
    faces, targets = _landmark_training_data(sources)
    key = hashlib.sha256(faces.numpy().tobytes() + targets.numpy().tobytes()
                         + f"{faces.shape} {seed} {LANDMARK_STEPS}".encode()).hexdigest()
    kept = keep_in / LANDMARK_NET_FILE if keep_in is not None else None
    if kept is not None and kept.is_file():
        try:
            tensors, meta = load_tensors(kept)
            if meta.get("key") == key:
                net = LandmarkNet(faces.shape[-1], points=targets.shape[1])
                net.load_state_dict(tensors)
                return net.to(device).eval().requires_grad_(False)
        except (CheckpointError, RuntimeError):  # unreadable or of another shape: fit it again below
            pass
    net, _ = train_landmark_net(faces, targets, steps=LANDMARK_STEPS, seed=seed, device=device,
                                autocast=(precision or resolve_precision("fp32", device)).autocast)
    if kept is not None:
        atomic_save_tensors(net.state_dict(), kept, {"key": key, "seed": seed, "steps": LANDMARK_STEPS})
    return net


def preview_samples(source: FaceSource, count: int = 4) -> np.ndarray:
    """Evenly spaced, unaugmented faces (NCHW float 0..1): the same ones every preview."""
    idx = np.linspace(0, len(source) - 1, min(count, len(source))).round().astype(int)
    return np.ascontiguousarray(source.faces(idx)[0].transpose(0, 3, 1, 2)).astype(np.float32) / 255.0


@torch.no_grad()
def preview_grid(model: SwapModel, a: np.ndarray, b: np.ndarray, device: torch.device,
                 precision: Precision | None = None) -> np.ndarray:
    """BGR uint8 grid, one row per sample: A, A->A, B, B->B, B->A."""
    model.eval()
    ta, tb = _to_tensor(a, device), _to_tensor(b, device)
    with (precision or resolve_precision("fp32", device)).autocast():
        aa = model.reconstruct(ta, "A")[0]
        bb = model.reconstruct(tb, "B")[0]
        ba = model.swap(tb)[0]
    model.train()
    n = min(len(ta), len(tb))
    cols = [ta[:n], aa[:n].float(), tb[:n], bb[:n].float(), ba[:n].float()]
    rows = torch.cat([torch.cat(list(c), 2) for c in zip(*cols)], 1)  # C, n*H, 5*W
    return (rows.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 of all parameters and buffers: equal digests mean bit-identical replicas."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _prepare_out(opts: SwapTrainOptions) -> tuple[dict | None, SwapConfig]:
    out = Path(opts.out)
    if opts.resume:
        meta = read_model_json(out)
        config = SwapConfig.from_dict(meta["config"])
        return meta, config
    if (out / MODEL_JSON).exists() or (out / CHECKPOINT_FILE).exists():
        raise SwapTrainError(f"{out} already holds a model; add --resume to continue it, or choose another --out")
    opts.config.validate()
    return None, opts.config


def initialise_from(model: SwapModel, pretrained_dir: str | os.PathLike, parts: Sequence[str] | None) -> dict:
    """Copy `parts` of a pretrained model's weights into `model` (same architecture and widths; a
    smaller resolution is grown to this one); returns what model.json records about it."""
    try:
        pretrained, meta = load_model(pretrained_dir)
    except CheckpointError as exc:
        raise SwapTrainError(f"--init: {exc}") from exc
    digest, grown_from = weights_digest(pretrained), None
    if pretrained.config != model.config:
        try:  # a smaller model of the same architecture is grown to this resolution (networks.resized_state)
            state = resized_state(pretrained.state_dict(), pretrained.config, model.config)
        except ValueError as exc:
            raise SwapTrainError(f"--init {pretrained_dir}: its model is {pretrained.config}, this one is {model.config} "
                                 f"({exc}); train with the same --arch and widths at a multiple of its resolution, "
                                 f"or without --init") from exc
        grown_from = pretrained.config.resolution
        pretrained = SwapModel(model.config)
        pretrained.load_state_dict(state)
    available = PARTS[model.config.arch]
    parts = available if parts is None else tuple(parts)
    unknown = [p for p in parts if p not in available]
    if unknown:
        raise SwapTrainError(f"--init-parts: {', '.join(unknown)} not in the {model.config.arch} model "
                             f"({', '.join(available)})")
    with torch.no_grad():
        for part in parts:
            getattr(model, part).load_state_dict(getattr(pretrained, part).state_dict())
    return {"from": str(Path(pretrained_dir).resolve()), "parts": list(parts), "pretrained_steps": meta.get("steps"),
            "pretrained_sha256": digest, "grown_from_resolution": grown_from}


def train(opts: SwapTrainOptions) -> dict[str, Any]:
    """Train (or resume) a swap model; returns a summary. Runs under torchrun as DDP too."""
    if opts.steps is None and opts.minutes is None:
        raise SwapTrainError("give a budget: --steps and/or --minutes")
    if opts.pixel_loss not in PIXEL_LOSSES:
        raise SwapTrainError(f"--loss must be one of {', '.join(PIXEL_LOSSES)}, not {opts.pixel_loss}")
    if opts.batch_size < 1:
        raise SwapTrainError("--batch-size must be at least 1")
    if opts.synthetic_resolution < 0:
        raise SwapTrainError("--synthetic-resolution must not be negative")
    if min(opts.id_weight, opts.pose_weight, opts.shading_weight, opts.paired_weight) < 0 or opts.id_every < 1:
        raise SwapTrainError("--id-weight, --pose-weight, --shading-weight and --paired-weight must not be negative "
                             "and --id-every must be at least 1")
    if opts.paired_resolution and not opts.paired_weight:
        raise SwapTrainError("--paired-resolution sets the band of the paired loss: give --paired-weight too")
    _, config = _prepare_out(opts)  # a request that cannot be carried out is refused before anything is created
    if not opts.resume:  # a resume keeps the bands it was trained with
        for flag, px in (("--synthetic-resolution", opts.synthetic_resolution),
                         ("--paired-resolution", opts.paired_resolution)):
            _check_band(flag, px, config.resolution)
    with process_group(opts.device) as (dinfo, device):
        try:
            if not dinfo.is_main:
                return _train(opts, dinfo, device)
            with locked_output(opts.out, "swap model folder"):  # one writer per model folder
                return _train(opts, dinfo, device)
        except LockError as exc:
            raise SwapTrainError(str(exc)) from exc


def _check_band(flag: str, px: int, resolution: int) -> None:
    """A band is the model's resolution divided by a whole factor (losses.low_pass averages
    factor x factor blocks and enlarges them back): refuse any other, which would not fit."""
    if px and resolution % px:
        fits = [resolution // f for f in range(2, resolution // 4 + 1) if resolution % f == 0][:6]
        raise SwapTrainError(f"{flag} {px}: the {resolution} px model can be held to a band of its resolution divided "
                             f"by a whole number, such as {', '.join(map(str, fits))} (or 0: no limit)")


def _train(opts: SwapTrainOptions, dinfo, device: torch.device) -> dict[str, Any]:
    out = Path(opts.out)
    meta, config = _prepare_out(opts)
    src, dst = opts.src, opts.dst
    src_w, dst_w = opts.src_weights, opts.dst_weights
    if meta is not None and not src:
        # Resume without data options: the same facesets and weights as before.
        src, src_w = [d["path"] for d in meta["data"]["A"]], meta["data"].get("src_weights")
        dst, dst_w = [d["path"] for d in meta["data"]["B"]], meta["data"].get("dst_weights")
    if not src or not dst:
        raise SwapTrainError("give at least one --src faceset (A, the subject) and one --dst faceset (B)")
    if meta is not None:
        # Same batch, loss and augmentation as before: otherwise the resumed run would not
        # continue the interrupted one (the data of a step depends on them).
        t = meta["training"]
        opts.batch_size, opts.lr, opts.pixel_loss = t["batch_size_per_rank"], t["lr"], t["pixel_loss"]
        opts.eyes_mouth_weight, opts.augment = t["eyes_mouth_weight"], Augment(**t["augment"])
        opts.id_weight, opts.id_every = t.get("id_weight", 0.0), t.get("id_every", opts.id_every)
        opts.id_jitter, opts.shading_weight = t.get("id_jitter", False), t.get("shading_weight", 0.0)
        opts.paired_weight = t.get("paired_weight", 0.0)
        opts.paired_resolution = t.get("paired_resolution", 0)
        opts.pose_weight = t.get("pose_weight", 0.0)
        opts.multiscale_dssim = t.get("multiscale_dssim", False)
        opts.synthetic_resolution = t.get("synthetic_resolution", 0)
        opts.gan_power = opts.gan_power or t.get("gan_power", 0.0)  # the one option a resume may turn on
    precision = resolve_precision(opts.precision, device)
    res = config.resolution
    faces_a = FaceSource(src, res, src_w, progress=dinfo.is_main and opts.progress)
    faces_b = FaceSource(dst, res, dst_w, progress=dinfo.is_main and opts.progress)

    torch.manual_seed(opts.seed)  # identical initial weights on every rank
    model = SwapModel(config)
    init = meta.get("init") if meta is not None else None
    if meta is None and opts.init:
        init = initialise_from(model, opts.init, opts.init_parts)
    model = model.to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=opts.lr, betas=(0.5, 0.999), weight_decay=1e-4)
    modules: dict[str, torch.nn.Module] = {"model": model}
    optimizers: dict[str, torch.optim.Optimizer] = {"adamw": optimizer}
    disc = None
    if opts.gan_power > 0:
        torch.manual_seed(opts.seed + 1)
        disc = PatchDiscriminator().to(device).to(memory_format=torch.channels_last)
        modules["disc"] = disc
        optimizers["disc_adamw"] = torch.optim.AdamW(disc.parameters(), lr=opts.lr, betas=(0.5, 0.999))
    step = 0
    seed = opts.seed
    history: list[dict] = []
    if meta is not None:
        # A discriminator turned on at this resume starts fresh; one the run had is restored.
        had_disc = meta["training"].get("gan_power", 0.0) > 0
        state = load_checkpoint(out / CHECKPOINT_FILE, modules if had_disc else {"model": model},
                                optimizers if had_disc else {"adamw": optimizer}, map_location=device)
        step = int(state["step"])
        seed = int(state["seed"])  # the data order is tied to the original seed
        history = list(meta.get("history", []))
    train_model: torch.nn.Module = model
    train_disc: torch.nn.Module | None = disc
    if dinfo.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
        if disc is not None:
            train_disc = torch.nn.parallel.DistributedDataParallel(
                disc, device_ids=[device.index] if device.type == "cuda" else None)

    main = dinfo.is_main
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "previews").mkdir(exist_ok=True)
    log = CsvLog(out / "log.csv", LOG_FIELDS) if main else None
    prev_a, prev_b = preview_samples(faces_a), preview_samples(faces_b)
    session = {"started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
               "start_step": step, "world_size": dinfo.world_size, "device": str(device),
               "precision": precision.describe(), "lr_anneal": opts.lr_anneal, "warp_off_last": opts.warp_off_last}
    if main and opts.progress:
        print(f"swap train: precision {precision.describe()}")

    def describe(end_step: int, extra: dict | None = None) -> dict:
        return {
            "format": MODEL_FORMAT, "format_version": 1, "config": config.to_dict(),
            "training": {"batch_size_per_rank": opts.batch_size, "lr": opts.lr, "pixel_loss": opts.pixel_loss,
                         "eyes_mouth_weight": opts.eyes_mouth_weight, "augment": asdict(opts.augment), "seed": seed,
                         "id_weight": opts.id_weight, "id_every": opts.id_every, "id_jitter": opts.id_jitter,
                         "shading_weight": opts.shading_weight, "paired_weight": opts.paired_weight,
                         "paired_resolution": opts.paired_resolution,
                         "pose_weight": opts.pose_weight,
                         "multiscale_dssim": opts.multiscale_dssim, "synthetic_resolution": opts.synthetic_resolution,
                         "gan_power": opts.gan_power,
                         "optimizer": "AdamW(betas=(0.5, 0.999), weight_decay=1e-4)"},
            "data": {"A": faces_a.describe(), "B": faces_b.describe(), "src_weights": src_w, "dst_weights": dst_w},
            "init": init,
            "steps": end_step,
            "parameters": parameter_count(model),
            "checkpoint": CHECKPOINT_FILE,
            "versions": library_versions(),
            "history": history + [dict(session, end_step=end_step, seconds=round(time.monotonic() - t_start, 1),
                                       **(extra or {}))],
        }

    def checkpoint(at_step: int) -> None:
        if main:
            save_checkpoint(out / CHECKPOINT_FILE, modules, optimizers,
                            {"step": at_step, "seed": seed, "config": config.to_dict()})
            atomic_write_json(out / MODEL_JSON, describe(at_step))

    identity, centroid = None, None
    if opts.id_weight > 0:
        identity = sface_identity(device)
        with torch.no_grad():
            centroid = F.normalize(identity(_to_tensor(faces_a.real_images(), device)).mean(0), dim=0)
    landmarks = (fit_landmark_net([faces_a, faces_b], seed, device, precision, keep_in=out if main else None)
                 if identity is not None and opts.pose_weight > 0 else None)
    id_parts: dict[str, float] = {}
    # Each B face's paired target (swap/paired_targets.py), indexed as faces_b; built in about 6 s per 450 faces.
    pairs = (FaceSource.from_arrays(*paired_targets(faces_a, faces_b)[:3], "paired targets")
             if opts.paired_weight > 0 else None)

    # Synthetic faces teach only the band below their own resolution (1: no limit).
    band = res // opts.synthetic_resolution if 0 < opts.synthetic_resolution < res else 1
    paired_band = res // opts.paired_resolution if 0 < opts.paired_resolution < res else 1
    unwarped = replace(opts.augment, warp=False)  # for the budget's last `warp_off_last`
    budget = Budget(opts.steps, opts.minutes, first_step=step)
    stop = StopRequest()
    bar = tqdm(total=opts.steps, initial=step, disable=not (main and opts.progress), unit="step",
               dynamic_ncols=True, desc="swap train")
    images_per_step = 2 * opts.batch_size * dinfo.world_size
    t_start = time.monotonic()
    last_preview = t_start - opts.preview_minutes * 30  # the first one after half the interval
    t_window, steps_window, ips = time.monotonic(), 0, 0.0
    last_loss: float | None = None
    first_step = step
    stopped_by_signal = False
    model.train()
    with stop.installed():
        while True:
            finished = budget.done(step) or stop.requested
            progress = budget.progress(step + 1)  # the budget spent when this step ends
            if dinfo.enabled:
                # Every rank must leave the loop at the same step, or DDP would hang, and take the same
                # learning rate and warp, or the replicas would drift apart (a minutes budget's clock is
                # each rank's).
                flag = torch.tensor([1.0 if finished else 0.0, progress], device=device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                finished, progress = bool(flag[0].item()), float(flag[1].item())
            if finished:
                stopped_by_signal = stop.requested
                break
            rng = step_rng(seed, step, dinfo.rank)
            augment = opts.augment if progress <= 1.0 - opts.warp_off_last else unwarped
            drawn_a = faces_a.draw(rng, opts.batch_size)
            wa, ta, ma, ra = faces_a.batch(rng, opts.batch_size, augment, device, idx=drawn_a)
            drawn_b = faces_b.draw(rng, opts.batch_size)
            look_b = draw_augment(rng, opts.batch_size, res, augment)  # what `batch` would draw: same data order
            wb, tb, mb, rb = faces_b.batch(rng, opts.batch_size, augment, device, idx=drawn_b, look=look_b)
            wa, ta, ma, ra, wb, tb, mb, rb = (x.contiguous(memory_format=torch.channels_last)
                                              for x in (wa, ta, ma, ra, wb, tb, mb, rb))
            with precision.autocast():
                pa, pma, pb, pmb = train_model(wa, wb)
            synthetic_a = torch.from_numpy(faces_a.synthetic[drawn_a])
            pa_seen, ta_seen = band_limited(pa, synthetic_a, band), band_limited(ta, synthetic_a, band)
            loss_a, parts_a = swap_loss(pa_seen, pma, ta_seen, ma, ra,
                                        opts.pixel_loss, opts.eyes_mouth_weight, multiscale=opts.multiscale_dssim)
            loss_b, parts_b = swap_loss(pb, pmb, tb, mb, rb, opts.pixel_loss, opts.eyes_mouth_weight,
                                        multiscale=opts.multiscale_dssim)
            loss = loss_a + loss_b
            if (identity is not None or pairs is not None) and step % opts.id_every == 0:
                # The terms on the B->A swaps themselves, which the autoencoder's losses never see.
                with precision.autocast():
                    swapped, swapped_mask = model.swap(tb)
                id_parts = {}
                if identity is not None:
                    id_loss, id_parts = identity_loss(identity, swapped, centroid, pa, ta, precision.autocast,
                                                      jitter=np.random.default_rng([seed, step, 29])
                                                      if opts.id_jitter else None)
                    loss = loss + opts.id_weight * id_loss
                if identity is not None and opts.shading_weight > 0:
                    shading = shading_loss(swapped, tb, mb)
                    loss = loss + opts.shading_weight * shading
                    id_parts["shading_swap"] = float(shading.detach())
                if pairs is not None:
                    # The B faces' targets under the B batch's own framing and colour (no input warp).
                    _, pt, pm, pr = pairs.batch(rng, opts.batch_size, augment, device, idx=drawn_b,
                                                look=replace(look_b, warp=None))
                    paired, _ = swap_loss(low_pass(swapped, paired_band).float(), swapped_mask,
                                          low_pass(pt, paired_band), pm, pr, opts.pixel_loss,
                                          opts.eyes_mouth_weight, mask_weight=0.0, multiscale=opts.multiscale_dssim)
                    loss = loss + opts.paired_weight * paired
                    id_parts["paired_swap"] = float(paired.detach())
                if landmarks is not None:
                    drift, pose_parts = pose_loss(landmarks, swapped, tb, precision.autocast)
                    loss = loss + opts.pose_weight * drift
                    id_parts.update(pose_parts)
            gan_parts: dict[str, float] = {}
            if train_disc is not None:
                # SAEHD judges A's reconstruction inside the face mask against the photo inside it; a
                # synthetic photo and its reconstruction only in the band it supervises, or the critic
                # would learn that an enlarged face's blur is what real faces look like.
                real_a, fake_a = ta_seen * ma, pa_seen * ma
                train_disc.requires_grad_(False)
                with precision.autocast():
                    gan_term = generator_loss(train_disc(fake_a))
                loss = loss + opts.gan_power * gan_term
                gan_parts["gan"] = float(gan_term.detach())
            if not torch.isfinite(loss.detach()):  # stop before the step: NaN would reach every weight and checkpoint
                raise SwapTrainError(f"training diverged at step {step + 1} (the loss is {float(loss.detach())}); the last "
                                     f"good checkpoint in {out} is kept: lower --lr and run again with --resume")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for group in optimizer.param_groups:
                group["lr"] = annealed_lr(opts.lr, progress, opts.lr_anneal)
            optimizer.step()
            if train_disc is not None:
                train_disc.requires_grad_(True)
                with precision.autocast():
                    disc_loss = discriminator_loss(train_disc(real_a), train_disc(fake_a.detach()))
                optimizers["disc_adamw"].zero_grad(set_to_none=True)
                disc_loss.backward()
                optimizers["disc_adamw"].step()
                gan_parts["disc"] = float(disc_loss.detach())
            step += 1
            last_loss = float(loss.detach())
            steps_window += 1
            now = time.monotonic()
            if now - t_window >= 2.0 or steps_window >= 20:
                ips = steps_window * images_per_step / (now - t_window)
                t_window, steps_window = now, 0
            if main:
                bar.update(1)
                bar.set_postfix(loss=f"{last_loss:.4f}", img_s=f"{ips:.1f}",
                                **({"id": f"{id_parts['id_swap']:.3f}"} if "id_swap" in id_parts else {}))
                if step % opts.log_every == 0 or step == first_step + 1:
                    row = {"step": step, "time_s": round(now - t_start, 3), "loss": last_loss,
                           "loss_a": float(loss_a.detach()), "loss_b": float(loss_b.detach()), "images_per_s": round(ips, 2),
                           "lr": optimizer.param_groups[0]["lr"], "warp": int(augment.warp)}
                    row.update({f"{k}_a": v for k, v in parts_a.items()})
                    row.update({f"{k}_b": v for k, v in parts_b.items()})
                    row.update(id_parts)  # the latest losses on the swaps (they run every id_every steps)
                    row.update(gan_parts)
                    log.write(row)
                if (opts.preview_every and step % opts.preview_every == 0) or (
                        opts.preview_minutes and now - last_preview >= opts.preview_minutes * 60):
                    grid = preview_grid(model, prev_a, prev_b, device, precision)
                    write_png(out / "previews" / f"step_{step:07d}.png", grid)
                    write_png(out / "preview.png", grid)
                    last_preview = now
            if opts.save_every and step % opts.save_every == 0:
                checkpoint(step)
    bar.close()
    elapsed = time.monotonic() - t_start
    checkpoint(step)
    extra: dict[str, Any] = {}
    if dinfo.enabled:
        digests: list[str | None] = [None] * dinfo.world_size
        dist.all_gather_object(digests, weights_digest(model))
        extra["replica_sha256"] = digests
    if main:
        grid = preview_grid(model, prev_a, prev_b, device, precision)
        write_png(out / "preview.png", grid)
        atomic_write_json(out / MODEL_JSON, describe(step, extra))
        log.close()
    done = step - first_step
    return {
        "out": str(out), "step": step, "steps_this_run": done, "seconds": round(elapsed, 1),
        "images_per_s": round(done * images_per_step / elapsed, 2) if elapsed > 0 and done else 0.0,
        "last_loss": last_loss, "stopped_by_signal": stopped_by_signal, "world_size": dinfo.world_size,
        "faces_a": len(faces_a), "faces_b": len(faces_b), "parameters": parameter_count(model),
        "precision": precision.describe(), **extra,
    }


def trained_seconds(out: str | Path) -> float:
    """Seconds of training the checkpoint in `out` holds, summed over every session that made it (what
    a budget across resumes counts); 0 without a model.json."""
    try:
        meta = read_model_json(out)
    except CheckpointError:
        return 0.0
    return float(sum(session.get("seconds", 0.0) for session in meta.get("history", [])))


__all__ = ["SwapTrainError", "SwapTrainOptions", "train", "trained_seconds"]
