"""StyleGAN2 training: non-saturating logistic loss, lazy R1, EMA generator, style mixing, ADA.

One training step = one D update (with R1 every `r1_interval` steps, folded into that
step's loss and scaled by the interval, as lazy regularisation prescribes) and one G
update, each on `batch` images split over the DDP replicas.

Reproducibility: every step re-seeds the RNG from (seed, step, rank), so a run resumed
from a checkpoint draws exactly the batches, latents, noise and augmentations the
uninterrupted run would have drawn.

DDP: like the StyleGAN2-ADA code, gradients are all-reduced by hand after each backward
instead of wrapping the networks in DistributedDataParallel: the G loss runs D with its
parameters frozen and the D loss runs G without gradients, which DDP's hooks do not
model. Replicas start from rank 0's weights and stay identical because each applies the
same averaged gradients; G's running w_avg is averaged across replicas too.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from synthswap.gan.augment import AUGMENT_MODES, AdaController, AugmentPipe
from synthswap.atomic import write_json as atomic_write_json
from synthswap.gan.data import load_faces, make_grid, to_float, to_uint8
from synthswap.locking import LockError, locked_output
from synthswap.media import write_png
from synthswap.gan.loading import CHECKPOINT, CONFIG_FILE, read_gan_json, snapshot_path
from synthswap.gan.networks import PRESETS, RESOLUTIONS, Discriminator, GanConfig, Generator, make_config
from synthswap.gan.sample import generate_uint8
from synthswap.metrics.fid import InceptionFeatures, fid_kid
from synthswap.options import option
from synthswap.precision import resolve_precision
from synthswap.training import (
    Budget, CheckpointError, CsvLog, DistInfo, StopRequest,
    init_distributed, library_versions, load_checkpoint, parameter_count, process_group, save_checkpoint,
)

GRID_SEEDS = 32  # the fixed latents of every sample grid (8 x 4)


@dataclass
class GanTrainOptions:
    data: list[str]
    out: str
    resolution: int = option(64, "image size (facesets must be at least this large)", choices=RESOLUTIONS)
    preset: str = option("cpu", "channel widths: tiny (tests), cpu (16-128 channels, for CPUs), cpu-wide (4x its "
                                "FLOPs), gpu (StyleGAN2 config-f widths)", choices=PRESETS, flag="config")
    batch: int = option(32, "images per step over all processes", minimum=1)
    kimg: float | None = option(None, "stop after this many thousand real images shown to D", above=0)
    minutes: float | None = option(None, "stop after this many minutes (checkpoint saved)", above=0)
    g_lr: float = option(0.0025, "generator Adam learning rate", above=0)
    d_lr: float = option(0.0025, "discriminator Adam learning rate", above=0)
    r1_gamma: float = option(0.5, "R1 weight (0 disables R1)", minimum=0)
    r1_interval: int = option(16, "apply R1 every N steps (lazy regularisation)", minimum=1)
    style_mixing: float = option(0.9, "style-mixing probability", minimum=0, maximum=1)
    ema_kimg: float | None = None  # default: 10 kimg per 32 images of batch, as StyleGAN2-ADA
    ema_rampup: float = 0.05
    augment: str = option("ada", "ada: adaptive p; fixed: constant --aug-p (--aug-p 1 is plain DiffAugment); none",
                          choices=AUGMENT_MODES)
    aug_policy: str = option("color,translation,cutout", "DiffAugment ops, comma separated")
    # The initial p for ada; the constant p for fixed.
    aug_p: float = option(0.0, "initial (ada) or constant (fixed) probability", minimum=0, maximum=1)
    ada_target: float = option(0.6, "ADA target for r_t = E[sign(D(real))]; above it p rises", minimum=0, maximum=1)
    ada_kimg: float = option(20.0, "ADA speed: kimg for p to move by 1 (the default suits CPU runs of tens of kimg; "
                                   "runs of thousands want hundreds)", above=0)
    masked: bool = option(True, "train on the whole aligned crop instead of the masked face over flat grey",
                          flag="full-crop")
    mirror: bool = option(True, "do not x-flip training images at random", flag="no-mirror")
    max_images: int | None = option(None, "use at most N faces of the facesets (a random subset)", minimum=1)
    snap_kimg: float = option(4.0, "sample grid + checkpoint every N kimg", above=0)
    keep_snapshots: bool = option(False, "also keep G_ema (fp16) of every --snap-kimg in snapshots/, for "
                                         "`gan fid --snapshots`")
    fid_kimg: float | None = option(None, "log FID/KID every N kimg (default: never during training)", above=0)
    fid_n: int = option(500, "generated images per FID during training", minimum=1)
    fid_ref_n: int = option(1000, "training images in the FID reference", minimum=1)
    log_seconds: float = option(30.0, "progress line every N seconds", above=0)
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # G's and D's passes: bf16 where faster (synthswap.precision)
    threads: int | None = None
    resume: bool = False
    verbose: bool = True

    def __post_init__(self) -> None:
        if self.augment not in AUGMENT_MODES:
            raise ValueError(f"--augment must be one of {', '.join(AUGMENT_MODES)}, not {self.augment}")
        if self.kimg is None and self.minutes is None:
            raise ValueError("give a training budget: --kimg, --minutes or both")


def _step_seed(seed: int, step: int, rank: int) -> int:
    return (seed * 1_000_003 + step * 8191 + rank * 131) % (2**63 - 1)


def _all_reduce_grads(module: torch.nn.Module, world_size: int) -> None:
    params = [p for p in module.parameters() if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= world_size
    for p, g in zip(params, flat.split([g.numel() for g in grads])):
        p.grad = g.reshape(p.shape).clone()


def _broadcast_module(module: torch.nn.Module) -> None:
    for tensor in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(tensor.data, src=0)


class GanTrainError(ValueError):
    """Training that cannot go on (a loss that went NaN or infinite): the CLI prints it in one line."""


class GanTrainer:
    """Holds the networks, optimizers, data and counters; `run()` trains until the budget ends."""

    def __init__(self, opts: GanTrainOptions, dist_info: DistInfo | None = None, device: torch.device | None = None):
        self.opts = opts
        self.out = Path(opts.out)
        if dist_info is None or device is None:
            dist_info, device = init_distributed(opts.device)
        self.dist, self.device = dist_info, device
        if opts.threads:
            torch.set_num_threads(opts.threads)
        self.precision = resolve_precision(opts.precision, device)
        if opts.batch % dist_info.world_size != 0:
            raise ValueError(f"--batch {opts.batch} must divide evenly over {dist_info.world_size} processes")
        self.batch_gpu = opts.batch // dist_info.world_size

        ckpt = self.out / CHECKPOINT
        saved = None
        if opts.resume:
            if not ckpt.is_file():
                raise CheckpointError(f"{ckpt}: nothing to resume (train without --resume first)")
            saved = self._read_config_file()
            self.cfg = GanConfig.from_dict(saved["config"])
        else:
            if ckpt.exists():
                raise FileExistsError(f"{self.out} already holds a GAN; pass --resume to continue it, or another --out")
            self.cfg = make_config(opts.resolution, opts.preset)

        torch.manual_seed(opts.seed)  # the same initial weights on every replica
        self.G = Generator(self.cfg).to(device)
        self.D = Discriminator(self.cfg).to(device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        if device.type == "cuda":
            for net in (self.G, self.D, self.G_ema):
                net.to(memory_format=torch.channels_last)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=opts.g_lr, betas=(0.0, 0.99), eps=1e-8)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=opts.d_lr, betas=(0.0, 0.99), eps=1e-8)
        self.pipe = AugmentPipe(opts.aug_policy, p=opts.aug_p if opts.augment != "none" else 0.0)
        self.ada = AdaController(self.pipe, opts.ada_target, speed_kimg=opts.ada_kimg) if opts.augment == "ada" else None

        self.step = 0
        self.cur_nimg = 0
        if saved is not None:
            state = load_checkpoint(ckpt, self.modules(), self.optimizers(), map_location=device)
            self.step = int(state["step"])
            self.cur_nimg = int(state["cur_nimg"])
            self.pipe.p = float(state["aug_p"])
            if self.ada is not None and "ada" in state:
                self.ada.load_state_dict(state["ada"])
        if dist_info.enabled:
            for net in (self.G, self.D, self.G_ema):
                _broadcast_module(net)

        self.reals = load_faces(opts.data, self.cfg.resolution, masked=opts.masked,
                                limit=opts.max_images, seed=opts.seed).to(device)
        self.grid_z = torch.randn(GRID_SEEDS, self.cfg.z_dim, generator=torch.Generator().manual_seed(opts.seed))
        self._fid = None  # (InceptionFeatures, reference features), built at the first FID

    # -- bookkeeping -----------------------------------------------------------------------

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G, "D": self.D, "G_ema": self.G_ema}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_G, "D": self.opt_D}

    def _read_config_file(self) -> dict:
        return read_gan_json(self.out)

    def save(self) -> None:
        if not self.dist.is_main:
            return
        meta = {
            "config": self.cfg.to_dict(),
            "options": {k: v for k, v in asdict(self.opts).items() if k not in ("resume", "verbose")},
            "versions": library_versions(),
            "kimg": self.cur_nimg / 1000,
        }
        save_checkpoint(self.out / CHECKPOINT, self.modules(), self.optimizers(),
                        {"step": self.step, "cur_nimg": self.cur_nimg, "aug_p": self.pipe.p, "config": self.cfg.to_dict(),
                         "ada": self.ada.state_dict() if self.ada is not None else None})
        atomic_write_json(self.out / CONFIG_FILE, meta)

    def save_snapshot(self) -> None:
        """G_ema alone, in fp16, as snapshots/kimgNNNNNN.NNN.safetensors: for FID against kimg afterwards."""
        if not self.dist.is_main:
            return
        kimg = self.cur_nimg / 1000
        save_checkpoint(snapshot_path(self.out, kimg),
                        {"G_ema": copy.deepcopy(self.G_ema).half()},
                        state={"kimg": kimg, "step": self.step, "config": self.cfg.to_dict()})

    def log(self, msg: str) -> None:
        if self.dist.is_main and self.opts.verbose:
            print(msg, flush=True)

    # -- one step --------------------------------------------------------------------------

    def _latents(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.z_dim, device=self.device)

    def _generate(self, n: int, update_w_avg: bool) -> torch.Tensor:
        """G(z) with style mixing: with probability p, layers from a random cutoff on take a second latent's w."""
        w = self.G.mapping(self._latents(n), update_w_avg=update_w_avg)
        ws = self.G.broadcast(w)
        if self.opts.style_mixing > 0:
            w2 = self.G.broadcast(self.G.mapping(self._latents(n)))
            cutoff = int(torch.randint(1, self.cfg.num_ws, ()))
            if float(torch.rand(())) < self.opts.style_mixing:
                ws = torch.cat([ws[:, :cutoff], w2[:, cutoff:]], dim=1)
        return self.G.synthesis(ws)

    def _real_batch(self) -> torch.Tensor:
        idx = torch.randint(0, self.reals.shape[0], (self.batch_gpu,), device=self.device)
        x = to_float(self.reals[idx])
        if self.opts.mirror:
            flip = torch.rand(self.batch_gpu, 1, 1, 1, device=self.device) < 0.5
            x = torch.where(flip, x.flip(3), x)
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def train_step(self) -> dict[str, torch.Tensor | float]:
        opts = self.opts
        torch.manual_seed(_step_seed(opts.seed, self.step, self.dist.rank))
        stats: dict[str, torch.Tensor | float] = {}

        # D: softplus(D(fake)) + softplus(-D(real)), plus lazy R1 on reals.
        do_r1 = opts.r1_gamma > 0 and opts.r1_interval > 0 and self.step % opts.r1_interval == 0
        self.D.requires_grad_(True)
        real = self._real_batch().detach().requires_grad_(do_r1)
        with torch.no_grad(), self.precision.autocast():
            fake = self._generate(self.batch_gpu, update_w_avg=False)
        with self.precision.autocast():
            fake_logits = self.D(self.pipe(fake.detach()))
            real_logits = self.D(self.pipe(real))
        loss_D = F.softplus(fake_logits.float()).mean() + F.softplus(-real_logits.float()).mean()
        if do_r1:
            (grad,) = torch.autograd.grad(real_logits.float().sum(), real, create_graph=True)
            r1 = grad.float().square().sum(dim=[1, 2, 3]).mean()
            loss_D = loss_D + r1 * (opts.r1_gamma / 2) * opts.r1_interval
            stats["r1"] = r1.detach()
        self._stop_if_diverged("discriminator", loss_D)
        self.opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        if self.dist.enabled:
            _all_reduce_grads(self.D, self.dist.world_size)
        self.opt_D.step()
        if self.ada is not None:
            self.ada.accumulate(real_logits)
            self.ada.step(opts.batch)
        # Tensors, not floats: converting here would wait for the GPU every step; the log does it.
        stats.update(loss_D=loss_D.detach(), D_real=real_logits.detach().float().mean(),
                     D_fake=fake_logits.detach().float().mean())

        # G: non-saturating softplus(-D(G(z))), D frozen.
        self.D.requires_grad_(False)
        with self.precision.autocast():
            fake = self._generate(self.batch_gpu, update_w_avg=True)
            logits = self.D(self.pipe(fake))
        loss_G = F.softplus(-logits.float()).mean()
        self._stop_if_diverged("generator", loss_G)
        self.opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        if self.dist.enabled:
            _all_reduce_grads(self.G, self.dist.world_size)
            dist.all_reduce(self.G.mapping.w_avg)
            self.G.mapping.w_avg /= self.dist.world_size
        self.opt_G.step()
        stats["loss_G"] = loss_G.detach()

        self.cur_nimg += opts.batch
        self.step += 1
        self._update_ema()
        stats["aug_p"] = self.pipe.p
        stats["rt"] = self.ada.rt if self.ada is not None else float("nan")
        return stats

    def _stop_if_diverged(self, what: str, loss: torch.Tensor) -> None:
        """Stop before a non-finite loss reaches the weights (the checkpoint on disk is the last good
        one). On a CPU the check costs nothing. On a GPU it would wait for the device every step, and
        with several processes one alone would stop while the others wait for it: there the log line
        checks instead (in `train`), and `save` refuses NaN weights."""
        if self.device.type == "cuda" or self.dist.enabled or torch.isfinite(loss.detach()):
            return
        raise self._diverged(f"at step {self.step + 1} (the {what}'s loss is {float(loss.detach())})")

    def _diverged(self, when: str) -> GanTrainError:
        return GanTrainError(f"training diverged {when}; the last good checkpoint in {self.out} is kept: lower "
                             f"--g-lr/--d-lr and run again with --resume")

    @torch.no_grad()
    def _update_ema(self) -> None:
        ema_kimg = self.opts.ema_kimg if self.opts.ema_kimg is not None else 10 * self.opts.batch / 32
        ema_nimg = ema_kimg * 1000
        if self.opts.ema_rampup:
            ema_nimg = min(ema_nimg, self.cur_nimg * self.opts.ema_rampup)
        beta = 0.5 ** (self.opts.batch / max(ema_nimg, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # -- outputs ---------------------------------------------------------------------------

    @torch.no_grad()
    def sample_grid(self, path: Path) -> None:
        if not self.dist.is_main:
            return
        imgs = self.G_ema(self.grid_z.to(self.device), noise_mode="const")
        write_png(path, make_grid(to_uint8(imgs).cpu(), cols=8))

    def fid(self) -> dict[str, float]:
        """FID/KID of `fid_n` G_ema images against up to `fid_ref_n` training images (as trained on)."""
        if self._fid is None:
            net = InceptionFeatures(self.device)
            cache = self.out / f"fid_ref_{self.reals.shape[0]}_{self.opts.fid_ref_n}.npy"
            if cache.is_file():
                ref = np.load(cache)
            else:
                gen = torch.Generator().manual_seed(self.opts.seed)
                idx = torch.randperm(self.reals.shape[0], generator=gen)[: self.opts.fid_ref_n]
                ref = net(self.reals[idx.to(self.reals.device)].cpu())
                np.save(cache, ref)
            self._fid = (net, ref)
        net, ref = self._fid
        fake = generate_uint8(self.G_ema, self.opts.fid_n, seed=self.opts.seed + 1, device=self.device)
        return fid_kid(net(fake), ref)

    # -- the loop --------------------------------------------------------------------------

    def _agree(self, *flags: bool) -> tuple[bool, ...]:
        """Under DDP every replica must stop at the same step (clocks and signals differ): OR the flags."""
        if not self.dist.enabled:
            return flags
        t = torch.tensor([float(f) for f in flags])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return tuple(bool(v) for v in t)

    def run(self) -> dict[str, float]:
        opts = self.opts
        is_main = self.dist.is_main
        if is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "samples").mkdir(exist_ok=True)
        steps = None if opts.kimg is None else math.ceil(opts.kimg * 1000 / opts.batch)
        budget = Budget(steps=steps, minutes=opts.minutes)
        log = CsvLog(self.out / "log.csv", ["step", "kimg", "seconds", "img_s", "loss_G", "loss_D", "r1",
                                            "D_real", "D_fake", "aug_p", "rt"]) if is_main else None
        fid_log = CsvLog(self.out / "fid.csv", ["kimg", "seconds", "fid", "kid", "n_fake", "n_real"]) \
            if is_main and opts.fid_kimg else None
        self.log(f"GAN {self.cfg.resolution}px: G {parameter_count(self.G) / 1e6:.2f} M, "
                 f"D {parameter_count(self.D) / 1e6:.2f} M parameters; {self.reals.shape[0]} training faces; "
                 f"batch {opts.batch} over {self.dist.world_size} process(es) on {self.device}, "
                 f"precision {self.precision.describe()}")
        if self.step == 0:
            if is_main:
                write_png(self.out / "reals.png", make_grid(self.reals[:GRID_SEEDS].cpu(), cols=8))
            self.sample_grid(self.out / "samples" / "kimg0000.0.png")
            self.save()
        t_start = time.monotonic()
        t_log = t_start
        nimg_log = self.cur_nimg
        next_snap = (math.floor(self.cur_nimg / 1000 / opts.snap_kimg) + 1) * opts.snap_kimg
        next_fid = (math.floor(self.cur_nimg / 1000 / opts.fid_kimg) + 1) * opts.fid_kimg if opts.fid_kimg else None
        acc: dict[str, list[torch.Tensor | float]] = {}
        fid_result: dict[str, float] = {}
        stop = StopRequest()
        stop_reason = "budget"
        with stop.installed():
            while True:
                done, stop_now = self._agree(budget.done(self.step), stop.requested)
                if stop_now:
                    stop_reason = "signal"
                    break
                if done:
                    break
                stats = self.train_step()
                for k, v in stats.items():
                    acc.setdefault(k, []).append(v)
                kimg = self.cur_nimg / 1000
                now = time.monotonic()
                if now - t_log >= opts.log_seconds or budget.done(self.step):
                    img_s = (self.cur_nimg - nimg_log) / max(now - t_log, 1e-9)
                    row = {k: float(np.nanmean([float(x) for x in v])) if v else float("nan") for k, v in acc.items()}
                    row.update(step=self.step, kimg=round(kimg, 3), seconds=round(now - t_start, 1), img_s=round(img_s, 2))
                    if not all(math.isfinite(row[k]) for k in ("loss_D", "loss_G")):  # a GPU's check (above)
                        raise self._diverged(f"before step {self.step} (losses G {row['loss_G']}, D {row['loss_D']})")
                    if log is not None:
                        log.write(row)
                    eta = ""
                    if opts.kimg is not None:
                        eta = f"/{opts.kimg:g}"
                    self.log(f"kimg {kimg:8.3f}{eta}  {img_s:6.1f} img/s  {img_s / 1000:.4f} kimg/s  "
                             f"G {row['loss_G']:.3f}  D {row['loss_D']:.3f}  D(real) {row['D_real']:+.2f}  "
                             f"D(fake) {row['D_fake']:+.2f}  p {self.pipe.p:.3f}  rt {row['rt']:.2f}")
                    acc = {}
                    t_log, nimg_log = now, self.cur_nimg
                if kimg >= next_snap:
                    self.sample_grid(self.out / "samples" / f"kimg{kimg:06.1f}.png")
                    self.save()
                    if opts.keep_snapshots:
                        self.save_snapshot()
                    next_snap += opts.snap_kimg
                if next_fid is not None and kimg >= next_fid:
                    if is_main:
                        t = time.monotonic()
                        fid_result = self.fid()
                        fid_log.write({"kimg": round(kimg, 3), "seconds": round(t - t_start, 1),
                                       "fid": round(fid_result["fid"], 3), "kid": round(fid_result["kid"], 5),
                                       "n_fake": opts.fid_n, "n_real": self._fid[1].shape[0]})
                        self.log(f"kimg {kimg:8.3f}  FID {fid_result['fid']:.2f}  KID {fid_result['kid']:.4f}  "
                                 f"({time.monotonic() - t:.0f} s)")
                    next_fid += opts.fid_kimg
        self.sample_grid(self.out / "samples" / f"kimg{self.cur_nimg / 1000:06.1f}.png")
        self.save()
        for handle in (log, fid_log):
            if handle is not None:
                handle.close()
        elapsed = time.monotonic() - t_start
        self.log(f"stopped ({stop_reason}) at kimg {self.cur_nimg / 1000:.3f}, step {self.step}; "
                 f"checkpoint {self.out / CHECKPOINT}")
        return {"kimg": self.cur_nimg / 1000, "step": self.step, "seconds": elapsed, "stopped_by": stop_reason,
                **{f"last_{k}": v for k, v in fid_result.items()}}


def train(opts: GanTrainOptions) -> dict:
    """Entry point for the CLI and for torchrun: joins the process group if there is one."""
    with process_group(opts.device) as (dist_info, device):
        try:
            if not dist_info.is_main:
                return GanTrainer(opts, dist_info, device).run()
            with locked_output(opts.out, "GAN folder"):  # one writer per GAN folder
                return GanTrainer(opts, dist_info, device).run()
        except LockError as exc:
            raise CheckpointError(str(exc)) from exc
