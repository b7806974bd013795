"""Training the enhancer: generic on a face corpus, then per subject on the subject's own photos.

Both run the same loop (`fit`): a random sharp photo, brought to a random face size the frame may
need, degraded as a swap's face is (`degrade.make_pair`), and a random patch of the pair; the loss
is L1 on the pixels plus L1 on their Laplacian (high frequencies), which pays for the edges and
texture that L1 alone averages away. Per-subject fine-tuning (`finetune_enhancer`) starts from the
generic model and runs for a minute or two, so the detail it restores is the subject's.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from synthswap import __version__, atomic
from synthswap.enhance.degrade import DEFAULT_DEGRADE, DegradeOptions, make_pair
from synthswap.enhance.model import CHECKPOINT, MODEL_JSON, EnhanceError, load_enhancer, read_model_json
from synthswap.enhance.network import EnhanceConfig, EnhanceNet
from synthswap.enhance.swap_pairs import Pair
from synthswap.faceset import INFO_FILE, Faceset
from synthswap.media import read_crop
from synthswap.options import option
from synthswap.patch_gan import PatchDiscriminator, discriminator_loss, generator_loss
from synthswap.training import (
    Budget,
    CsvLog,
    StopRequest,
    autocast,
    library_versions,
    load_checkpoint,
    parameter_count,
    resolve_device,
    save_checkpoint,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


@dataclass
class EnhanceTrainOptions:
    data: list[str]  # facesets (aligned crops) or folders of face photos
    out: str
    init: str | None = None  # an enhancer folder, or 'shipped', to start from
    resume: bool = False
    config: EnhanceConfig = field(default_factory=EnhanceConfig)
    steps: int | None = option(None, "stop at this total step count", minimum=1)
    minutes: float | None = option(None, "stop after this many minutes of this run", above=0)
    batch_size: int = option(12, "patches per step", minimum=1)
    patch: int = option(96, "training patch size in px (a multiple of 4)", minimum=1)
    max_size: int = option(256, "largest face size trained for, px (photos are never upscaled past their own)",
                           minimum=1)
    lr: float = option(3e-4, "AdamW learning rate", above=0)
    hf_weight: float = option(1.0, "weight of the L1 on the Laplacian (edges and texture)", minimum=0)
    adv_weight: float = option(0.0, "weight of a patch discriminator's term, which pays for a photo's texture "
                                    "(0: off; try 0.01-0.05)", minimum=0)
    save_every: int = option(500, "checkpoint every N steps (0: only at the end)", minimum=0)
    log_every: int = option(25, "log.csv row every N steps", minimum=1)
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # synthswap.precision: bf16 autocast where this machine runs it faster
    progress: bool = True


class PhotoPool:
    """Sharp face images to degrade: the crops of facesets and the photos of image folders."""

    def __init__(self, data: list[str | os.PathLike], preload: bool = False):
        self._items: list[tuple[Faceset | None, Any]] = []  # (faceset, row number) or (None, photo path)
        for entry in data:
            path = Path(entry)
            if (path / INFO_FILE).is_file():
                fs = Faceset.open(path)
                self._items += [(fs, int(row)) for row in np.flatnonzero(~fs.synthetic())]
            elif path.is_dir():
                self._items += [(None, p) for p in sorted(path.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
            else:
                raise EnhanceError(f"{entry}: neither a faceset nor a folder of images")
        if not self._items:
            raise EnhanceError(f"no face images in {', '.join(map(str, data))}")
        self._cache = [self._load(i) for i in range(len(self._items))] if preload else None

    def __len__(self) -> int:
        return len(self._items)

    def names(self) -> list[str]:
        """One name per image: a faceset row's id, or a photo's file name without its suffix."""
        return [fs.faces[item].id if fs is not None else item.stem for fs, item in self._items]

    def _load(self, i: int) -> np.ndarray:
        fs, item = self._items[i]
        img = fs.read_image(fs.faces[item]) if fs is not None else read_crop(item)
        side = min(img.shape[:2])  # a photo that is not square: its centre square
        y, x = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
        return img[y:y + side, x:x + side]

    def read(self, i: int) -> np.ndarray:
        return self._cache[i] if self._cache is not None else self._load(i)


def _tensor(arrays: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255


def _patch(low: np.ndarray, sharp: np.ndarray, patch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y, x = rng.integers(0, low.shape[0] - patch + 1, 2)
    return low[y:y + patch, x:x + patch], sharp[y:y + patch, x:x + patch]


def sample_batch(pool: PhotoPool, rng: np.random.Generator, batch: int, patch: int, max_size: int,
                 degrade: DegradeOptions = DEFAULT_DEGRADE) -> tuple[torch.Tensor, torch.Tensor]:
    """(degraded, sharp) patches, (B, 3, patch, patch) float in [0, 1]."""
    xs, ys = [], []
    for _ in range(batch):
        img = pool.read(int(rng.integers(len(pool))))
        top = min(img.shape[0], max_size)
        size = int(rng.integers(max(patch, int(0.6 * top)), top + 1))
        low, sharp = _patch(*make_pair(img, size, rng, degrade), patch, rng)
        xs.append(low)
        ys.append(sharp)
    return _tensor(xs), _tensor(ys)


def sample_swap_batch(pairs: list[Pair], rng: np.random.Generator, batch: int, patch: int,
                      generic_share: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Patches of (swap rendering, photo) pairs at 0.6-1x their native size, flipped at random; a
    `generic_share` of them made from the photo by the generic degradations instead, so the enhancer
    keeps restoring what the swap model's renderings of the subject's own photos do not show."""
    xs, ys = [], []
    for _ in range(batch):
        soft, sharp = pairs[int(rng.integers(len(pairs)))]
        size = int(rng.integers(max(patch, int(0.6 * sharp.shape[0])), sharp.shape[0] + 1))
        if rng.random() < generic_share:
            soft, sharp = make_pair(sharp, size, rng)
        else:
            if size != sharp.shape[0]:
                soft, sharp = (cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in (soft, sharp))
            if rng.random() < 0.5:
                soft, sharp = soft[:, ::-1], sharp[:, ::-1]
        low, high = _patch(soft, sharp, patch, rng)
        xs.append(np.ascontiguousarray(low))
        ys.append(np.ascontiguousarray(high))
    return _tensor(xs), _tensor(ys)


