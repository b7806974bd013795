"""Colour transfer: make the generated face's colours match the destination face's.

Both functions take float32 BGR images in 0..1 and a mask (HxW, >0.5 = face) that
selects the pixels whose statistics are compared, and return a float32 BGR image.
"""

from __future__ import annotations

import cv2
import numpy as np

COLOR_MODES = ("rct", "hist", "none")


def _masked(pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    sel = pixels[mask > 0.5]
    return sel if len(sel) >= 16 else pixels.reshape(-1, pixels.shape[-1])


def _mean_std(pixels: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation (+1e-6) of the masked pixels (all, when fewer than 16
    are masked), computed by OpenCV in one pass instead of gathering them."""
    selected = (mask > 0.5).astype(np.uint8)
    mean, sd = cv2.meanStdDev(pixels, mask=selected if cv2.countNonZero(selected) >= 16 else None)
    return mean[:, 0].astype(np.float32), sd[:, 0].astype(np.float32) + 1e-6


def reinhard_lab(src: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reinhard et al. (2001) colour transfer (DeepFaceLab's RCT): match mean and std in LAB."""
    src_lab = cv2.cvtColor(np.clip(src, 0, 1).astype(np.float32), cv2.COLOR_BGR2LAB)
    ref_lab = cv2.cvtColor(np.clip(ref, 0, 1).astype(np.float32), cv2.COLOR_BGR2LAB)
    mu_s, sd_s = _mean_std(src_lab, mask)
    mu_r, sd_r = _mean_std(ref_lab, mask)
    # Cap the gain: a nearly flat source channel must not be blown up into noise.
    out = (src_lab - mu_s) * np.minimum(sd_r / sd_s, 4.0) + mu_r
    out[..., 0] = np.clip(out[..., 0], 0, 100)
    out[..., 1:] = np.clip(out[..., 1:], -127, 127)
    return np.clip(cv2.cvtColor(out.astype(np.float32), cv2.COLOR_LAB2BGR), 0, 1)


def histogram_match(src: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-channel histogram matching (BGR, 256 bins) of the masked pixels."""
    src8 = np.clip(src * 255 + 0.5, 0, 255).astype(np.uint8)
    ref8 = np.clip(ref * 255 + 0.5, 0, 255).astype(np.uint8)
    out = np.empty_like(src8)
    for c in range(3):
        s = _masked(src8[..., c:c + 1], mask)[:, 0]
        r = _masked(ref8[..., c:c + 1], mask)[:, 0]
        s_cdf = np.cumsum(np.bincount(s, minlength=256)).astype(np.float64)
        r_cdf = np.cumsum(np.bincount(r, minlength=256)).astype(np.float64)
        s_cdf /= s_cdf[-1]
        r_cdf /= r_cdf[-1]
        lut = np.interp(s_cdf, r_cdf, np.arange(256)).round().astype(np.uint8)
        out[..., c] = lut[src8[..., c]]
    return out.astype(np.float32) / 255.0


def transfer(mode: str, src: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> np.ndarray:
    if mode == "rct":
        return reinhard_lab(src, ref, mask)
    if mode == "hist":
        return histogram_match(src, ref, mask)
    if mode == "none":
        return src
    raise ValueError(f"unknown colour transfer '{mode}'; choose one of {', '.join(COLOR_MODES)}")
