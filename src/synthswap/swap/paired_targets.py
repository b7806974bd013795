"""Paired targets for the swap: the subject's own photos warped to each destination face's expression.

A DeepFaceLab-style swap never sees what B->A should look like: decoder A learns only from A's faces,
and the identity loss (SFace) is the one signal that reaches the swaps, which it pays for with patterns
tuned to the identity network (docs/swap.md). Here each destination face gets a target drawn from real
pixels: the subject's photo nearest in expression and pose, warped so its landmarks move by the
destination face's departure from the destination's mean face, and its eyes and mouth open exactly as
far as the destination face's (a person who talks with the mouth open on average must not be dubbed
by one who keeps it closed: the mouth has to follow the frame). The face keeps the subject's own shape
and the subject's own skin, eyes and brows at the photo's resolution, with the destination's lids,
gaze, mouth and head turn. A warp cannot show what the photo does not: an eye or a mouth the destination face
opens wider than the photo is stretched skin, not an open eye or teeth, so the target's mask leaves that
region out and the swap learns it from the autoencoder and the identity loss alone.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.interpolate import RBFInterpolator

from synthswap.faces.align import SHARP_RESAMPLE
from synthswap.faces.landmarks import LEFT_EYE_CONTOUR, LIPS_OUTER, RIGHT_EYE_CONTOUR, eye_centres
from synthswap.swap.data import FaceSource, eyes_mouth_mask
from synthswap.synth.warp import WarpEdit, edit_landmarks

# The warp's displacement is solved on a coarse grid and enlarged: a thin-plate spline through 478
# points per output pixel would cost 60x more, and the field is smooth anyway.
WARP_GRID = 32
# Landmark noise and lips that meet (their inner points coincide) would make an exact spline fold the
# skin over itself; smoothing in pixels^2 of the landmark fit trades exactness for no folds.
WARP_SMOOTHING = 4.0
# Each opening, by the synth.warp edit that opens it: its outline, and the landmarks across its middle
# whose vertical gap measures how open it is (faces.measure's).
OPENINGS = {"eye_open_left": (LEFT_EYE_CONTOUR, 159, 145), "eye_open_right": (RIGHT_EYE_CONTOUR, 386, 374),
            "mouth_open": (LIPS_OUTER, 13, 14)}
# How much wider than the photo (in eye distances between the eye centres, as faces.measure reads
# openings) the warp may open one: beyond it the target shows stretched lids or lips where the
# destination shows an eye or teeth. Lids move by about 0.15 of that distance between half-closed and
# open. (It was 0.03 of the distance between the outer eye corners, which is 1.45 times longer.)
MAX_OPENING = 0.045


def smooth_warp_maps(src: np.ndarray, dst: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap's coordinates (x, y; float32 (size, size)) of a warp of a size x size image that moves
    points `src` near `dst` (both (K, 2), pixels): a smoothed thin-plate spline that holds the image
    border still; no triangle can fold, unlike a piecewise-affine warp. Solved once per face, used for
    its photo and its mask."""
    edge = np.linspace(0, size - 1, 9)
    border = np.array([(x, y) for x in edge for y in (0, size - 1)] + [(x, y) for y in edge[1:-1] for x in (0, size - 1)])
    points = np.concatenate([dst, border])
    offsets = np.concatenate([src - dst, np.zeros_like(border)])
    spline = RBFInterpolator(points, offsets, kernel="thin_plate_spline", smoothing=WARP_SMOOTHING)
    axis = np.linspace(0, size - 1, WARP_GRID)
    gx, gy = np.meshgrid(axis, axis)
    coarse = spline(np.stack([gx.ravel(), gy.ravel()], 1)).reshape(WARP_GRID, WARP_GRID, 2).astype(np.float32)
    field = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return xs + field[..., 0], ys + field[..., 1]


def smooth_warp(image: np.ndarray, maps: tuple[np.ndarray, np.ndarray], resample: int = SHARP_RESAMPLE) -> np.ndarray:
    """`image` warped by `smooth_warp_maps`' coordinates."""
    return cv2.remap(image, *maps, resample, borderMode=cv2.BORDER_REPLICATE)