def high_pass(x: torch.Tensor) -> torch.Tensor:
    kernel = _LAPLACIAN.to(x)[None, None].repeat(x.shape[1], 1, 1, 1)
    return F.conv2d(x, kernel, groups=x.shape[1])


@dataclass
class Adversary:
    """The patch discriminator that pays the enhancer for a photo's texture, its optimiser and the
    weight of its term in the enhancer's loss."""

    disc: PatchDiscriminator
    opt: torch.optim.Optimizer
    weight: float


def losses(out: torch.Tensor, sharp: torch.Tensor, hf_weight: float) -> dict[str, torch.Tensor]:
    l1 = (out - sharp).abs().mean()
    hf = (high_pass(out) - high_pass(sharp)).abs().mean()
    return {"loss": l1 + hf_weight * hf, "l1": l1, "hf": hf}


Sampler = Callable[[np.random.Generator], tuple[torch.Tensor, torch.Tensor]]


def fit(net: EnhanceNet, opt: torch.optim.Optimizer, sample: Sampler, budget: Budget, step: int,
        opts: EnhanceTrainOptions, device: torch.device, stop: StopRequest | None = None,
        on_step: Callable[[int, dict[str, float]], None] | None = None, adversary: Adversary | None = None) -> int:
    """Train on the batches `sample` draws until the budget or a stop request ends it; returns the
    step count reached. With an `adversary`, each step also pays for what its discriminator finds
    fake, and then trains the discriminator on the sharp patches against the enhanced ones."""
    rng = np.random.default_rng([opts.seed, step])  # a resumed run does not repeat the batches it saw
    net.train()
    while not budget.done(step) and not (stop and stop.requested):
        low, sharp = (t.to(device) for t in sample(rng))
        with autocast(device, opts.precision):
            out = net(low).float()
            terms = losses(out, sharp, opts.hf_weight)
            if adversary is not None:
                adversary.disc.requires_grad_(False)
                terms["adv"] = generator_loss(adversary.disc(out))
                terms["loss"] = terms["loss"] + adversary.weight * terms["adv"]
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        if adversary is not None:
            adversary.disc.requires_grad_(True)
            with autocast(device, opts.precision):
                terms["disc"] = discriminator_loss(adversary.disc(sharp), adversary.disc(out.detach()))
            adversary.opt.zero_grad(set_to_none=True)
            terms["disc"].backward()
            adversary.opt.step()
        step += 1
        if on_step is not None:
            on_step(step, {k: float(v.detach()) for k, v in terms.items()})
    return step


