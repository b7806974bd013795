"""Expression and pose directions in W, InterFaceGAN-style, fitted on measured samples.

Sample latents, render them, measure every image with the extraction code (landmarks ->
expression vector and head pose) and fit one linear model per attribute in W (ridge
regression: the attributes are continuous, so a regression plane is the natural analogue
of InterFaceGAN's SVM boundary). Each attribute gets

* `unit`: the normal of its plane, the direction along which it grows fastest;
* `conditioned`: that direction with the other attributes' planes projected out
  (InterFaceGAN's conditional manipulation), so moving along it changes this attribute
  and, to first order, none of the others: smiling does not turn the head;
* its held-out R^2 (20% of samples never seen by the fit) and slope (attribute change per
  unit step along `unit`).

`Directions.edit(delta)` does the joint version: the smallest W change whose predicted
effect is exactly `delta` on every usable attribute at once (min-norm solution
A^T (A A^T)^-1 delta), which for a single attribute is a step along `conditioned`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from synthswap.metrics.coverage import ATTRIBUTE_NAMES
from synthswap.training import CheckpointError, atomic_save_tensors, atomic_write_json, load_tensors

DIRECTIONS_FILE = "directions.safetensors"
MIN_R2 = 0.1  # attributes fitted worse than this on held-out samples are not edited


class DirectionsError(Exception):
    pass


@dataclass
class Directions:
    names: list[str]
    coef: np.ndarray  # (K, D) attribute change per unit of W, from the ridge fit
    intercept: np.ndarray  # (K,) prediction at w_mean
    w_mean: np.ndarray  # (D,)
    r2: np.ndarray  # (K,) held-out R^2
    sample_attrs: np.ndarray  # (N, K) measured attributes of the rendered samples
    w_spread: float  # RMS distance of sampled w from w_mean: the scale of the latent space
    max_edit: float = 1.0  # edits are capped at this many w_spread
    info: dict = field(default_factory=dict)

    @property
    def usable(self) -> np.ndarray:
        return self.r2 >= MIN_R2

    @property
    def unit(self) -> np.ndarray:
        return self.coef / np.linalg.norm(self.coef, axis=1, keepdims=True)

    @property
    def slope(self) -> np.ndarray:
        return np.linalg.norm(self.coef, axis=1)

    @property
    def conditioned(self) -> np.ndarray:
        """(K, D) unit directions, each orthogonal to every other usable attribute's plane normal."""
        out = self.unit.copy()
        use = np.flatnonzero(self.usable)
        if len(use):
            pinv = _right_inverse(self.coef[use])  # (D, k): column j changes attribute j only
            for col, k in enumerate(use):
                out[k] = pinv[:, col] / np.linalg.norm(pinv[:, col])
        return out

    def predict(self, w: np.ndarray) -> np.ndarray:
        return (np.asarray(w, np.float64) - self.w_mean) @ self.coef.T + self.intercept

    def edit(self, delta: np.ndarray) -> np.ndarray:
        """(D,) W change predicted to move every usable attribute by `delta` (others held still)."""
        delta = np.asarray(delta, np.float64)
        use = np.flatnonzero(self.usable)
        if not len(use):
            return np.zeros(self.coef.shape[1])
        dw = _right_inverse(self.coef[use]) @ delta[use]
        norm = np.linalg.norm(dw)
        cap = self.max_edit * self.w_spread
        return dw * (cap / norm) if norm > cap else dw

    def report(self) -> dict:
        cond = self.conditioned
        return {
            name: {"r2_heldout": round(float(self.r2[k]), 4), "slope": round(float(self.slope[k]), 5),
                   "usable": bool(self.usable[k]),
                   # How much the conditioned direction still moves the others, relative to its own effect.
                   "leak": {other: round(float(self.coef[j] @ cond[k] / (self.coef[k] @ cond[k] + 1e-12)), 4)
                            for j, other in enumerate(self.names) if j != k and self.usable[j]}}
            for k, name in enumerate(self.names)
        }


