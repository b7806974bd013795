"""Photo detail: the swapped face's fine detail taken from the subject's own photos.

A swap model fine-tuned for minutes on a few photos gets the face's coarse shape, shading and
expression right long before its fine detail: the eyes come out as dark smears, the skin as smooth
plastic with streaks (docs/swap.md). The subject's photos have that detail. For each destination face,
the photo nearest in expression and pose is warped to it (swap/paired_targets.PhotoWarper, the same
warp that makes the trainer's paired targets), and the swapped face keeps only its coarse band, up
to `band` px; the detail above it is the warped photo's. Where the warp cannot show the face (an eye
or a mouth opened wider than any photo shows), the model's own rendering stays.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from synthswap.swap.data import FaceSource
from synthswap.swap.losses import low_pass
from synthswap.swap.paired_targets import PhotoWarper

# The feathering of the photo's mask, in pixels of a 128 px face: its edge must not draw a line.
FEATHER_128 = 3.0


def coarse(image: np.ndarray, factor: int) -> np.ndarray:
    """`image` (H x W x C float) reduced by `factor` by means and brought back: the band below its
    size / factor, by the very filter the paired loss trains with (losses.low_pass)."""
    if factor <= 1:
        return image
    nchw = torch.from_numpy(np.ascontiguousarray(image, np.float32)).permute(2, 0, 1)[None]
    return low_pass(nchw, factor)[0].permute(1, 2, 0).numpy()


class PhotoDetail:
    """`detail(generated, landmarks)`: a swapped face (float BGR 0..1, size x size) with the detail
    above `band` px taken from the subject's photo warped to that destination face."""

    def __init__(self, faces_a: FaceSource, shape_b: np.ndarray, band: int):
        if band < 1 or faces_a.size % band:
            raise ValueError(f"the photo-detail band must divide the face size {faces_a.size}, not {band}")
        self.warper = PhotoWarper(faces_a, shape_b)
        self.size, self.factor = faces_a.size, faces_a.size // band
        self.feather = FEATHER_128 * self.size / 128
        self.previous: int | None = None  # the photo of the last frame's face, kept while it fits (in a video)

    @classmethod
    def from_model(cls, meta: dict, size: int, band: int) -> PhotoDetail:
        """From a swap model's model.json: its subject facesets (A; their real photos) and its destination
        facesets (B; their mean face), read at the model's `size`. FacesetError if they are gone."""
        # Not preloaded: PhotoWarper reads only the real photos, not the hundreds of synthetic faces beside them.
        faces_a = FaceSource([d["path"] for d in meta["data"]["A"]], size, preload=False)
        faces_b = FaceSource([d["path"] for d in meta["data"]["B"]], size, preload=False)
        return cls(faces_a, faces_b.landmarks.astype(np.float64).mean(0), band)

    def reset(self) -> None:
        """A new shot (or a frame without a face): the next face picks its photo afresh."""
        self.previous = None

    def __call__(self, generated: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        photo, mask, _, self.previous = self.warper.warp(landmarks[:, :2], self.previous)
        photo = photo.astype(np.float32) / 255.0
        weight = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), self.feather)[..., None]
        detail = photo - coarse(photo, self.factor)
        # `coarse` (box down, bilinear up) is not quite a projection: what it leaves in the detail would
        # bring the photo's own shading back; a second pass takes out most of it.
        detail -= coarse(detail, self.factor)
        # Where the photo holds: the model's coarse band and the photo's detail; elsewhere the model's all.
        return np.clip(generated + weight * (coarse(generated, self.factor) + detail - generated), 0.0, 1.0)


__all__ = ["PhotoDetail", "coarse"]
