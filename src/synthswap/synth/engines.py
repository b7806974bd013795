"""The synthesis engines and their registry: the GAN (inversion pivots moved along W
directions) and the warp control (real photos warped by their landmarks). Both aim at
target attribute vectors given in the subject's frame (ATTRIBUTE_NAMES order).

To add an engine: subclass `synth.base.Engine` here and add it to `ENGINES`; the CLI's
choices, `run`, `study` and `synthesize` read the registry."""

from __future__ import annotations

import contextlib

from pathlib import Path

import cv2
import numpy as np
import torch

from synthswap.faces.measure import ATTRIBUTE_NAMES, attribute_matrix
from synthswap.faces.sface_torch import sface_identity
from synthswap.faceset import Faceset
from synthswap.gan.data import to_bgr_images
from synthswap.gan.directions import DirectionsError, load_directions
from synthswap.gan.invert import InversionError, load_inversion
from synthswap.metrics.coverage import neutral
from synthswap.precision import resolve_precision
from synthswap.synth.base import Candidate, Engine, SynthError, SynthOptions, open_faceset
from synthswap.synth.warp import LIMITS, WarpEdit, warp_face
from synthswap.training import CheckpointError, resolve_device


class WarpEngine(Engine):
    """Warps the subject's real photos in turn towards each target."""

    name = "warp"

    @classmethod
    def create(cls, opts: SynthOptions) -> WarpEngine:
        if not opts.faces:
            raise SynthError("the warp engine needs --faces SUBJECT_FACESET")
        return cls(open_faceset(opts.faces, "subject"))

    def __init__(self, subject: Faceset):
        self.subject = subject
        self.attrs = attribute_matrix(subject)
        self._next = 0  # photos are read as they are warped: a 20,000-face subject is not held in memory

    def default_targets(self, rng: np.random.Generator, n: int = 4000) -> np.ndarray:
        """Without --match: mouth open, smile, blinks, raised brows and small turns, each present
        in half the targets, uniform within what the warp can do (`warp.LIMITS`)."""
        pool = np.zeros((n, len(ATTRIBUTE_NAMES)))
        for i, name in enumerate(ATTRIBUTE_NAMES):
            lo, hi = LIMITS[name]
            if name == "mouth_open":
                lo = 0.0  # the neutral mouth is closed: only opening is an expression
            pool[:, i] = rng.uniform(lo, hi, n) * (rng.random(n) < 0.5)
        blink = rng.random(n) < 0.5  # both eyes together mostly, as people blink
        pool[blink, 4] = pool[blink, 3]
        return pool

    def propose(self, targets: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> list[Candidate]:
        out = []
        for target in targets:
            i = self._next % len(self.subject.faces)
            self._next += 1
            face = self.subject.faces[i]
            delta = (target - self.attrs[i]) * strength
            edit = WarpEdit(**{k: float(v) for k, v in zip(ATTRIBUTE_NAMES, delta)}).clipped()
            image, _ = warp_face(self.subject.read_image(face), face.landmarks, edit)
            out.append(Candidate(image=image, source_id=face.id, meta={"photo": face.id, "edit": edit.to_dict()}))
        return out


class GanEngine(Engine):
    """Renders each inversion pivot moved by the W edit that the directions predict reaches the target."""

    name = "gan"
    needs_inversion = True

    @classmethod
    def create(cls, opts: SynthOptions) -> GanEngine:
        if not opts.inversion:
            raise SynthError("the gan engine needs --inversion INV_DIR (from `synthswap gan invert`)")
        return cls(opts.inversion, directions=opts.directions, device=opts.device, faces=opts.faces,
                   identity_steps=opts.identity_steps, identity_lr=opts.identity_lr, precision=opts.precision)

    def __init__(self, inversion: str | Path, directions: str | Path | None = None, device: str = "auto",
                 faces: str | Path | None = None, identity_steps: int = 0, identity_lr: float = 0.01,
                 precision: str = "auto"):
        self.device = resolve_device(device)
        # The generator's passes (bf16 where faster, synthswap.precision); SFace keeps fp32 on a CPU.
        self.precision = resolve_precision(precision, self.device)
        try:
            inv = load_inversion(inversion, device=self.device, faces=faces)
        except (InversionError, CheckpointError) as exc:
            raise SynthError(str(exc)) from exc
        self.G, self.pivots, self.subject, self.info = inv.G, inv.pivots, inv.subject, inv.info
        path = Path(directions) if directions else Path(self.info["gan_dir"]) / "directions.safetensors"
        try:
            self.directions = load_directions(path)
        except (DirectionsError, CheckpointError) as exc:
            raise SynthError(f"{exc} (run `synthswap gan directions --gan {self.info['gan_dir']}` first)") from exc
        if self.directions.coef.shape[1] != self.G.w_dim:
            raise SynthError(f"{path}: directions are for w_dim {self.directions.coef.shape[1]}, "
                             f"this GAN has {self.G.w_dim}")
        self.attrs = attribute_matrix(self.subject)
        self._next = 0
        self.identity_steps, self.identity_lr = identity_steps, identity_lr
        if identity_steps > 0:
            self.identity = sface_identity(self.device)
            crops = np.stack([self.subject.read_image(f) for f in self.subject.faces]).transpose(0, 3, 1, 2)
            with torch.no_grad():
                emb = self.identity(torch.from_numpy(np.ascontiguousarray(crops)).float().to(self.device) / 255)
            self.centroid = torch.nn.functional.normalize(emb.mean(0), dim=0)

    def default_targets(self, rng: np.random.Generator) -> np.ndarray:
        """Without --match: the expressions and poses of the GAN's training faces (relative to their
        neutral face); when those facesets are gone, those measured on the GAN's own samples."""
        data = self.info.get("gan_data") or []
        sets = []
        for p in data:
            try:
                sets.append(attribute_matrix(Faceset.open(p)))
            except Exception:  # noqa: BLE001 - a moved training set just means the fallback below
                sets = []
                break
        attrs = np.concatenate(sets) if sets else self.directions.sample_attrs
        attrs = attrs[np.isfinite(attrs).all(1)]
        return attrs - neutral(attrs)

    def propose(self, targets: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> list[Candidate]:
        idx = [(self._next + j) % len(self.pivots) for j in range(len(targets))]
        self._next += len(targets)
        deltas = (targets - self.attrs[idx]) * strength
        dws = np.stack([self.directions.edit(d) for d in deltas])
        ws = self.pivots[idx] + torch.from_numpy(dws).float().to(self.device)[:, None, :]
        if self.identity_steps > 0:
            ws = towards_identity(self.G, ws, self.identity, self.centroid, self.identity_steps, self.identity_lr,
                                  float(self.directions.w_spread), self.precision.autocast)
        with torch.no_grad(), self.precision.autocast():
            renders = to_bgr_images(self.G.synthesis(ws, noise_mode="const").float())
        out = []
        for j, i in enumerate(idx):
            bgr = enlarge_render(renders[j])
            face = self.subject.faces[i]
            meta = {"pivot": face.id, "pivot_index": int(i), "dw_norm": round(float(np.linalg.norm(dws[j])), 4),
                    "edit": {k: round(float(v), 4) for k, v in zip(ATTRIBUTE_NAMES, deltas[j])}}
            out.append(Candidate(image=bgr, source_id=face.id, meta=meta, latent=ws[j].cpu().numpy()))
        return out

    def reference_images(self, limit: int) -> list[np.ndarray]:
        """The pivots rendered unedited (at most `limit`, evenly spaced): the tuned generator's
        reconstructions of the photos, as sharp as this prior renders the subject (a pivot render of a
        64 px prior has about a sixth of the Laplacian variance of the same photo brought to 64 px)."""
        pivots = self.pivots[:: max(1, len(self.pivots) // limit)][:limit]
        with torch.no_grad():
            return [enlarge_render(bgr) for bgr in to_bgr_images(self.G.synthesis(pivots, noise_mode="const"))]


def enlarge_render(bgr: np.ndarray) -> np.ndarray:
    """A GAN render enlarged (cubic) to 128 px or more before analysis: the detector and FaceMesh find
    32-64 px faces far more reliably so than when they upscale bilinearly."""
    up = max(1, int(np.ceil(128 / bgr.shape[0])))
    return cv2.resize(bgr, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC) if up > 1 else bgr


def faces_in_samples(G, n: int, analyzer) -> tuple[int, float]:
    """How many of a prior's samples (seeds 0..n-1 of one generator, psi 1) `analyzer` finds as a face,
    enlarged as synthesis enlarges them, and the median sharpness of those found (NaN if none)."""
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        renders = to_bgr_images(G(z, 1.0, noise_mode="const"))
    sharpness = [face.sharpness for face in (analyzer.analyze(enlarge_render(bgr)) for bgr in renders)
                 if face is not None]
    return len(sharpness), float(np.median(sharpness)) if sharpness else float("nan")


def towards_identity(G, ws_edit: torch.Tensor, identity, centroid: torch.Tensor, steps: int, lr: float,
                     w_spread: float, autocast=contextlib.nullcontext) -> torch.Tensor:
    """A few Adam steps on edited W+ latents: up the SFace cosine of their renders to the subject's
    photos (`centroid`), with an L2 pull back to the edit, so the expression it aimed at stays; the pull
    equals the identity term at a tenth of a random latent's spread from the edit."""
    pull = 1.0 / (0.1 * w_spread) ** 2
    ws = ws_edit.clone().requires_grad_(True)
    opt = torch.optim.Adam([ws], lr=lr)
    for _ in range(steps):
        with autocast():
            rgb = G.synthesis(ws, noise_mode="const").float()
        cos = identity((rgb.flip(1) + 1) / 2) @ centroid  # the generator's RGB [-1, 1] -> BGR [0, 1]
        loss = (1 - cos).sum() + pull * (ws - ws_edit).square().sum(-1).mean(-1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return ws.detach()


# The registry every caller reads: CLI choices, validation, dispatch.
ENGINES: dict[str, type[Engine]] = {engine.name: engine for engine in (GanEngine, WarpEngine)}
