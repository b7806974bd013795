"""Training samples for the swap model: faceset loading, weighted sampling and augmentation.

All faces are decoded once into memory at the model's resolution (96 px x 1000 faces is
about 30 MB). Every random choice of a step comes from a generator seeded with
(seed, step, rank), so the data a step sees is a pure function of its number: a resumed
run sees exactly what an uninterrupted one would have, and DDP ranks see different data.

Augmentation follows DeepFaceLab: a random similarity transform and flip applied alike
to the input and the target (so the model sees varied framing), a random colour shift
applied alike to both (so it is not tied to one lighting), and a random smooth "warp"
applied to the input only, which is what forces the autoencoder to learn a face rather
than copy pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from synthswap.faces.landmarks import LEFT_EYE_CONTOUR, LIPS_OUTER, RIGHT_EYE_CONTOUR
from synthswap.faceset import Faceset, FacesetError


@dataclass
class Augment:
    rotation_deg: float = 10.0
    scale: float = 0.05
    shift: float = 0.05
    flip: bool = True
    warp: bool = True
    warp_strength: float = 0.04  # std of the warp grid's offsets, as a fraction of the size
    colour: bool = True


def eyes_mouth_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """uint8 0/255 mask of both eyes and the mouth (convex hulls, dilated), crop pixels in."""
    mask = np.zeros((size, size), np.uint8)
    for idx in (LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR, LIPS_OUTER):
        hull = cv2.convexHull(np.round(landmarks[idx, :2]).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 255)
    k = max(3, size // 24) | 1  # a margin around lids and lips, which matter for expression
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))


class FaceSource:
    """One identity's faces (possibly from several facesets) held in memory at `size` px."""

    def __init__(self, paths: list[str | Path], size: int, weights: list[float] | None = None):
        if not paths:
            raise FacesetError("no faceset given")
        if weights is not None and len(weights) != len(paths):
            raise FacesetError(f"{len(weights)} sampling weights for {len(paths)} facesets")
        self.paths = [str(p) for p in paths]
        self.size = size
        images, masks, regions, landmarks, probs, counts, synthetic = [], [], [], [], [], [], []
        for i, path in enumerate(paths):
            faceset = Faceset.open(path)
            if not faceset.faces:
                raise FacesetError(f"{path}: faceset holds no faces")
            scale = size / faceset.size
            for face in faceset.faces:
                img = faceset.read_image(face)
                mask = faceset.read_mask(face)
                if faceset.size != size:
                    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
                    img = cv2.resize(img, (size, size), interpolation=interp)
                    mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_LINEAR)
                images.append(img)
                masks.append(mask)
                synthetic.append(face.synthetic)
                landmarks.append(face.landmarks_array()[:, :2] * scale)
                regions.append(eyes_mouth_mask(landmarks[-1], size))
            w = 1.0 if weights is None else float(weights[i])
            if w < 0:
                raise FacesetError(f"sampling weight {w} for {path} is negative")
            # A faceset's weight is shared by its faces, so a small faceset with a large
            # weight is sampled as often as a big one with the same weight.
            probs.append(np.full(len(faceset.faces), w / len(faceset.faces)))
            counts.append(len(faceset.faces))
        self.images = np.stack(images)
        self.synthetic = np.array(synthetic, bool)  # which faces were synthesised (not the subject's photos)
        self.masks = np.stack(masks)
        self.regions = np.stack(regions)
        self.landmarks = np.stack(landmarks)  # (N, 478, 2) FaceMesh points in pixels of `size`
        p = np.concatenate(probs)
        if p.sum() <= 0:
            raise FacesetError("all sampling weights are zero")
        self.probs = p / p.sum()
        self.counts = counts

    def __len__(self) -> int:
        return len(self.images)

    def real_images(self, limit: int = 64) -> np.ndarray:
        """Up to `limit` evenly spaced real (not synthetic) faces, NCHW float 0..1: what defines who the
        person is (synthetic images never do). All faces if none is marked real."""
        idx = np.flatnonzero(~self.synthetic)
        idx = idx if len(idx) else np.arange(len(self.images))
        idx = idx[np.linspace(0, len(idx) - 1, min(limit, len(idx))).round().astype(int)]
        return np.ascontiguousarray(self.images[idx].transpose(0, 3, 1, 2)).astype(np.float32) / 255.0

    def describe(self) -> list[dict]:
        total = self.probs
        out, start = [], 0
        for path, n in zip(self.paths, self.counts):
            out.append({"path": path, "faces": n, "share": round(float(total[start:start + n].sum()), 4)})
            start += n
        return out

    def batch(self, rng: np.random.Generator, batch_size: int, augment: Augment):
        """(warped input, target, mask, eyes-mouth mask) float32 NCHW in 0..1."""
        idx = rng.choice(len(self.images), size=batch_size, p=self.probs)
        warped, target, mask, region = [], [], [], []
        for i in idx:
            w, t, m, r = augment_sample(self.images[i], self.masks[i], self.regions[i], rng, augment)
            warped.append(w)
            target.append(t)
            mask.append(m)
            region.append(r)
        to_nchw = lambda xs: np.ascontiguousarray(np.stack(xs).transpose(0, 3, 1, 2))  # noqa: E731
        return to_nchw(warped), to_nchw(target), to_nchw(mask), to_nchw(region)


