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
effect is `delta` on every usable attribute at once (min-norm solution on the unit normals U,
U^T (U U^T + small ridge)^-1 (delta / slope)), which for a single attribute is a step along
`conditioned`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from synthswap.atomic import write_json as atomic_write_json
from synthswap.faces.measure import ATTRIBUTE_NAMES
from synthswap.faceset import INFO_FILE as FACESET_INFO
from synthswap.gan.face_meter import FaceMeter, gan_renderer, measure_renders
from synthswap.gan.invert import load_inversion
from synthswap.gan.loading import load_generator, read_gan_json
from synthswap.gan.pose_net import train_pose_regressor
from synthswap.options import option
from synthswap.training import CheckpointError, atomic_save_tensors, load_tensors, resolve_device

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
            pinv = _right_inverse(self.unit[use])  # (D, k): column j changes attribute j only
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
        # On unit normals the ridge weighs every attribute alike whatever its unit (degrees for
        # yaw, eye-distance fractions for the mouth); dividing by the slope restores the units.
        dw = _right_inverse(self.unit[use]) @ (delta[use] / self.slope[use])
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


def _right_inverse(u: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    """U^T (U U^T + ridge I)^-1 for unit rows U: the min-norm W step per unit of each row's
    projection. The small ridge keeps nearly collinear attributes (smile and mouth width) from
    asking for huge, opposite steps."""
    return u.T @ np.linalg.inv(u @ u.T + ridge * np.eye(len(u)))


RIDGE_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def _ridge(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """(K, D) coefficients of centred y on centred x, penalty lam x the mean feature variance x N."""
    scale = np.trace(x.T @ x) / x.shape[1]
    return np.linalg.solve(x.T @ x + lam * scale * np.eye(x.shape[1]), x.T @ y).T


def _r2(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return 1 - ((y - pred) ** 2).sum(0) / (((y - y.mean(0)) ** 2).sum(0) + 1e-12)


def fit_directions(w: np.ndarray, attrs: np.ndarray, names=ATTRIBUTE_NAMES, holdout: float = 0.2,
                   ridge: float | None = None, seed: int = 0) -> Directions:
    """Ridge fit of each attribute on W. Rows with any non-finite attribute are dropped.

    The penalty is chosen per attribute from RIDGE_GRID on a validation split of the
    training samples (with few samples in a wide W, a weak penalty fits noise), unless
    `ridge` fixes it; R^2 is then measured on the held-out samples, never seen before.
    """
    w = np.asarray(w, np.float64)
    attrs = np.asarray(attrs, np.float64)
    ok = np.isfinite(attrs).all(1)
    w, attrs_ok = w[ok], attrs[ok]
    if len(w) < 20:
        raise DirectionsError(f"only {len(w)} samples were measured as faces; need at least 20")
    order = np.random.default_rng(seed).permutation(len(w))
    n_test = max(int(len(w) * holdout), 5)
    test, train = order[:n_test], order[n_test:]
    grid = RIDGE_GRID if ridge is None else (ridge,)
    lams = np.full(attrs_ok.shape[1], grid[0])
    if len(grid) > 1:
        n_val = max(len(train) // 5, 5)
        val, fit = train[:n_val], train[n_val:]
        mu_w, mu_y = w[fit].mean(0), attrs_ok[fit].mean(0)
        scores = np.stack([_r2(attrs_ok[val], (w[val] - mu_w) @ _ridge(w[fit] - mu_w, attrs_ok[fit] - mu_y, lam).T
                               + mu_y) for lam in grid])  # (grid, K)
        lams = np.array(grid)[scores.argmax(0)]
    w_mean = w[train].mean(0)
    y_mean = attrs_ok[train].mean(0)
    x = w[train] - w_mean
    coef = np.stack([_ridge(x, attrs_ok[train][:, k:k + 1] - y_mean[k], lams[k])[0] for k in range(len(lams))])
    r2 = _r2(attrs_ok[test], (w[test] - w_mean) @ coef.T + y_mean)
    spread = float(np.sqrt(((w - w_mean) ** 2).sum(1).mean()))
    return Directions(list(names), coef, y_mean, w_mean, r2, attrs, spread,
                      info={"n_samples": int(ok.size), "n_measured": int(ok.sum()), "n_heldout": int(n_test),
                            "ridge": lams.tolist(), "test_index": np.flatnonzero(ok)[test].tolist()})


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


@dataclass
class DirectionsOptions:
    gan: str
    out: str | None = None  # default: GAN_DIR/directions.safetensors
    n: int = option(3000, "samples to render and measure", minimum=1)
    truncation: float = option(1.0, "truncation psi", metavar="PSI")
    # An inversion folder: fit local directions around its pivots, rendered by its tuned generator.
    around: str | None = option(None, "fit local directions around this inversion's pivots, rendered by its tuned "
                                      "generator (for a prior whose own samples are rarely measurable as faces)",
                                metavar="INV_DIR")
    # With `around`: how far samples stray, in units of a random w's offset from w_avg.
    radius: float = option(0.5, "with --around: how far samples stray from the pivots, in units of a random w's "
                                "offset from the mean w", above=0)
    # Yaw/pitch from a CNN trained on the GAN's real faces, not FaceMesh.
    pose_regressor: bool = option(True, "measure yaw/pitch of the renders with FaceMesh instead of a small CNN "
                                        "trained on the GAN's real training faces (FaceMesh's pose is unreliable on "
                                        "small renders; docs/synthesis.md)", flag="no-pose-regressor")
    seed: int = 0
    device: str = "auto"
    progress: bool = True


def directions_for_gan(opts: DirectionsOptions, log: Callable[[str], None] = print) -> tuple[Directions, Path]:
    """`gan directions`: sample n latents of the GAN, measure them, fit and save the directions.

    With `around` (an inversion folder) the samples are the subject's pivots moved by
    `radius` times a random latent's offset from the mean w, rendered by the tuned
    generator: local directions, for a GAN whose own samples are too rarely measurable
    as faces (a prior trained briefly), or to fit the subject's own neighbourhood.
    """
    gan_dir, n, seed, around, radius, truncation = opts.gan, opts.n, opts.seed, opts.around, opts.radius, opts.truncation
    if n < 50:
        raise DirectionsError("--n must be at least 50 (the fit needs samples to hold out)")
    dev = resolve_device(opts.device)
    G, cfg = load_generator(gan_dir, ema=True, device=dev)
    out = Path(opts.out) if opts.out else Path(gan_dir) / DIRECTIONS_FILE
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.z_dim, generator=gen)
    with torch.no_grad():
        w = torch.cat([G.mapping(z[i:i + 256].to(dev), truncation) for i in range(0, n, 256)]).cpu()
    renderer_G = G
    if around is not None:
        inv = load_inversion(around, device=dev)
        centres = inv.pivots.mean(1).cpu()  # (k, w_dim)
        pick = torch.randint(0, len(centres), (n,), generator=gen)
        w = centres[pick] + radius * (w - G.w_avg.cpu())
        renderer_G = inv.G
    w = w.numpy()
    # Yaw and pitch from a regressor trained on the GAN's real training faces when they are
    # there: FaceMesh's pose is unreliable at GAN resolutions (see docs/synthesis.md).
    pose_net, pose_info = None, None
    data = read_gan_json(gan_dir).get("options", {})
    sets = [p for p in data.get("data", []) if (Path(p) / FACESET_INFO).is_file()]
    if sets and opts.pose_regressor:
        try:
            pose_net, pose_info = train_pose_regressor(sets, cfg.resolution, masked=data.get("masked", True),
                                                       seed=seed)
        except ValueError as exc:
            raise DirectionsError(str(exc)) from exc
        log(f"pose regressor trained on {pose_info['n_train']} real faces; held-out correlation "
            f"yaw {pose_info['heldout_corr']['yaw']}, pitch {pose_info['heldout_corr']['pitch']}")
    meter = FaceMeter(pose_net, cfg.resolution)
    attrs, counts = measure_renders(gan_renderer(renderer_G, dev), w, progress=opts.progress, meter=meter)
    log(f"{n} samples: {counts['found']} found by the detector, {counts['fallback_box']} measured on the "
        f"template box, {counts['missed']} not measurable")
    d = fit_directions(w, attrs, seed=seed)
    d.info.update(counts, gan_dir=str(Path(gan_dir).resolve()), truncation=truncation, seed=seed,
                  resolution=cfg.resolution, around=str(Path(around).resolve()) if around else None,
                  radius=radius if around else None, pose_regressor=pose_info)
    save_directions(d, out)
    return d, out


def format_report(d: Directions) -> str:
    lines = [f"{'attribute':15s} {'R2 held-out':>11s} {'slope':>8s}  usable"]
    for k, name in enumerate(d.names):
        lines.append(f"{name:15s} {d.r2[k]:11.3f} {d.slope[k]:8.4f}  {'yes' if d.usable[k] else 'no'}")
    return "\n".join(lines)
