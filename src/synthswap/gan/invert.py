"""`gan invert`: place the subject's photos in the GAN (W+ projection), then pivotal tuning.

1. Projection. One W+ latent per photo, started at the mean w, optimised with Adam
   against: a pixel loss (L1 on the face mask), a perceptual loss on the trained
   discriminator's features (channel-normalised, LPIPS-style: LPIPS itself downloads its
   backbone, D ships with the GAN), a landmark loss (a small CNN regressor trained on the
   GAN's faces, `landmark_net`, compares where the eyes, brows and lips are), and a weak
   pull of the layers of each W+ towards their mean (W+ far from W edits badly).
2. Pivotal tuning (Roich et al. 2021). A copy of the synthesis network is fine-tuned so
   that the pivots reproduce the photos, with a locality regulariser: latents sampled
   around the pivots (random w pulled towards them) must render as the original
   generator renders them, which keeps the rest of the latent space, and so the edit
   directions, intact.

Outputs (INV_DIR): pivots.safetensors (W+ per photo), generator.safetensors (the tuned
generator), inversion.json (paths, options, per-photo errors and identity cosines for the
mean w, the projection and PTI) and preview.png (rows: photo, projection, PTI).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from tqdm import tqdm

from synthswap.atomic import write_json as atomic_write_json
from synthswap.faces.dlib_identity import DlibIdentityModel
from synthswap.faces.pipeline import FaceAnalyzer
from synthswap.faces.sface_torch import sface_identity
from synthswap.faceset import Faceset, FacesetError
from synthswap.gan.data import compose, make_grid, to_bgr_images, to_uint8
from synthswap.faces.landmark_net import landmark_targets, train_landmark_net
from synthswap.gan.loading import load_discriminator, load_generator, read_gan_json
from synthswap.gan.networks import GanConfig, Generator
from synthswap.info import read_info_json
from synthswap.media import write_png
from synthswap.options import option
from synthswap.precision import resolve_precision
from synthswap.training import (atomic_save_tensors, library_versions, load_checkpoint, load_tensors, resolve_device,
                                save_checkpoint)

PIVOTS_FILE = "pivots.safetensors"
GENERATOR_FILE = "generator.safetensors"
INFO_FILE = "inversion.json"


class InversionError(Exception):
    pass


@dataclass
class InvertOptions:
    gan: str
    faces: str
    out: str
    max_photos: int = option(50, "invert at most the first N faces", minimum=1)
    steps: int = option(300, "projection steps", minimum=1)
    lr: float = option(0.05, "projection learning rate", above=0)
    pti_steps: int = option(300, "pivotal tuning steps (0 = none)", minimum=0)
    pti_lr: float = option(3e-3, "pivotal tuning learning rate", above=0)
    w_pixel: float = 1.0
    w_perceptual: float = option(0.1, "perceptual (D features) loss weight", minimum=0)
    w_landmark: float = option(20.0, "landmark loss weight (0: off)", minimum=0)
    w_layers: float = 0.02  # pull of W+ layers towards their mean
    locality: float = option(1.0, "PTI locality regulariser weight (0: off)", minimum=0)
    locality_radius: float = 0.5  # in units of the spread of w around its mean
    landmark_steps: int = option(400, "training steps of the landmark regressor (0: no landmark loss)", minimum=0)
    # Identity term (SFace in torch): 1 - cosine of each render to its photo's full-resolution crop,
    # every `identity_every` steps of the projection and of pivotal tuning (0: off). Measured on 2
    # photos of d14 (32 px test prior): 0.05 took dlib's distance after PTI from 0.531 to 0.476 at
    # the same pixel error; 0.2 made it worse (0.707) and 0.5 left no render found as a face: SFace
    # is easily fooled, so the term must stay small beside the pixel loss.
    w_identity: float = option(0.05, "identity loss weight: 1 - SFace cosine of each render to its photo (0: off)",
                               minimum=0)
    identity_every: int = option(2, "apply the identity loss every N steps (each application costs an SFace pass "
                                    "per photo)", minimum=1)
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # the generator's and judges' forward passes (synthswap.precision)
    threads: int | None = None
    progress: bool = True


@dataclass
class Inversion:
    G: torch.nn.Module
    pivots: torch.Tensor  # (k, num_ws, w_dim)
    subject: Faceset  # the inverted photos, in pivot order
    info: dict


def perceptual(D, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image distance of channel-normalised discriminator features, summed over blocks."""
    total = 0.0
    for fx, fy in zip(D.features(x), D.features(y)):
        fx, fy = fx.float(), fy.float()  # features may come out of a bf16 autocast region
        fx = fx / (fx.norm(dim=1, keepdim=True) + 1e-8)
        fy = fy / (fy.norm(dim=1, keepdim=True) + 1e-8)
        total = total + (fx - fy).square().sum(1).mean(dim=[1, 2])
    return total