def _random_affine(rng: np.random.Generator, size: int, a: Augment) -> np.ndarray:
    angle = rng.uniform(-a.rotation_deg, a.rotation_deg)
    scale = 1.0 + rng.uniform(-a.scale, a.scale)
    mat = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    mat[:, 2] += rng.uniform(-a.shift, a.shift, 2) * size
    return mat


def random_warp_maps(rng: np.random.Generator, size: int, strength: float, cells: int = 5):
    """Smooth random displacement maps for cv2.remap: a coarse grid of random offsets, upsampled."""
    offsets = rng.normal(0.0, strength * size, (2, cells, cells)).astype(np.float32)
    offsets[:, [0, -1], :] = 0  # keep the borders fixed: only the inside of the face moves
    offsets[:, :, [0, -1]] = 0
    dx = cv2.resize(offsets[0], (size, size), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(offsets[1], (size, size), interpolation=cv2.INTER_CUBIC)
    gx, gy = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
    return gx + dx, gy + dy


def _colour_shift(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast and per-channel gain on a float image in 0..1."""
    gain = 1.0 + rng.uniform(-0.08, 0.08, 3).astype(np.float32)
    contrast = np.float32(1.0 + rng.uniform(-0.15, 0.15))
    bright = np.float32(rng.uniform(-0.06, 0.06))
    mean = img.mean()
    return np.clip((img - mean) * contrast + mean + bright, 0, 1) * gain


def augment_sample(img, mask, region, rng: np.random.Generator, a: Augment):
    size = img.shape[0]
    mat = _random_affine(rng, size, a)
    flags, border = cv2.INTER_LINEAR, cv2.BORDER_REPLICATE
    img = cv2.warpAffine(img, mat, (size, size), flags=flags, borderMode=border)
    mask = cv2.warpAffine(mask, mat, (size, size), flags=flags, borderMode=cv2.BORDER_CONSTANT)
    region = cv2.warpAffine(region, mat, (size, size), flags=flags, borderMode=cv2.BORDER_CONSTANT)
    if a.flip and rng.random() < 0.5:
        img, mask, region = img[:, ::-1], mask[:, ::-1], region[:, ::-1]
    target = img.astype(np.float32) / 255.0
    if a.colour:
        target = np.clip(_colour_shift(target, rng), 0, 1)
    warped = target
    if a.warp:
        mx, my = random_warp_maps(rng, size, a.warp_strength)
        warped = cv2.remap(target, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    m = (mask.astype(np.float32) / 255.0)[:, :, None]
    r = (region.astype(np.float32) / 255.0)[:, :, None]
    return warped, target, m, r


def step_rng(seed: int, step: int, rank: int = 0) -> np.random.Generator:
    """The random stream of one training step on one rank (resume- and DDP-safe)."""
    return np.random.default_rng([seed, step, rank])