def _right_inverse(a: np.ndarray, rel_ridge: float = 1e-3) -> np.ndarray:
    """A^T (A A^T + lambda I)^-1: min-norm W change per attribute change. The small ridge keeps
    nearly collinear attributes (smile and mouth width) from asking for huge, opposite steps."""
    gram = a @ a.T
    lam = rel_ridge * np.trace(gram) / len(gram)
    return a.T @ np.linalg.inv(gram + lam * np.eye(len(gram)))


def fit_directions(w: np.ndarray, attrs: np.ndarray, names=ATTRIBUTE_NAMES, holdout: float = 0.2,
                   ridge: float = 1e-2, seed: int = 0) -> Directions:
    """Ridge fit of each attribute on W. Rows with any non-finite attribute are dropped."""
    w = np.asarray(w, np.float64)
    attrs = np.asarray(attrs, np.float64)
    ok = np.isfinite(attrs).all(1)
    w, attrs_ok = w[ok], attrs[ok]
    if len(w) < 20:
        raise DirectionsError(f"only {len(w)} samples were measured as faces; need at least 20")
    order = np.random.default_rng(seed).permutation(len(w))
    n_test = max(int(len(w) * holdout), 5)
    test, train = order[:n_test], order[n_test:]
    w_mean = w[train].mean(0)
    x = w[train] - w_mean
    lam = ridge * np.trace(x.T @ x) / x.shape[1]
    y_mean = attrs_ok[train].mean(0)
    coef = np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ (attrs_ok[train] - y_mean)).T  # (K, D)
    pred = (w[test] - w_mean) @ coef.T + y_mean
    resid = ((attrs_ok[test] - pred) ** 2).sum(0)
    total = ((attrs_ok[test] - attrs_ok[test].mean(0)) ** 2).sum(0) + 1e-12
    r2 = 1 - resid / total
    spread = float(np.sqrt(((w - w_mean) ** 2).sum(1).mean()))
    return Directions(list(names), coef, y_mean, w_mean, r2, attrs, spread,
                      info={"n_samples": int(ok.size), "n_measured": int(ok.sum()), "n_heldout": int(n_test),
                            "ridge": ridge, "test_index": test.tolist()})


def save_directions(d: Directions, path: str | Path) -> Path:
    path = Path(path)
    tensors = {k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in {
        "coef": d.coef, "intercept": d.intercept, "w_mean": d.w_mean, "r2": d.r2, "unit": d.unit,
        "conditioned": d.conditioned, "sample_attrs": d.sample_attrs}.items()}
    info = {k: v for k, v in d.info.items() if k != "test_index"}
    atomic_save_tensors(tensors, path, {"names": d.names, "w_spread": d.w_spread, "max_edit": d.max_edit,
                                        "info": info})
    atomic_write_json(path.with_suffix(".json"), {"names": d.names, "w_spread": d.w_spread, "info": info,
                                                  "attributes": d.report()})
    return path


def load_directions(path: str | Path) -> Directions:
    path = Path(path)
    if not path.is_file():
        raise DirectionsError(f"{path}: no directions file")
    t, meta = load_tensors(path)
    try:
        return Directions(meta["names"], t["coef"].double().numpy(), t["intercept"].double().numpy(),
                          t["w_mean"].double().numpy(), t["r2"].double().numpy(), t["sample_attrs"].double().numpy(),
                          float(meta["w_spread"]), float(meta.get("max_edit", 1.0)), meta.get("info", {}))
    except KeyError as exc:
        raise CheckpointError(f"{path}: not a directions file (missing {exc})") from exc


# ---------------------------------------------------------------------------------------------
# Measuring rendered faces with the extraction code


