"""Training samples for the swap model: faceset loading, weighted sampling and augmentation.

Faces are decoded once into memory at the model's resolution when they fit PRELOAD_BYTES
(1,000 faces at 128 px take 80 MB); a larger set (a corpus for pretraining) is read from its
files a batch at a time, so memory does not grow with its size. Every random choice of a step comes from a generator seeded with
(seed, step, rank), so the data a step sees is a pure function of its number: a resumed
run sees exactly what an uninterrupted one would have, and DDP ranks see different data.

Augmentation follows DeepFaceLab: a random similarity transform and flip applied alike
to the input and the target (so the model sees varied framing), a random colour shift
applied alike to both (so it is not tied to one lighting), and a random smooth "warp"
applied to the input only, which is what forces the autoencoder to learn a face rather
than copy pixels. The random choices are drawn on the CPU from the step's generator; the
pixel work is a handful of batched tensor ops on the model's device (`augment_batch`), so
on a GPU the faces never leave it and the training step does not wait on CPU-side warps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from synthswap.faces.landmarks import LEFT_EYE_CONTOUR, LIPS_OUTER, RIGHT_EYE_CONTOUR
from synthswap.faceset import LANDMARK_COUNT, Face, Faceset, FacesetError
from synthswap.options import option


@dataclass
class Augment:
    rotation_deg: float = 10.0
    scale: float = 0.05
    shift: float = 0.05
    # The three the user may turn off (`swap train --no-flip/--no-warp/--no-color-aug`):
    flip: bool = option(True, "turn off random horizontal flips", flag="no-flip")
    warp: bool = option(True, "turn off the random warp of inputs (not recommended)", flag="no-warp")
    warp_strength: float = 0.04  # std of the warp grid's offsets, as a fraction of the size
    colour: bool = option(True, "turn off random colour shifts", flag="no-color-aug")


def eyes_mouth_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """uint8 0/255 mask of both eyes and the mouth (convex hulls, dilated), crop pixels in."""
    mask = np.zeros((size, size), np.uint8)
    for idx in (LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR, LIPS_OUTER):
        hull = cv2.convexHull(np.round(landmarks[idx, :2]).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 255)
    k = max(3, size // 24) | 1  # a margin around lids and lips, which matter for expression
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))


# Faces are held in memory up to this many bytes of crops, masks and eyes-mouth masks (a run's
# subject, synthetic and destination faces are well under it); a larger set is read per batch.
PRELOAD_BYTES = 256 * 2**20


class FaceSource:
    """One identity's faces (possibly from several facesets) at `size` px: held in memory when they
    fit PRELOAD_BYTES (or `preload` says so), else read from their files when a batch needs them."""

    def __init__(self, paths: list[str | Path], size: int, weights: list[float] | None = None,
                 preload: bool | None = None, progress: bool = False):
        if not paths:
            raise FacesetError("no faceset given")
        if weights is not None and len(weights) != len(paths):
            raise FacesetError(f"{len(weights)} sampling weights for {len(paths)} facesets")
        self.paths = [str(p) for p in paths]
        self.size = size
        sets = [Faceset.open(path, progress=progress) for path in paths]
        total = sum(len(fs) for fs in sets)
        self.preloaded = total * size * size * 5 <= PRELOAD_BYTES if preload is None else preload
        items, probs, counts, synthetic = [], [], [], []
        kept: list[Face] = []  # the rows of faces about to be preloaded, so each is parsed once
        # (N, 478, 2) FaceMesh points in pixels of `size`, filled in place: a list of per-face arrays
        # stacked at the end would hold them twice.
        self.landmarks = np.empty((total, LANDMARK_COUNT, 2), np.float32)
        for i, (path, faceset) in enumerate(zip(paths, sets)):
            if not faceset.faces:
                raise FacesetError(f"{path}: faceset holds no faces")
            scale = size / faceset.size
            for row, face in enumerate(faceset.rows("landmarks")):
                self.landmarks[len(items)] = face.landmarks_array()[:, :2] * scale
                items.append((faceset, row))  # the row's number, not the row: a large faceset's rows stay on disk
                synthetic.append(face.synthetic)
                if self.preloaded:
                    kept.append(face)
            w = 1.0 if weights is None else float(weights[i])
            if w < 0:
                raise FacesetError(f"sampling weight {w} for {path} is negative")
            # A faceset's weight is shared by its faces, so a small faceset with a large
            # weight is sampled as often as a big one with the same weight.
            probs.append(np.full(len(faceset.faces), w / len(faceset.faces)))
            counts.append(len(faceset.faces))
        self._items = items
        self.synthetic = np.array(synthetic, bool)  # which faces were synthesised (not the subject's photos)
        p = np.concatenate(probs)
        if p.sum() <= 0:
            raise FacesetError("all sampling weights are zero")
        self.probs = p / p.sum()
        self.counts = counts
        self._device_copies: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        if self.preloaded:
            self.images, self.masks, self.regions = self._read(np.arange(len(items)), kept)

    def _read(self, idx: np.ndarray, rows: list[Face] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Faces `idx` decoded from their files at `size`: BGR uint8 (n, S, S, 3), masks and eyes-mouth
        masks uint8 (n, S, S). `rows`: their manifest rows where already read, else each is read here."""
        size = self.size
        images, masks, regions = [], [], []
        for n, i in enumerate(idx):
            faceset, row = self._items[i]
            face = rows[n] if rows is not None else faceset.faces[row]
            img, mask = faceset.read_image(face), faceset.read_mask(face)
            if faceset.size != size:
                interp = cv2.INTER_AREA if size < faceset.size else cv2.INTER_CUBIC
                img = cv2.resize(img, (size, size), interpolation=interp)
                mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_LINEAR)
            images.append(img)
            masks.append(mask)
            regions.append(eyes_mouth_mask(self.landmarks[i], size))
        empty = np.zeros((0, size, size), np.uint8)
        return (np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8),
                np.stack(masks) if masks else empty, np.stack(regions) if regions else empty)

    def faces(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(images, masks, eyes-mouth masks) of faces `idx`, from memory or from their files."""
        if self.preloaded:
            return self.images[idx], self.masks[idx], self.regions[idx]
        return self._read(np.asarray(idx))

    @classmethod
    def from_arrays(cls, images: np.ndarray, masks: np.ndarray, regions: np.ndarray, label: str) -> FaceSource:
        """Faces already in memory at their final size (BGR uint8 (N, S, S, 3), face masks and eyes-mouth
        masks uint8 (N, S, S)), all real, sampled uniformly. No landmarks: not for the pose loss."""
        source = cls.__new__(cls)
        n = len(images)
        source.paths, source.size, source.counts = [label], images.shape[1], [n]
        source.images, source.masks, source.regions = images, masks, regions
        source.preloaded, source._items = True, []
        source.synthetic = np.zeros(n, bool)
        source.landmarks = np.zeros((n, 0, 2), np.float32)
        source.probs = np.full(n, 1.0 / n)
        source._device_copies = {}
        return source

    def __len__(self) -> int:
        return len(self.probs)

    def real_images(self, limit: int = 64) -> np.ndarray:
        """Up to `limit` evenly spaced real (not synthetic) faces, NCHW float 0..1: what defines who the
        person is (synthetic images never do). All faces if none is marked real."""
        idx = np.flatnonzero(~self.synthetic)
        idx = idx if len(idx) else np.arange(len(self))
        idx = idx[np.linspace(0, len(idx) - 1, min(limit, len(idx))).round().astype(int)]
        return np.ascontiguousarray(self.faces(idx)[0].transpose(0, 3, 1, 2)).astype(np.float32) / 255.0

    def describe(self) -> list[dict]:
        total = self.probs
        out, start = [], 0
        for path, n in zip(self.paths, self.counts):
            out.append({"path": path, "faces": n, "share": round(float(total[start:start + n].sum()), 4)})
            start += n
        return out

    def on_device(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Images, masks and eyes-mouth masks as uint8 NCHW tensors on `device`, copied there once. On the
        CPU they share the arrays' memory (the images as a channels-last view), so nothing is duplicated.
        Only for preloaded faces."""
        assert self.preloaded, "on_device needs the faces in memory"
        key = str(device)
        if key not in self._device_copies:
            self._device_copies[key] = _as_tensors(self.images, self.masks, self.regions, device)
        return self._device_copies[key]

    def draw(self, rng: np.random.Generator, batch_size: int) -> np.ndarray:
        """Which faces a batch holds (by the faceset weights)."""
        return rng.choice(len(self), size=batch_size, p=self.probs)

    def batch(self, rng: np.random.Generator, batch_size: int, augment: Augment, device: torch.device | str = "cpu",
              idx: np.ndarray | None = None, look: AugmentDraw | None = None):
        """(warped input, target, mask, eyes-mouth mask) float32 NCHW in 0..1, on `device`, of the faces
        `idx` (drawn from `rng` when not given: `draw` first, then the augmentation, unless `look` gives
        it: what pairs two sources' faces under one augmentation).

        The random choices come from `rng` (so a batch is a function of the step); the pixel work
        runs as a few batched tensor ops where the model is, so a GPU is not left waiting on the CPU.
        """
        idx = self.draw(rng, batch_size) if idx is None else idx
        if self.preloaded:
            index = torch.from_numpy(idx)
            images, masks, regions = (x[index.to(x.device)] for x in self.on_device(device))
        else:  # read now, laid out as the preloaded ones are
            images, masks, regions = _as_tensors(*self._read(idx), device)
        return augment_batch(images, masks, regions, look or draw_augment(rng, batch_size, self.size, augment))


def _as_tensors(images: np.ndarray, masks: np.ndarray, regions: np.ndarray,
                device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 NCHW tensors on `device` (images a channels-last view of the NHWC array); on the CPU they
    share the arrays' memory."""
    to = lambda x: torch.from_numpy(x).to(device)
    return to(images).permute(0, 3, 1, 2), to(masks)[:, None], to(regions)[:, None]


@dataclass
class AugmentDraw:
    """The random choices of one batch's augmentation, one row per face."""

    angle: np.ndarray  # (B,) degrees
    scale: np.ndarray  # (B,)
    shift: np.ndarray  # (B, 2) fraction of the size
    flip: np.ndarray  # (B,) bool
    gain: np.ndarray | None  # (B, 3) per-channel gain; None: no colour shift
    contrast: np.ndarray | None  # (B,)
    brightness: np.ndarray | None  # (B,)
    warp: np.ndarray | None  # (B, 2, cells, cells) offsets in pixels; None: no warp


def draw_augment(rng: np.random.Generator, n: int, size: int, a: Augment, warp_cells: int = 5) -> AugmentDraw:
    angle = rng.uniform(-a.rotation_deg, a.rotation_deg, n)
    scale = 1.0 + rng.uniform(-a.scale, a.scale, n)
    shift = rng.uniform(-a.shift, a.shift, (n, 2))
    flip = rng.random(n) < 0.5 if a.flip else np.zeros(n, bool)
    gain = contrast = brightness = warp = None
    if a.colour:
        gain = 1.0 + rng.uniform(-0.08, 0.08, (n, 3))
        contrast = 1.0 + rng.uniform(-0.15, 0.15, n)
        brightness = rng.uniform(-0.06, 0.06, n)
    if a.warp:
        warp = rng.normal(0.0, a.warp_strength * size, (n, 2, warp_cells, warp_cells))
        warp[:, :, [0, -1], :] = 0  # keep the borders fixed: only the inside of the face moves
        warp[:, :, :, [0, -1]] = 0
    return AugmentDraw(angle, scale, shift, flip, gain, contrast, brightness, warp)


def augment_batch(images: torch.Tensor, masks: torch.Tensor, regions: torch.Tensor, d: AugmentDraw):
    """uint8 NCHW faces -> (warped input, target, mask, eyes-mouth mask), float32 NCHW in 0..1.

    A similarity transform and flip move image and masks alike; the colour shift changes input and
    target alike; the smooth warp moves the input only. The warped input is sampled from the source
    in one step (affine and warp composed), so it is no blurrier than the target.
    """
    n, _, size, _ = images.shape
    dev = images.device
    as_t = lambda x: torch.as_tensor(x, dtype=torch.float32, device=dev)
    # Output pixel p (normalised coordinates, x and y in -1..1) shows source pixel A^-1 (flip(p) - t).
    rad = as_t(np.deg2rad(d.angle))
    cos, sin = torch.cos(rad) / as_t(d.scale), torch.sin(rad) / as_t(d.scale)
    inv = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)  # (B, 2, 2)
    shift = as_t(d.shift) * 2.0
    sign = 1.0 - 2.0 * as_t(d.flip)
    axis = (torch.arange(size, device=dev, dtype=torch.float32) * 2 + 1) / size - 1
    gy, gx = torch.meshgrid(axis, axis, indexing="ij")
    base = torch.stack([gx, gy], -1).expand(n, size, size, 2)

    def source_of(points: torch.Tensor) -> torch.Tensor:
        flipped = torch.stack([points[..., 0] * sign[:, None, None], points[..., 1]], -1)
        return torch.einsum("bij,bhwj->bhwi", inv, flipped - shift[:, None, None])

    def sample(x: torch.Tensor, grid: torch.Tensor, padding: str) -> torch.Tensor:
        return F.grid_sample(x.float() / 255.0, grid, mode="bilinear", padding_mode=padding, align_corners=False)

    grid = source_of(base)
    target = sample(images, grid, "border")
    mask, region = sample(masks, grid, "zeros"), sample(regions, grid, "zeros")
    warped = target
    if d.warp is not None:
        # Half-pixel centres, as cv2.resize: the fixed border cells take the image edges.
        offsets = F.interpolate(as_t(d.warp) * (2.0 / size), size=(size, size), mode="bicubic", align_corners=False)
        warped = sample(images, source_of(base + offsets.permute(0, 2, 3, 1)), "border")
    if d.gain is not None:
        # Brightness, contrast (about the target's mean, applied alike to the input) and per-channel gain.
        mean = target.mean(dim=(1, 2, 3), keepdim=True)
        contrast, bright = as_t(d.contrast)[:, None, None, None], as_t(d.brightness)[:, None, None, None]
        gain = as_t(d.gain)[:, :, None, None]
        shift_colour = lambda x: ((x - mean) * contrast + mean + bright).clamp(0, 1) * gain
        target = shift_colour(target).clamp(0, 1)
        warped = shift_colour(warped).clamp(0, 1) if d.warp is not None else target
    return warped, target, mask, region


def step_rng(seed: int, step: int, rank: int = 0) -> np.random.Generator:
    """The random stream of one training step on one rank (resume- and DDP-safe)."""
    return np.random.default_rng([seed, step, rank])