def _opened_too_far(photo: np.ndarray, target: np.ndarray, size: int) -> np.ndarray:
    """uint8 0/255 mask of the eyes and mouth that `target`'s landmarks open wider than `photo`'s by
    more than MAX_OPENING (dilated as the eyes-mouth weighting is)."""
    mask = np.zeros((size, size), np.uint8)
    # Both in the target's eye distance: the photo is warped into the target's frame.
    gaps_photo, gaps_target, iod = _gaps(photo), _gaps(target), _eye_distance(target)
    for name, (outline, _, _) in OPENINGS.items():
        if gaps_target[name] - gaps_photo[name] > MAX_OPENING * iod:
            cv2.fillConvexPoly(mask, cv2.convexHull(np.round(target[outline]).astype(np.int32)), 255)
    k = max(3, size // 12) | 1  # the lids, lips and the skin they move
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))


def target_landmarks(shape_a: np.ndarray, destination: np.ndarray, shape_b: np.ndarray) -> np.ndarray:
    """Where a paired target's (478, 2) landmarks go: the subject's mean face `shape_a` moved by the
    destination face's departure from its mean face `shape_b`, then its lids and lips opened or closed
    to the destination face's own openings (in eye distances, as faces.measure reads them)."""
    target = shape_a + destination - shape_b
    want, have = _openings(destination), _openings(target)
    return edit_landmarks(target, WarpEdit(**{k: want[k] - have[k] for k in OPENINGS}).clipped())


def _gaps(landmarks: np.ndarray) -> dict[str, float]:
    """Each opening's vertical gap in pixels, signed: a departure added to a mean face with a narrower
    mouth than the destination's can cross the lips, which a gap's length would read as open."""
    return {name: float(landmarks[lower, 1] - landmarks[upper, 1]) for name, (_, upper, lower) in OPENINGS.items()}


def _eye_distance(landmarks: np.ndarray) -> float:
    """The distance between the eye centres, the unit faces.measure reads openings in."""
    eyes = eye_centres(landmarks)
    return float(np.linalg.norm(eyes[1] - eyes[0]))


def _openings(landmarks: np.ndarray) -> dict[str, float]:
    """Each opening's signed gap (`_gaps`) in eye distances, as faces.measure reads them."""
    iod = _eye_distance(landmarks)
    return {name: gap / iod for name, gap in _gaps(landmarks).items()}


def paired_targets(faces_a: FaceSource, faces_b: FaceSource) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For every face of `faces_b`: (images (N, S, S, 3) BGR uint8; masks (N, S, S) uint8 of where the
    target holds: the warped face less the eyes and mouth opened beyond the photo; eyes-mouth masks of
    the rest; the index in `faces_a` of the photo each was warped from). Only the subject's real photos
    are warped (synthetic faces are too soft to teach detail). Both sources at one size."""
    if faces_a.size != faces_b.size:
        raise ValueError(f"paired targets need one size, not {faces_a.size} and {faces_b.size}")
    size = faces_a.size
    real = np.flatnonzero(~faces_a.synthetic)
    real = real if len(real) else np.arange(len(faces_a))
    images_a, masks_a, _ = faces_a.faces(real)
    lm_a, lm_b = faces_a.landmarks[real].astype(np.float64), faces_b.landmarks.astype(np.float64)
    shape_a, shape_b = lm_a.mean(0), lm_b.mean(0)
    # Each target warps the photo that departs from the subject's mean face most like it (the least to warp).
    departures_a = (lm_a - shape_a).reshape(len(real), -1)
    images, masks, regions, chosen = [], [], [], []
    for j in range(len(faces_b)):
        target = target_landmarks(shape_a, lm_b[j], shape_b)
        i = int(np.argmin(((departures_a - (target - shape_a).reshape(1, -1)) ** 2).sum(1)))
        unseen = _opened_too_far(lm_a[i], target, size)
        maps = smooth_warp_maps(lm_a[i], target, size)
        images.append(smooth_warp(images_a[i], maps))
        masks.append(np.minimum(smooth_warp(masks_a[i], maps), 255 - unseen))
        regions.append(np.minimum(eyes_mouth_mask(target, size), 255 - unseen))
        chosen.append(int(real[i]))
    return np.stack(images), np.stack(masks), np.stack(regions), np.array(chosen)


__all__ = ["paired_targets"]