class FaceMeter:
    """Expression + yaw/pitch of face images, by the extraction code (detector, FaceMesh, measure).

    GAN samples are aligned crops, so when the detector misses a small or odd face the
    landmarks are tried once more on the box where the alignment template puts the face.
    """

    def __init__(self):
        from synthswap.faces.pipeline import FaceAnalyzer

        self.analyzer = FaceAnalyzer(128, with_identity=False)
        self.found = 0
        self.fallback = 0
        self.missed = 0

    def close(self) -> None:
        self.analyzer.close()

    def __call__(self, bgr: np.ndarray) -> np.ndarray:
        face = self.analyzer.analyze(bgr)
        if face is None:
            s = bgr.shape[0]
            box = np.array([0.18 * s, 0.2 * s, 0.64 * s, 0.72 * s])  # around the template's face
            lm = self.analyzer.landmarker(bgr, box)
            if lm is None:
                self.missed += 1
                return np.full(len(ATTRIBUTE_NAMES), np.nan)
            face = self.analyzer.from_landmarks(bgr, lm)
            self.fallback += 1
        else:
            self.found += 1
        return np.array([*[face.expression[k] for k in ATTRIBUTE_NAMES[:6]], face.pose["yaw"], face.pose["pitch"]])


def measure_renders(render: Callable[[np.ndarray], list[np.ndarray]], w: np.ndarray, batch: int = 32,
                    progress: bool = False) -> tuple[np.ndarray, dict]:
    """Render each row of `w` (via `render`, BGR uint8 images) and measure it: (N, 8), counts."""
    meter = FaceMeter()
    out = []
    it = range(0, len(w), batch)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="render + measure", unit="batch")
    try:
        for start in it:
            out.extend(meter(img) for img in render(w[start:start + batch]))
    finally:
        meter.close()
    return np.array(out), {"found": meter.found, "fallback_box": meter.fallback, "missed": meter.missed}


def gan_renderer(G, device) -> Callable[[np.ndarray], list[np.ndarray]]:
    """W rows -> BGR images from generator G (same w for every layer, fixed noise)."""
    from synthswap.metrics.fid import to_uint8

    def render(w: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            ws = G.broadcast(torch.from_numpy(np.asarray(w, np.float32)).to(device))
            imgs = to_uint8(G.synthesis(ws, noise_mode="const")).cpu().numpy()
        # Upscaled x2 for the landmark model: FaceMesh is surer on 128 px than 64 px faces.
        import cv2

        return [cv2.resize(np.ascontiguousarray(i.transpose(1, 2, 0)[..., ::-1]), None, fx=2, fy=2,
                           interpolation=cv2.INTER_CUBIC) for i in imgs]

    return render


def directions_for_gan(gan_dir: str | Path, out: str | Path | None = None, n: int = 3000,
                       truncation: float = 1.0, seed: int = 0, device: str = "auto", progress: bool = True,
                       log: Callable[[str], None] = print) -> tuple[Directions, Path]:
    """`gan directions`: sample n latents of the GAN, measure them, fit and save the directions."""
    from synthswap.gan.train import load_generator
    from synthswap.training import resolve_device

    if n < 50:
        raise DirectionsError("--n must be at least 50 (the fit needs samples to hold out)")
    dev = resolve_device(device)
    G, cfg = load_generator(gan_dir, ema=True, device=dev)
    out = Path(out) if out else Path(gan_dir) / DIRECTIONS_FILE
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.z_dim, generator=gen)
    with torch.no_grad():
        w = torch.cat([G.mapping(z[i:i + 256].to(dev), truncation) for i in range(0, n, 256)]).cpu().numpy()
    attrs, counts = measure_renders(gan_renderer(G, dev), w, progress=progress)
    log(f"{n} samples: {counts['found']} found by the detector, {counts['fallback_box']} measured on the "
        f"template box, {counts['missed']} not measurable")
    d = fit_directions(w, attrs, seed=seed)
    d.info.update(counts, gan_dir=str(Path(gan_dir).resolve()), truncation=truncation, seed=seed,
                  resolution=cfg.resolution)
    save_directions(d, out)
    return d, out


def format_report(d: Directions) -> str:
    lines = [f"{'attribute':15s} {'R2 held-out':>11s} {'slope':>8s}  usable"]
    for k, name in enumerate(d.names):
        lines.append(f"{name:15s} {d.r2[k]:11.3f} {d.slope[k]:8.4f}  {'yes' if d.usable[k] else 'no'}")
    return "\n".join(lines)
