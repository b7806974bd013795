"""The non-GAN control: landmark-driven piecewise-affine warping of real photos.

An edit moves the 478 landmarks of an aligned crop (open the jaw, lift and widen the
mouth corners, lower the upper lids, raise the brows, turn the head a little) and the
image follows: the crop is cut into Delaunay triangles over the moved landmarks plus
fixed border points, and every triangle is filled from its triangle in the original
(backward mapping, so every output pixel is covered once). Warping cannot invent what
the photo does not show; the one thing it paints is the inside of a mouth opened wider
than in the photo (a dark, feathered fill), since stretched lips read as no face at all.

Edit amounts use the units of `faces.measure` (fractions of the inter-ocular distance)
and degrees for yaw and pitch, so "open the mouth by 0.2" means the lip gap grows by a
fifth of the eye distance, which the measurement of the result then confirms or not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from synthswap.faces.align import SHARP_RESAMPLE
from synthswap.faces.landmarks import FACE_OVAL, eye_centres

_UPPER_LID_LEFT = [246, 161, 160, 159, 158, 157, 173]  # image-left eye, outer -> inner corner
_UPPER_LID_RIGHT = [398, 384, 385, 386, 387, 388, 466]
_LOWER_LID_LEFT = [7, 163, 144, 145, 153, 154, 155]
_LOWER_LID_RIGHT = [382, 381, 380, 374, 373, 390, 249]
_INNER_MOUTH = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95]
_IRIS = list(range(468, 478))
_LOWER_LIP = [95, 88, 178, 87, 14, 317, 402, 318, 324, 146, 91, 181, 84, 17, 314, 405, 321, 375]
_UPPER_LIP = [191, 80, 81, 82, 13, 312, 311, 310, 415, 185, 40, 39, 37, 0, 267, 269, 270, 409]
_LIP_CORNERS = [61, 291, 78, 308]
_BROW_LEFT = [70, 63, 105, 66, 107, 46, 53, 52, 65, 55]
_BROW_RIGHT = [300, 293, 334, 296, 336, 276, 283, 282, 295, 285]
_MOUTH_CORNERS = (61, 291)

# The largest edits the warp attempts: beyond them the photo tears visibly.
LIMITS = {"mouth_open": (-0.3, 0.45), "mouth_width": (-0.12, 0.12), "smile": (-0.06, 0.1),
          "eye_open_left": (-0.25, 0.06), "eye_open_right": (-0.25, 0.06), "brow_raise": (-0.06, 0.1),
          "yaw": (-15.0, 15.0), "pitch": (-12.0, 12.0)}


@dataclass
class WarpEdit:
    """Changes to apply, in measurement units (see module docstring); 0 = leave as is."""

    mouth_open: float = 0.0
    mouth_width: float = 0.0
    smile: float = 0.0
    eye_open_left: float = 0.0
    eye_open_right: float = 0.0
    brow_raise: float = 0.0
    yaw: float = 0.0
    pitch: float = 0.0

    def clipped(self) -> "WarpEdit":
        return WarpEdit(**{k: float(np.clip(v, *LIMITS[k])) for k, v in asdict(self).items()})

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 5) for k, v in asdict(self).items()}


def _gauss(d2: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-d2 / (2 * sigma * sigma))


def edit_landmarks(lm: np.ndarray, edit: WarpEdit) -> np.ndarray:
    """Moved copy of (478, 2) crop-pixel landmarks."""
    lm = np.asarray(lm, np.float64)[:, :2]
    out = lm.copy()
    eyes = eye_centres(lm)
    iod = float(np.linalg.norm(eyes[1] - eyes[0]))
    cx = float(lm[FACE_OVAL, 0].mean())

    # Eyelids first, on the original positions: the upper lid and the iris move towards
    # the lower lid by the same factor, so a negative change closes the eye (an iris left
    # in place would keep it looking open) and the lids never cross.
    for upper, lower, amount in ((_UPPER_LID_LEFT, _LOWER_LID_LEFT, edit.eye_open_left),
                                 (_UPPER_LID_RIGHT, _LOWER_LID_RIGHT, edit.eye_open_right)):
        if not amount:
            continue
        centre_gap = max(lm[lower[3], 1] - lm[upper[3], 1], 1e-3)
        ratio = float(np.clip((centre_gap + amount * iod) / centre_gap, 0.05, 1.8))
        order = np.argsort(lm[lower, 0])
        lx, ly = lm[lower, 0][order], lm[lower, 1][order]
        lower_y = np.interp(lm[upper, 0], lx, ly)
        out[upper, 1] = lower_y + (lm[upper, 1] - lower_y) * ratio
        eye_c = lm[upper + lower].mean(0)
        iris = [i for i in _IRIS if np.linalg.norm(lm[i] - eye_c) < 0.35 * iod]
        if iris:
            iris_lower = np.interp(lm[iris, 0], lx, ly)
            out[iris, 1] = iris_lower + (lm[iris, 1] - iris_lower) * ratio

    # Brows (and the skin just around them) go up.
    if edit.brow_raise:
        for brow in (_BROW_LEFT, _BROW_RIGHT):
            c = lm[brow].mean(0)
            w = _gauss(((lm - c) ** 2).sum(1), 0.28 * iod)
            out[:, 1] -= edit.brow_raise * iod * w

    # Jaw: everything below the lip line drops, most in the middle of the face.
    if edit.mouth_open:
        split = (lm[13, 1] + lm[14, 1]) / 2
        below = np.clip((lm[:, 1] - split) / (0.25 * iod), 0, 1)
        below[_LOWER_LIP] = 1.0  # the whole lower lip goes with the jaw, even right at the split
        below[_LIP_CORNERS] = 0.4
        below[_UPPER_LIP] = 0.0  # the upper lip stays with the upper jaw
        across = _gauss((lm[:, 0] - cx) ** 2, 0.9 * iod)
        drop = edit.mouth_open * iod * below * across
        if edit.mouth_open < 0:  # never close past the upper lip
            drop = np.maximum(drop, -np.maximum(lm[14, 1] - lm[13, 1], 0) * below * across)
        out[:, 1] += drop

    # Mouth corners: outward (width, smile) and up (smile), dragging the cheeks a little.
    if edit.smile or edit.mouth_width:
        for idx, side in ((_MOUTH_CORNERS[0], -1.0), (_MOUTH_CORNERS[1], 1.0)):
            w = _gauss(((lm - lm[idx]) ** 2).sum(1), 0.22 * iod)
            out[:, 0] += side * (edit.mouth_width / 2 + 0.5 * max(edit.smile, 0)) * iod * w
            out[:, 1] -= edit.smile * iod * w

    # Small head turns: rotate about the face centre with depth from an ellipsoid over the
    # face oval (nose and cheeks nearer the camera than the outline), bulged at the nose.
    if edit.yaw or edit.pitch:
        oval = lm[FACE_OVAL]
        centre = oval.mean(0)
        half = (oval.max(0) - oval.min(0)) / 2
        r2 = (((lm - centre) / half) ** 2).sum(1)
        depth = np.sqrt(np.clip(1 - r2, 0, 1)) * half[0] * 0.9
        depth += 0.35 * iod * _gauss(((lm - lm[1]) ** 2).sum(1), 0.25 * iod)
        yaw, pitch = np.radians(edit.yaw), np.radians(edit.pitch)
        rel = out - centre
        x = rel[:, 0] * np.cos(yaw) + depth * np.sin(yaw)
        y = rel[:, 1] * np.cos(pitch) - depth * np.sin(pitch)  # looking up moves the nose up
        out = np.stack([x, y], 1) + centre
    return out


def _border_points(size: int, per_side: int = 4) -> np.ndarray:
    t = np.linspace(0, size - 1, per_side + 1)
    pts = [(x, 0) for x in t] + [(x, size - 1) for x in t] + [(0, y) for y in t[1:-1]] + [(size - 1, y) for y in t[1:-1]]
    return np.array(pts, np.float64)


def piecewise_affine(image: np.ndarray, src: np.ndarray, dst: np.ndarray, resample: int = SHARP_RESAMPLE) -> np.ndarray:
    """Warp `image` so that points `src` land on `dst` (both (K, 2), image pixels), interpolated by
    `resample` (align.SHARP_RESAMPLE: bilinear would halve the finest detail)."""
    h, w = image.shape[:2]
    border = _border_points(max(h, w))
    src = np.concatenate([src, border])
    dst = np.concatenate([dst, border])
    tri = Delaunay(dst).simplices
    # Triangle index of every output pixel (drawn in order; shared edges take the last one).
    ids = np.full((h, w), -1, np.int32)
    for i, t in enumerate(tri):
        cv2.fillConvexPoly(ids, np.round(dst[t] * 16).astype(np.int32), int(i), lineType=cv2.LINE_8, shift=4)
    # One affine per triangle, output -> input.
    mats = np.zeros((len(tri), 2, 3), np.float64)
    for i, t in enumerate(tri):
        mats[i] = cv2.getAffineTransform(dst[t].astype(np.float32), src[t].astype(np.float32))
    ys, xs = np.mgrid[0:h, 0:w]
    idx = np.where(ids >= 0, ids, 0)
    m = mats[idx]  # (h, w, 2, 3)
    map_x = m[..., 0, 0] * xs + m[..., 0, 1] * ys + m[..., 0, 2]
    map_y = m[..., 1, 0] * xs + m[..., 1, 1] * ys + m[..., 1, 2]
    outside = ids < 0  # pixels no triangle reached (rounding at the rim) sample themselves
    map_x[outside], map_y[outside] = xs[outside], ys[outside]
    return cv2.remap(image, map_x.astype(np.float32), map_y.astype(np.float32), resample,
                     borderMode=cv2.BORDER_REPLICATE)


def _paint_mouth(image: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Darken the inside of a mouth that the edit opened wider than the photo shows."""
    src_gap = max(src[14, 1] - src[13, 1], 0.0)
    dst_gap = max(dst[14, 1] - dst[13, 1], 0.0)
    iod = float(np.linalg.norm(eye_centres(dst)[1] - eye_centres(dst)[0]))
    if dst_gap < 0.03 * iod or dst_gap <= src_gap:
        return image
    strength = float(np.clip((dst_gap - src_gap) / dst_gap, 0, 1))
    h, w = image.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(dst[_INNER_MOUTH] * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    k = max(3, int(round(0.04 * iod)) * 2 + 1)
    alpha = cv2.GaussianBlur(mask, (k, k), 0).astype(np.float32)[..., None] / 255 * strength * 0.9
    # Shadowed mouth: the lips' own colour, much darker, a little lighter towards the lower teeth.
    lips = image[np.clip(dst[_INNER_MOUTH, 1].astype(int), 0, h - 1), np.clip(dst[_INNER_MOUTH, 0].astype(int), 0, w - 1)]
    colour = np.asarray(lips, np.float32).mean(0) * 0.25
    out = image.astype(np.float32) * (1 - alpha) + colour * alpha
    return np.clip(out, 0, 255).astype(np.uint8)


def warp_face(image: np.ndarray, landmarks: np.ndarray, edit: WarpEdit,
              resample: int = SHARP_RESAMPLE) -> tuple[np.ndarray, np.ndarray]:
    """(warped image, moved landmarks) for an aligned crop and its (478, 2) crop-pixel landmarks."""
    src = np.asarray(landmarks, np.float64)[:, :2]
    dst = edit_landmarks(src, edit.clipped())
    out = piecewise_affine(image, src, dst, resample)
    return _paint_mouth(out, src, dst), dst