def _prepare(fs: Faceset, faces, resolution: int, masked: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (k, 3, R, R) uint8 RGB as the GAN was trained on them, and face masks (k, 1, R, R) in [0, 1]."""

    imgs, masks = [], []
    for f in faces:
        bgr, mask = fs.read_image(f), fs.read_mask(f)
        imgs.append(compose(bgr, mask if masked else None, resolution))
        masks.append(cv2.resize(mask, (resolution, resolution), interpolation=cv2.INTER_AREA))
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()
    m = torch.from_numpy(np.stack(masks)).float().div(255)[:, None]
    return x, m


def _landmark_data(paths: list[str], subject: Faceset, faces, resolution: int, masked: bool,
                   limit: int = 600, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Training images + landmark labels for the regressor: the GAN's faces (when their facesets
    are still there) and the subject's photos."""

    items = [(subject, f) for f in faces]
    pool = []
    for p in paths:
        try:
            fs = Faceset.open(p)
        except FacesetError:
            continue
        pool += [(fs, row) for row in range(len(fs))]
    if pool:
        pick = np.random.default_rng(seed).permutation(len(pool))[:limit]
        items += [(fs, fs.faces[row]) for fs, row in (pool[i] for i in sorted(pick))]
    imgs, ys = [], []
    for fs, f in items:
        imgs.append(compose(fs.read_image(f), fs.read_mask(f) if masked else None, resolution))
        ys.append(landmark_targets(f.landmarks, fs.size))
    return (torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(np.stack(ys)))


class _Judge:
    """Reconstruction error and identity of rendered faces against the real photos: SFace cosine
    (now also a training signal here) and dlib's L2 distance (never one: the honest figure)."""

    def __init__(self, subject: Faceset, faces, targets: torch.Tensor, masks: torch.Tensor):
        self.analyzer = FaceAnalyzer(128, with_identity=True)
        self.dlib = DlibIdentityModel()
        self.ids = np.array([f.identity for f in faces], np.float32)
        self.dlib_ids = [self.dlib.embed(subject.read_image(f), f.landmarks_array()) for f in faces]
        self.targets = targets.float() / 127.5 - 1
        self.masks = masks

    def close(self) -> None:
        self.analyzer.close()

    def identity(self, bgr: np.ndarray, k: int) -> tuple[float, float]:
        """(SFace cosine, dlib distance) of a render to photo k; nan when no face is found."""
        # x2 up: SFace's alignment crop of a 64 px face is mostly interpolation either way,
        # but detection and landmarks are surer on the larger copy.
        big = cv2.resize(bgr, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
        face = self.analyzer.analyze(big)
        if face is None:
            return float("nan"), float("nan")
        dlib_distance = float(np.linalg.norm(self.dlib.embed(big, face.landmarks_frame) - self.dlib_ids[k]))
        return float(face.identity @ self.ids[k]), dlib_distance

    def __call__(self, imgs: torch.Tensor) -> dict[str, list[float]]:
        err = ((imgs.float() - self.targets).square() * self.masks).sum(dim=[1, 2, 3]) / (
            self.masks.sum(dim=[1, 2, 3]) * 3)
        ids = [self.identity(b, k) for k, b in enumerate(to_bgr_images(imgs))]
        return {"mse": [round(float(e), 5) for e in err], "identity": [round(c, 4) for c, _ in ids],
                "identity_dlib": [round(d, 4) for _, d in ids]}


def _mean(xs: list[float]) -> float:
    a = np.asarray(xs, np.float64)
    a = a[np.isfinite(a)]
    return round(float(a.mean()), 4) if len(a) else float("nan")


def invert(opts: InvertOptions, log: Callable[[str], None] = print) -> dict:

    t0 = time.perf_counter()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    out = Path(opts.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InversionError(f"{out}: exists and is not empty; choose a new --out")
    if opts.steps < 1 or opts.pti_steps < 0 or opts.max_photos < 1 or opts.identity_every < 1:
        raise InversionError("--steps, --max-photos and --identity-every must be at least 1, --pti-steps at least 0")
    if opts.w_identity < 0:
        raise InversionError("--w-identity must not be negative")
    subject = Faceset.open(opts.faces)
    faces = subject.faces[:opts.max_photos]
    if not faces:
        raise InversionError(f"{opts.faces}: the subject faceset has no faces")
    if any(len(f.identity) == 0 for f in faces):
        raise InversionError(f"{opts.faces}: faces have no identity embedding; re-extract them")
    device = resolve_device(opts.device)
    precision = resolve_precision(opts.precision, device)
    log(f"precision: {precision.describe()}")
    G, cfg = load_generator(opts.gan, ema=True, device=device)
    D, _ = load_discriminator(opts.gan, device=device)
    gan_info = read_gan_json(opts.gan)
    masked = bool(gan_info.get("options", {}).get("masked", True))
    gan_data = [str(Path(p).resolve()) for p in gan_info.get("options", {}).get("data", [])]
    res, k = cfg.resolution, len(faces)
    torch.manual_seed(opts.seed)

    targets_u8, masks = _prepare(subject, faces, res, masked)
    targets = (targets_u8.float() / 127.5 - 1).to(device)
    masks = masks.to(device)
    # The pixel loss weighs the face; a little weight outside keeps the background sane.
    pix_w = (0.9 * masks + 0.1)

    lm_net, lm_err = None, float("nan")
    if opts.landmark_steps > 0 and opts.w_landmark > 0:
        x_lm, y_lm = _landmark_data(gan_data, subject, faces, res, masked, seed=opts.seed)
        lm_net, lm_err = train_landmark_net(x_lm, y_lm, steps=opts.landmark_steps, seed=opts.seed, device=device,
                                            autocast=precision.autocast)
        log(f"landmark regressor: {len(x_lm)} faces, mean error {lm_err:.2f} px at {res} px")
        with torch.no_grad():
            lm_target = lm_net(targets)

    identity = sface_identity(device) if opts.w_identity > 0 else None
    if identity is not None:
        with torch.no_grad():  # who each photo shows: its full-resolution crop, background and all
            crops = np.stack([subject.read_image(f) for f in faces]).transpose(0, 3, 1, 2)
            id_target = identity(torch.from_numpy(np.ascontiguousarray(crops)).float().to(device) / 255)

    def losses(imgs: torch.Tensor, step: int) -> torch.Tensor:
        loss = opts.w_pixel * ((imgs - targets).abs() * pix_w).mean(dim=[1, 2, 3])
        with precision.autocast():
            loss = loss + opts.w_perceptual * perceptual(D, imgs, targets)
        if lm_net is not None:
            with precision.autocast():
                points = lm_net(imgs)
            loss = loss + opts.w_landmark * (points.float() - lm_target).square().sum(-1).mean(-1)
        if identity is not None and step % opts.identity_every == 0:
            bgr01 = (imgs.flip(1) + 1) / 2  # the generator's RGB in [-1, 1] -> the identity net's BGR in [0, 1]
            loss = loss + opts.w_identity * (1 - (identity(bgr01) * id_target).sum(1))
        return loss.sum()

    judge = _Judge(subject, faces, targets_u8, masks.cpu())
    with torch.no_grad():
        w_avg = G.w_avg.detach().clone()
        start_imgs = G.synthesis(G.broadcast(w_avg[None].repeat(k, 1)), noise_mode="const")
        w_s = G.mapping(torch.randn(2000, G.z_dim, device=device))
        w_spread = float((w_s - w_avg).norm(dim=1).square().mean().sqrt())
    metrics = {"mean_w": judge(start_imgs.cpu())}
    ceiling = [judge.identity(b, i)[0] for i, b in enumerate(to_bgr_images(targets.cpu()))]

    # ---- 1. projection into W+
    ws = G.broadcast(w_avg[None].repeat(k, 1)).clone().requires_grad_(True)
    opt = torch.optim.Adam([ws], lr=opts.lr, betas=(0.9, 0.999))
    it = range(opts.steps)
    if opts.progress:
        it = tqdm(it, desc=f"invert {k} photo(s)", unit="step")
    for step in it:
        t = step / max(opts.steps - 1, 1)
        # StyleGAN2 projector schedule: short warm-up, cosine ramp-down over the last quarter.
        ramp_down = min(1.0, (1 - t) / 0.25)
        lr = opts.lr * (0.5 - 0.5 * math.cos(math.pi * ramp_down)) * min(1.0, t / 0.05 + 0.1)
        for g in opt.param_groups:
            g["lr"] = max(lr, opts.lr * 0.01)
        with precision.autocast():
            imgs = G.synthesis(ws, noise_mode="const").float()
        loss = losses(imgs, step) + opts.w_layers * (ws - ws.mean(1, keepdim=True)).square().sum(-1).mean(-1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    pivots = ws.detach()
    with torch.no_grad():
        metrics["projection"] = judge(G.synthesis(pivots, noise_mode="const").cpu())

    # ---- 2. pivotal tuning with the locality regulariser
    G_t = copy.deepcopy(G)
    G_t.synthesis.requires_grad_(True)
    opt = torch.optim.Adam(G_t.synthesis.parameters(), lr=opts.pti_lr)
    centre = pivots.mean(dim=[0, 1])
    gen = torch.Generator().manual_seed(opts.seed + 1)
    it = range(opts.pti_steps)
    if opts.progress and opts.pti_steps:
        it = tqdm(it, desc="pivotal tuning", unit="step")
    for step in it:
        with precision.autocast():
            imgs = G_t.synthesis(pivots, noise_mode="const").float()
        loss = losses(imgs, step)
        if opts.locality > 0:
            with torch.no_grad():
                w_r = G.mapping(torch.randn(4, G.z_dim, generator=gen).to(device))
                d = w_r - centre
                w_loc = centre + opts.locality_radius * w_spread * d / d.norm(dim=1, keepdim=True)
                ref = G.synthesis(G.broadcast(w_loc), noise_mode="const")
            with precision.autocast():
                img_loc = G_t.synthesis(G.broadcast(w_loc), noise_mode="const").float()
                local_perceptual = perceptual(D, img_loc, ref).sum()
            loss = loss + opts.locality * ((img_loc - ref).square().mean(dim=[1, 2, 3]).sum()
                                           + opts.w_perceptual * local_perceptual)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    G_t.eval().requires_grad_(False)
    with torch.no_grad():
        pti_imgs = G_t.synthesis(pivots, noise_mode="const")
        metrics["pti"] = judge(pti_imgs.cpu())
        # Locality: how much the tuned generator changed faces far from the pivots (random w).
        w_far = G.mapping(torch.randn(16, G.z_dim, generator=gen).to(device))
        drift = float((G_t.synthesis(G.broadcast(w_far), noise_mode="const")
                       - G.synthesis(G.broadcast(w_far), noise_mode="const")).abs().mean())
    judge.close()

    summary = {
        "photos": k,
        "mse": {stage: _mean(m["mse"]) for stage, m in metrics.items()},
        # Mean over the renders found as a face; `found` counts them (a render that is not
        # found as a face at all is the worst identity outcome).
        "identity": {stage: _mean(m["identity"]) for stage, m in metrics.items()},
        # dlib's distance to each photo (same person below 0.6): the judge SFace-trained renders cannot flatter.
        "identity_dlib": {stage: _mean(m["identity_dlib"]) for stage, m in metrics.items()},
        "found": {stage: int(np.isfinite(np.asarray(m["identity"], float)).sum()) for stage, m in metrics.items()},
        "identity_ceiling": _mean(ceiling),  # the real photo itself at the GAN's resolution
        "locality_drift": round(drift, 4),  # mean |pixel change| on random samples, [-1, 1] units
        "landmark_regressor_error_px": round(lm_err, 3) if np.isfinite(lm_err) else None,
        "seconds": 0.0,
    }

    # Written last, and inversion.json last of all: a run that stops early leaves no
    # folder that load_inversion would accept.
    out.mkdir(parents=True, exist_ok=True)
    atomic_save_tensors({"ws": pivots}, out / PIVOTS_FILE, {"face_ids": [f.id for f in faces]})
    save_checkpoint(out / GENERATOR_FILE, {"G": G_t}, state={"config": cfg.to_dict()})
    with torch.no_grad():
        rows = [targets_u8, to_uint8(start_imgs).cpu(), to_uint8(G.synthesis(pivots, noise_mode="const")).cpu(),
                to_uint8(pti_imgs).cpu()]
    write_png(out / "preview.png", make_grid(torch.cat(rows), cols=k))
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    summary["precision"] = precision.describe()
    atomic_write_json(out / INFO_FILE, {
        "gan_dir": str(Path(opts.gan).resolve()), "gan_data": gan_data, "config": cfg.to_dict(),
        "faces": str(Path(opts.faces).resolve()), "face_ids": [f.id for f in faces], "masked": masked,
        "summary": summary, "per_photo": metrics, "identity_ceiling": ceiling,
        "options": {k_: v for k_, v in asdict(opts).items() if k_ != "progress"}, "versions": library_versions(),
    })
    return summary


def load_inversion(path: str | Path, device: torch.device | str = "cpu", faces: str | Path | None = None) -> Inversion:
    """What `invert` wrote: the tuned generator, the pivots and the inverted photos in pivot order.
    `faces` overrides the subject faceset's recorded path (e.g. after moving it)."""

    path = Path(path)
    info = read_info_json(path / INFO_FILE, InversionError,
                          f"not an inversion folder (no {INFO_FILE}); run `synthswap gan invert` first")
    try:
        cfg = GanConfig.from_dict(info["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InversionError(f"{path / INFO_FILE}: corrupt ({exc})") from exc
    G = Generator(cfg)
    load_checkpoint(path / GENERATOR_FILE, {"G": G})
    tensors, meta = load_tensors(path / PIVOTS_FILE)
    if "ws" not in tensors or tuple(tensors["ws"].shape[1:]) != (cfg.num_ws, cfg.w_dim):
        raise InversionError(f"{path / PIVOTS_FILE}: pivots do not fit this generator")
    try:
        fs = Faceset.open(faces or info["faces"])
    except FacesetError as exc:
        raise InversionError(f"{exc} (pass --faces with the subject faceset that was inverted)") from exc
    by_id = {f.id: f for f in fs.faces}
    missing = [i for i in info["face_ids"] if i not in by_id]
    if missing:
        raise InversionError(f"{fs.root}: faces {missing[:5]} of the inversion are not in this faceset")
    subject = Faceset(fs.root, fs.info, [by_id[i] for i in info["face_ids"]])
    return Inversion(G.to(device).eval().requires_grad_(False), tensors["ws"].to(device), subject, info)
