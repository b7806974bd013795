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

# In a video, the photo warped for the frame before is kept unless another needs less than this share
# of its warp: on d3 -> d10 (10 photos, 448 frames) the nearest photo changed 36 times, and each change
# swaps the face's fine detail at once; with 0.8, 2 changes, for 1% more warp on average.
SWITCH_RATIO = 0.8


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


class PhotoWarper:
    """The subject's real photos (of `faces_a`), each destination face's nearest one warped to it: the
    one implementation behind the swap trainer's paired targets and convert's photo detail
    (swap/photo_detail.py). `shape_b`: the destination's mean face (478, 2) in pixels of the size."""

    def __init__(self, faces_a: FaceSource, shape_b: np.ndarray):
        real = np.flatnonzero(~faces_a.synthetic)
        self.real = real if len(real) else np.arange(len(faces_a))
        self.size = faces_a.size
        self.images, self.masks, _ = faces_a.faces(self.real)
        self.landmarks = faces_a.landmarks[self.real].astype(np.float64)
        self.shape_a, self.shape_b = self.landmarks.mean(0), np.asarray(shape_b, np.float64)
        self.departures = (self.landmarks - self.shape_a).reshape(len(self.real), -1)

    def warp(self, landmarks_b: np.ndarray, previous: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """For one destination face's landmarks (478, 2 px): the target (BGR uint8), its mask (uint8, where
        it holds: the warped face less the eyes and mouth opened beyond the photo), the eyes-mouth mask
        of the rest, and the index in `faces_a` of the photo warped. `previous` (that index for the
        frame before, in a video) is kept unless another photo is clearly nearer."""
        size = self.size
        target = target_landmarks(self.shape_a, np.asarray(landmarks_b, np.float64), self.shape_b)
        # The photo that departs from the subject's mean face most like the target (the least to warp).
        cost = ((self.departures - (target - self.shape_a).reshape(1, -1)) ** 2).sum(1)
        i = int(np.argmin(cost))
        kept = np.flatnonzero(self.real == previous)
        if len(kept) and cost[i] > SWITCH_RATIO * cost[kept[0]]:
            i = int(kept[0])
        unseen = _opened_too_far(self.landmarks[i], target, size)
        maps = smooth_warp_maps(self.landmarks[i], target, size)
        return (smooth_warp(self.images[i], maps), np.minimum(smooth_warp(self.masks[i], maps), 255 - unseen),
                np.minimum(eyes_mouth_mask(target, size), 255 - unseen), int(self.real[i]))


def paired_targets(faces_a: FaceSource, faces_b: FaceSource) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For every face of `faces_b`: (images (N, S, S, 3) BGR uint8; masks (N, S, S) uint8 of where the
    target holds: the warped face less the eyes and mouth opened beyond the photo; eyes-mouth masks of
    the rest; the index in `faces_a` of the photo each was warped from). Only the subject's real photos
    are warped (synthetic faces are too soft to teach detail). Both sources at one size."""
    if faces_a.size != faces_b.size:
        raise ValueError(f"paired targets need one size, not {faces_a.size} and {faces_b.size}")
    warper = PhotoWarper(faces_a, faces_b.landmarks.astype(np.float64).mean(0))
    images, masks, regions, chosen = zip(*(warper.warp(face) for face in faces_b.landmarks))
    return np.stack(images), np.stack(masks), np.stack(regions), np.array(chosen)


__all__ = ["PhotoWarper", "paired_targets"]