def _optimizer(net: EnhanceNet, lr: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(net.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.0)


def train_enhancer(opts: EnhanceTrainOptions, log: Callable[[str], None] = print) -> dict:
    """Train (or resume) the enhancer in `opts.out`; checkpoints are resumable. Returns a summary."""
    if opts.steps is None and opts.minutes is None:
        raise EnhanceError("give a step budget (--steps) or a time budget (--minutes)")
    if opts.patch % EnhanceNet.MULTIPLE or opts.patch > opts.max_size:
        raise EnhanceError(f"--patch {opts.patch} must be a multiple of {EnhanceNet.MULTIPLE} and at most "
                           f"--max-size {opts.max_size}")
    device = resolve_device(opts.device)
    out = Path(opts.out)
    meta: dict = {}
    if opts.resume:
        meta = read_model_json(out)
        data = opts.data or meta["data"]
        config = EnhanceConfig.from_dict(meta["config"])
    else:
        if (out / CHECKPOINT).exists():
            raise EnhanceError(f"{out} already holds an enhancer; --resume it or choose another --out")
        data = opts.data
        config = opts.config
    if not data:
        raise EnhanceError("give the training images with --data")
    pool = PhotoPool(data)
    torch.manual_seed(opts.seed)
    net = EnhanceNet(config).to(device)
    opt = _optimizer(net, opts.lr)
    step = 0
    adversary = None
    if opts.adv_weight > 0:
        disc = PatchDiscriminator().to(device)
        adversary = Adversary(disc, torch.optim.AdamW(disc.parameters(), lr=opts.lr, betas=(0.5, 0.99)),
                              opts.adv_weight)
    modules: dict[str, torch.nn.Module] = {"net": net}
    optimizers: dict[str, torch.optim.Optimizer] = {"opt": opt}
    if opts.resume:
        # A discriminator is resumed when the run had one; one asked for now starts fresh.
        had_disc = float(meta.get("options", {}).get("adv_weight", 0)) > 0
        extra = ({"disc": adversary.disc}, {"disc_opt": adversary.opt}) if adversary and had_disc else ({}, {})
        step = int(load_checkpoint(out / CHECKPOINT, {"net": net, **extra[0]}, {"opt": opt, **extra[1]},
                                   device).get("step", 0))
    elif opts.init:
        init = load_enhancer(opts.init, device)
        if init.config != config:
            config = init.config
            net = EnhanceNet(config).to(device)
            opt = _optimizer(net, opts.lr)
        net.load_state_dict(init.state_dict())
        meta["init"] = {"from": Path(str(opts.init)).name, "steps": init.steps}
    if adversary is not None:
        modules["disc"], optimizers["disc_opt"] = adversary.disc, adversary.opt
    out.mkdir(parents=True, exist_ok=True)
    start_step, started = step, time.monotonic()
    csv = CsvLog(out / "log.csv", ["step", "loss", "l1", "hf", "adv", "disc", "seconds"])
    window: list[dict[str, float]] = []

    def save(step: int) -> None:
        save_checkpoint(out / CHECKPOINT, modules, optimizers, {"step": step})
        history = meta.get("history", []) + [{"steps": step - start_step, "minutes": (time.monotonic() - started) / 60,
                                              "device": str(device), "version": __version__}]
        atomic.write_json(out / MODEL_JSON, dict(meta, config=config.to_dict(), steps=step, data=[str(d) for d in data],
                                                 parameters=parameter_count(net), versions=library_versions(),
                                                 options={"batch_size": opts.batch_size, "patch": opts.patch,
                                                          "max_size": opts.max_size, "lr": opts.lr,
                                                          "hf_weight": opts.hf_weight, "adv_weight": opts.adv_weight,
                                                          "seed": opts.seed},
                                                 history=history))

    def on_step(step: int, terms: dict[str, float]) -> None:
        window.append(terms)
        if step % opts.log_every == 0:
            row = {k: float(np.mean([t[k] for t in window])) for k in window[0]}
            csv.write(dict(row, step=step, seconds=round(time.monotonic() - started, 1)))
            if opts.progress:
                adv = f", adv {row['adv']:.3f}, disc {row['disc']:.3f}" if "adv" in row else ""
                log(f"step {step}: loss {row['loss']:.4f} (l1 {row['l1']:.4f}, hf {row['hf']:.4f}{adv})")
            window.clear()
        if opts.save_every and step % opts.save_every == 0:
            save(step)

    log(f"enhancer: {parameter_count(net):,} parameters, {len(pool)} images, from step {step}, on {device}")
    stop = StopRequest()
    try:
        with stop.installed():
            step = fit(net, opt, lambda rng: sample_batch(pool, rng, opts.batch_size, opts.patch, opts.max_size),
                       Budget(opts.steps, opts.minutes), step, opts, device, stop, on_step, adversary)
    finally:
        save(step)
        csv.close()
    return {"out": str(out), "steps": step, "this_run": step - start_step,
            "minutes": round((time.monotonic() - started) / 60, 2), "stopped": stop.requested}


# The per-subject fine-tuning's learning rate and batch (here and in `run`'s enhancer stage).
FINETUNE_LR, FINETUNE_BATCH = 1e-4, 8


def finetune_enhancer(model: EnhanceNet, subject: str | os.PathLike | list | None = None, minutes: float = 1.5,
                      steps: int | None = None, lr: float = FINETUNE_LR, batch_size: int = FINETUNE_BATCH,
                      patch: int = 96, seed: int = 0, precision: str = "auto",
                      pairs: list[Pair] | None = None, generic_share: float = 0.5) -> EnhanceNet:
    """A copy of `model` fine-tuned for `minutes` (or `steps`) on the subject: on `pairs` (a swap
    model's renderings of the subject's photos and the photos, `swap_pairs`) where given, else on the
    subject's faces (facesets or photo folders) degraded as in training; `model` is left as it was."""
    device = next(model.parameters()).device
    if pairs:
        def sample(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
            return sample_swap_batch(pairs, rng, batch_size, patch, generic_share)
    elif subject is not None:
        pool = PhotoPool(subject if isinstance(subject, list) else [subject], preload=True)

        def sample(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
            return sample_batch(pool, rng, batch_size, patch, max_size=256)
    else:
        raise EnhanceError("fine-tuning needs the subject's faces or swap pairs")
    net = copy.deepcopy(model)
    opts = EnhanceTrainOptions(data=[], out="", batch_size=batch_size, patch=patch, lr=lr, seed=seed,
                               precision=precision)
    fit(net, _optimizer(net, lr), sample, Budget(steps, None if steps is not None else minutes), 0, opts, device)
    net.steps = getattr(model, "steps", 0)
    return net.eval()
