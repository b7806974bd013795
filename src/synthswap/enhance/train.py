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

import numpy as np
import torch
import torch.nn.functional as F

from synthswap import __version__, atomic
from synthswap.enhance.degrade import DEFAULT_DEGRADE, DegradeOptions, make_pair
from synthswap.enhance.model import CHECKPOINT, MODEL_JSON, EnhanceError, load_enhancer, read_model_json
from synthswap.enhance.network import EnhanceConfig, EnhanceNet
from synthswap.faceset import INFO_FILE, Faceset
from synthswap.media import read_crop
from synthswap.options import option
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
    save_every: int = option(500, "checkpoint every N steps (0: only at the end)", minimum=0)
    log_every: int = option(25, "log.csv row every N steps", minimum=1)
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # synthswap.precision: bf16 autocast where this machine runs it faster
    progress: bool = True


class PhotoPool:
    """Sharp face images to degrade: the crops of facesets and the photos of image folders."""

    def __init__(self, data: list[str | os.PathLike], preload: bool = False):
        self._items: list[tuple[Faceset | None, object]] = []
        for entry in data:
            path = Path(entry)
            if (path / INFO_FILE).is_file():
                fs = Faceset.open(path)
                self._items += [(fs, face) for face in fs.faces if not face.synthetic]
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
        return [item.id if fs is not None else item.stem for fs, item in self._items]

    def _load(self, i: int) -> np.ndarray:
        fs, item = self._items[i]
        img = fs.read_image(item) if fs is not None else read_crop(item)
        side = min(img.shape[:2])  # a photo that is not square: its centre square
        y, x = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
        return img[y:y + side, x:x + side]

    def read(self, i: int) -> np.ndarray:
        return self._cache[i] if self._cache is not None else self._load(i)


def sample_batch(pool: PhotoPool, rng: np.random.Generator, batch: int, patch: int, max_size: int,
                 degrade: DegradeOptions = DEFAULT_DEGRADE) -> tuple[torch.Tensor, torch.Tensor]:
    """(degraded, sharp) patches, (B, 3, patch, patch) float in [0, 1]."""
    xs, ys = [], []
    for _ in range(batch):
        img = pool.read(int(rng.integers(len(pool))))
        top = min(img.shape[0], max_size)
        size = int(rng.integers(max(patch, int(0.6 * top)), top + 1))
        low, sharp = make_pair(img, size, rng, degrade)
        y, x = rng.integers(0, size - patch + 1, 2)
        xs.append(low[y:y + patch, x:x + patch])
        ys.append(sharp[y:y + patch, x:x + patch])

    def tensor(arrays):
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255

    return tensor(xs), tensor(ys)


def high_pass(x: torch.Tensor) -> torch.Tensor:
    kernel = _LAPLACIAN.to(x)[None, None].repeat(x.shape[1], 1, 1, 1)
    return F.conv2d(x, kernel, groups=x.shape[1])


def losses(net: EnhanceNet, low: torch.Tensor, sharp: torch.Tensor, hf_weight: float) -> dict[str, torch.Tensor]:
    out = net(low).float()
    l1 = (out - sharp).abs().mean()
    hf = (high_pass(out) - high_pass(sharp)).abs().mean()
    return {"loss": l1 + hf_weight * hf, "l1": l1, "hf": hf}


