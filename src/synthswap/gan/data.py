"""Facesets -> one uint8 RGB tensor at the GAN's resolution, held in memory.

A personal prior sees a few hundred faces and a generic prior a few thousand: at 64 px
that is a few tens of MB as uint8, so the whole set lives in memory (on the GPU when
training there) and batches are indexed directly, with no loader processes.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from synthswap.faceset import Faceset, FacesetError

BACKGROUND = 128  # the flat grey behind masked faces (0 in [-1, 1] units)


def compose(bgr: np.ndarray, mask: np.ndarray | None, resolution: int) -> np.ndarray:
    """One aligned crop -> RGB uint8 (R, R, 3); with a mask, the face over a flat grey background."""
    img = cv2.resize(bgr, (resolution, resolution), interpolation=cv2.INTER_AREA).astype(np.float32)
    if mask is not None:
        m = cv2.resize(mask, (resolution, resolution), interpolation=cv2.INTER_AREA).astype(np.float32)[..., None] / 255
        img = img * m + BACKGROUND * (1 - m)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)[..., ::-1]


def load_faces(paths: list[str | Path], resolution: int, masked: bool = True,
               limit: int | None = None, seed: int = 0) -> torch.Tensor:
    """All faces of the given facesets as a uint8 tensor (N, 3, R, R), RGB.

    `limit` takes an evenly random subset (the same for the same seed) of the union.
    """
    sets = [Faceset.open(p) for p in paths]
    total = sum(len(fs) for fs in sets)
    if not total:
        raise FacesetError(f"no faces in {', '.join(str(p) for p in paths)}")
    for fs in sets:
        if fs.size < resolution:
            raise FacesetError(
                f"{fs.root}: faces are {fs.size} px, smaller than the GAN's {resolution} px; "
                f"extract with --size {resolution} or more, or train at a lower --resolution"
            )
    keep = np.ones(total, bool)
    if limit is not None and limit < total:
        keep[:] = False
        keep[np.random.default_rng(seed).permutation(total)[:limit]] = True
    out = np.empty((int(keep.sum()), resolution, resolution, 3), np.uint8)
    i = row = 0
    for fs in sets:
        for face in fs.faces:  # one pass over each manifest, in order: rows are read, not held
            if keep[row]:
                out[i] = compose(fs.read_image(face), fs.read_mask(face) if masked else None, resolution)
                i += 1
            row += 1
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the networks' image range."""
    return images.float() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] (generator output) -> uint8 [0, 255], rounded the way PNGs of it would be."""
    return (images.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def to_bgr_images(images: torch.Tensor) -> list[np.ndarray]:
    """Generator output (N, 3, H, W) in [-1, 1], RGB -> uint8 BGR images, as OpenCV and the face
    analysers take them."""
    return [np.ascontiguousarray(i.transpose(1, 2, 0)[..., ::-1]) for i in to_uint8(images).cpu().numpy()]


def make_grid(images: torch.Tensor, cols: int) -> np.ndarray:
    """uint8 (N, 3, H, W) RGB -> one BGR uint8 image with `cols` columns (for cv2.imwrite)."""
    n, c, h, w = images.shape
    rows = (n + cols - 1) // cols
    grid = np.full((rows * h, cols * w, 3), 255, np.uint8)
    arr = images.permute(0, 2, 3, 1).cpu().numpy()
    for i in range(n):
        r, col = divmod(i, cols)
        grid[r * h:(r + 1) * h, col * w:(col + 1) * w] = arr[i]
    return np.ascontiguousarray(grid[..., ::-1])
