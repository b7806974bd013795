"""What a face looks like when the enhancer is asked to restore it, made from a sharp one.

A swap model's face reaches the frame through a chain of losses: it is rendered at 64 (or 96,
128) px, smoothed by the autoencoder (fine texture gone, edges kept), slightly off in colour,
then scaled up by bicubic into a box of 150-250 px; the video it is compared with went through
an H.264-like codec. `degrade` reproduces that chain on a sharp photo with random strengths, so
the network learns to undo it. The pair it returns is (degraded, sharp) at the same size.
JPEG stands in for the video codec (both quantise 8x8 DCT blocks); the autoencoder's softness is
mimicked by an edge-preserving (bilateral) filter at the low resolution. The colour change is
applied to both images of a pair: the enhancer must keep the input's colours, not guess them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class DegradeOptions:
    low_sizes: tuple[int, int] = (48, 100)  # the face's size before upscaling, px (64: today's swap)
    blur_sigma: tuple[float, float] = (0.0, 1.2)  # Gaussian blur before downscaling, in low-res pixels
    soften: float = 0.6  # probability of the autoencoder-like bilateral smoothing
    jpeg_quality: tuple[int, int] = (35, 95)
    jpeg_prob: float = 0.7
    noise_sigma: tuple[float, float] = (0.0, 4.0)  # Gaussian noise on 0-255, at low resolution
    colour_jitter: float = 0.06  # per-channel gain, applied to both images of a pair


DEFAULT_DEGRADE = DegradeOptions()  # what the shipped enhancer was trained with


def _jitter_colour(img: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    gain = 1.0 + rng.uniform(-amount, amount, 3)
    return np.clip(img.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def degrade_low(sharp: np.ndarray, low: int, rng: np.random.Generator, opts: DegradeOptions) -> np.ndarray:
    """The sharp BGR uint8 image brought down to `low` px with blur, softening, noise and JPEG."""
    h = sharp.shape[0]
    sigma = rng.uniform(*opts.blur_sigma) * h / low  # in the sharp image's pixels
    img = cv2.GaussianBlur(sharp, (0, 0), sigma) if sigma > 0.05 else sharp
    img = cv2.resize(img, (low, low), interpolation=cv2.INTER_AREA if rng.random() < 0.7 else cv2.INTER_LINEAR)
    if rng.random() < opts.soften:
        img = cv2.bilateralFilter(img, 5, float(rng.uniform(10, 40)), float(rng.uniform(1, 3)))
    sigma_n = rng.uniform(*opts.noise_sigma)
    if sigma_n > 0.2:
        img = np.clip(img + rng.normal(0, sigma_n, img.shape), 0, 255).astype(np.uint8)
    if rng.random() < opts.jpeg_prob:
        quality = int(rng.integers(opts.jpeg_quality[0], opts.jpeg_quality[1] + 1))
        img = cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_COLOR)
    return img


def upscale(img: np.ndarray, size: int) -> np.ndarray:
    """The one way a face is brought to the size the frame needs before enhancement."""
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC)


def make_pair(sharp: np.ndarray, size: int, rng: np.random.Generator,
              opts: DegradeOptions = DEFAULT_DEGRADE) -> tuple[np.ndarray, np.ndarray]:
    """(degraded, sharp), both `size` px BGR uint8, from one sharp square photo or crop."""
    if sharp.shape[0] != size:
        sharp = cv2.resize(sharp, (size, size), interpolation=cv2.INTER_AREA if size < sharp.shape[0]
                           else cv2.INTER_CUBIC)
    if rng.random() < 0.5:
        sharp = np.ascontiguousarray(sharp[:, ::-1])
    sharp = _jitter_colour(sharp, rng, opts.colour_jitter)
    low = int(rng.integers(opts.low_sizes[0], opts.low_sizes[1] + 1))
    return upscale(degrade_low(sharp, low, rng, opts), size), sharp


def to_64(sharp: np.ndarray, size: int) -> np.ndarray:
    """The judge's fixed degradation: a face as a 64 px swap model gives it, brought back to `size`
    (area downscale, bicubic up; no random blur, noise or codec)."""
    return upscale(cv2.resize(sharp, (64, 64), interpolation=cv2.INTER_AREA), size)
