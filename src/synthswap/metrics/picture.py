"""How much a picture changed when something was added to it (the invisible watermark): SSIM of the
brightness, and the change's energy in the picture's flat and textured blocks, where the eye sees a
change most and least."""

from __future__ import annotations

import cv2
import numpy as np

BLOCK = 16  # px
FLAT_STD, TEXTURED_STD = 2.0, 8.0  # a block's brightness std (grey levels) below / above which it is flat / textured


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two grey planes (the usual constants for 8 bits, Gaussian window sigma 1.5)."""
    a, b = a.astype(np.float64), b.astype(np.float64)

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5)

    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma * ma, blur(b * b) - mb * mb, blur(a * b) - ma * mb
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return float((((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))).mean())


def block_energy(plain: np.ndarray, changed: np.ndarray) -> tuple[list[float], list[float]]:
    """The mean squared change (over B, G, R) of each BLOCK px block of the BGR picture `plain` that is
    flat (brightness std < FLAT_STD) and of each that is textured (std > TEXTURED_STD)."""
    grey = cv2.cvtColor(plain, cv2.COLOR_BGR2GRAY).astype(np.float32)
    diff = changed.astype(np.float32) - plain
    flat: list[float] = []
    textured: list[float] = []
    for y in range(0, grey.shape[0] - BLOCK + 1, BLOCK):
        for x in range(0, grey.shape[1] - BLOCK + 1, BLOCK):
            std = grey[y:y + BLOCK, x:x + BLOCK].std()
            if std < FLAT_STD or std > TEXTURED_STD:
                (flat if std < FLAT_STD else textured).append(float((diff[y:y + BLOCK, x:x + BLOCK] ** 2).mean()))
    return flat, textured