def fit(net: EnhanceNet, opt: torch.optim.Optimizer, pool: PhotoPool, budget: Budget, step: int,
        opts: EnhanceTrainOptions, device: torch.device, stop: StopRequest | None = None,
        on_step: Callable[[int, dict[str, float]], None] | None = None) -> int:
    """Train until the budget or a stop request ends it; returns the step count reached."""
    rng = np.random.default_rng([opts.seed, step])  # a resumed run does not repeat the batches it saw
    net.train()
    while not budget.done(step) and not (stop and stop.requested):
        low, sharp = sample_batch(pool, rng, opts.batch_size, opts.patch, opts.max_size)
        with autocast(device, opts.precision):
            terms = losses(net, low.to(device), sharp.to(device), opts.hf_weight)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
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
    if opts.resume:
        step = int(load_checkpoint(out / CHECKPOINT, {"net": net}, {"opt": opt}, device).get("step", 0))
    elif opts.init:
        init = load_enhancer(opts.init, device)
        if init.config != config:
            config = init.config
            net = EnhanceNet(config).to(device)
            opt = _optimizer(net, opts.lr)
        net.load_state_dict(init.state_dict())
        meta["init"] = {"from": Path(str(opts.init)).name, "steps": init.steps}
    out.mkdir(parents=True, exist_ok=True)
    start_step, started = step, time.monotonic()
    csv = CsvLog(out / "log.csv", ["step", "loss", "l1", "hf", "seconds"])
    window: list[dict[str, float]] = []

    def save(step: int) -> None:
        save_checkpoint(out / CHECKPOINT, {"net": net}, {"opt": opt}, {"step": step})
        history = meta.get("history", []) + [{"steps": step - start_step, "minutes": (time.monotonic() - started) / 60,
                                              "device": str(device), "version": __version__}]
        atomic.write_json(out / MODEL_JSON, dict(meta, config=config.to_dict(), steps=step, data=[str(d) for d in data],
                                                 parameters=parameter_count(net), versions=library_versions(),
                                                 options={"batch_size": opts.batch_size, "patch": opts.patch,
                                                          "max_size": opts.max_size, "lr": opts.lr,
                                                          "hf_weight": opts.hf_weight, "seed": opts.seed},
                                                 history=history))

    def on_step(step: int, terms: dict[str, float]) -> None:
        window.append(terms)
        if step % opts.log_every == 0:
            row = {k: float(np.mean([t[k] for t in window])) for k in window[0]}
            csv.write(dict(row, step=step, seconds=round(time.monotonic() - started, 1)))
            if opts.progress:
                log(f"step {step}: loss {row['loss']:.4f} (l1 {row['l1']:.4f}, hf {row['hf']:.4f})")
            window.clear()
        if opts.save_every and step % opts.save_every == 0:
            save(step)

    log(f"enhancer: {parameter_count(net):,} parameters, {len(pool)} images, from step {step}, on {device}")
    stop = StopRequest()
    try:
        with stop.installed():
            step = fit(net, opt, pool, Budget(opts.steps, opts.minutes), step,
                       opts, device, stop, on_step)
    finally:
        save(step)
        csv.close()
    return {"out": str(out), "steps": step, "this_run": step - start_step,
            "minutes": round((time.monotonic() - started) / 60, 2), "stopped": stop.requested}


# The per-subject fine-tuning's learning rate and batch (here and in `run`'s enhancer stage).
FINETUNE_LR, FINETUNE_BATCH = 1e-4, 8


def finetune_enhancer(model: EnhanceNet, subject: str | os.PathLike | list, minutes: float = 1.5,
                      steps: int | None = None, lr: float = FINETUNE_LR, batch_size: int = FINETUNE_BATCH,
                      patch: int = 96, seed: int = 0, precision: str = "auto") -> EnhanceNet:
    """A copy of `model` fine-tuned on the subject's own faces (facesets or photo folders, at their
    full resolution, degraded as in training) for `minutes` (or `steps`); `model` is left as it was."""
    device = next(model.parameters()).device
    pool = PhotoPool(subject if isinstance(subject, list) else [subject], preload=True)
    net = copy.deepcopy(model)
    opts = EnhanceTrainOptions(data=[], out="", batch_size=batch_size, patch=patch, lr=lr, seed=seed,
                               precision=precision)
    fit(net, _optimizer(net, lr), pool, Budget(steps, None if steps is not None else minutes), 0, opts, device)
    net.steps = getattr(model, "steps", 0)
    return net.eval()
