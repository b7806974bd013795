"""Temporal smoothing of landmarks against frame-to-frame jitter: the One-Euro filter.

Casiez, Roussel and Vogel (CHI 2012): a low-pass filter whose cutoff rises with speed,
so a still face is steadied strongly (low cutoff, no jitter) while a moving one is
followed with little lag (high cutoff). Works on arrays of any shape (e.g. 478 x 3).
"""

from __future__ import annotations

import math

import numpy as np


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """`min_cutoff` (Hz): smoothing at rest; `beta`: how fast the cutoff grows with speed
    (per unit/s of the signal, here pixels/s); `d_cutoff`: cutoff of the speed estimate."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0):
        if min_cutoff <= 0:
            raise ValueError("min_cutoff must be positive (use no filter to turn smoothing off)")
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self.reset()

    def reset(self) -> None:
        """Forget the past (call when the face is lost, so the next one is not dragged)."""
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self._x is None or self._t is None or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x.copy()
