"""Similarity alignment to one fixed canonical template, and the inverse warp.

The template places five points (eye centres, nose tip, mouth corners) in unit crop
coordinates. The proportions are those of the common 5-point face template, scaled so
the inter-ocular distance is 30% of the crop: the whole face from forehead to chin fits
with a margin, as in DeepFaceLab's "whole face" crops.
"""

from __future__ import annotations

import cv2
import numpy as np

from synthswap.faces.landmarks import five_points

TEMPLATE_NAME = "synthswap-5pt-v1"
# (x, y) in [0, 1]: image-left eye, image-right eye, nose tip, mouth corners.
TEMPLATE_POINTS = np.array(
    [[0.35, 0.40], [0.65, 0.40], [0.50, 0.571], [0.375, 0.748], [0.625, 0.748]], dtype=np.float64
)
# Eyes weigh three times the others: they are the most reliable points and anchor the crop.
TEMPLATE_WEIGHTS = np.array([3.0, 3.0, 1.0, 1.0, 1.0])


def template_info() -> dict:
    return {"name": TEMPLATE_NAME, "points": TEMPLATE_POINTS.tolist(),
            "point_names": ["eye_image_left", "eye_image_right", "nose_tip", "mouth_image_left", "mouth_image_right"]}


def similarity_from_points(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted least-squares similarity (rotation, uniform scale, translation): 2x3 matrix mapping src to dst."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    s, d = src - mu_s, dst - mu_d
    # Closed form for the 2-D case: z_dst = (a + ib) z_src.
    denom = float(w @ (s**2).sum(1))
    a = float(w @ (s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1])) / denom
    b = float(w @ (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0])) / denom
    rot = np.array([[a, -b], [b, a]])
    return np.hstack([rot, (mu_d - rot @ mu_s)[:, None]])


def alignment_affine(landmarks: np.ndarray, size: int) -> np.ndarray:
    """2x3 affine mapping image pixels to a `size` x `size` aligned crop."""
    return similarity_from_points(five_points(landmarks), TEMPLATE_POINTS * size, TEMPLATE_WEIGHTS)


def side_in_frame(affine: np.ndarray, crop_size: int) -> float:
    """How many frame pixels the `crop_size` px aligned crop spans: its side over the alignment's scale."""
    scale = float(np.sqrt(abs(np.linalg.det(np.asarray(affine, np.float64)[:, :2]))))
    return crop_size / max(scale, 1e-6)


def warp_to_crop(image: np.ndarray, affine: np.ndarray, size: int, resample: int = cv2.INTER_LINEAR) -> np.ndarray:
    """The aligned crop; `resample`: the interpolation (bilinear unless a caller needs better, see
    SHARP_RESAMPLE)."""
    return cv2.warpAffine(image, affine, (size, size), flags=resample, borderMode=cv2.BORDER_REPLICATE)


# Resampling a face at about its own scale (a synthetic face re-aligned, a photo warped by an
# edit) puts most pixels between source pixels, where bilinear interpolation averages neighbours
# and halves the finest detail each time: the study's 200 warp faces of d9 had 0.24 of their
# photos' Laplacian variance bilinearly and 0.72 with Lanczos, the photos' own after a 2x
# downscale (benchmarks/faceset_sharpness.py; docs/swap.md). A face brought down from a larger
# frame (extraction) loses little either way.
SHARP_RESAMPLE = cv2.INTER_LANCZOS4


def invert_affine(affine: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(affine, np.float64))


def transform_points(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, np.float64)[:, :2]
    return pts @ np.asarray(affine)[:, :2].T + np.asarray(affine)[:, 2]
