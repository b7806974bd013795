"""Training pairs that show the enhancer exactly what it will be asked to restore: this swap model's
rendering of the subject, next to the subject's own photo at full resolution.

The generic enhancer learns from made-up degradations (blur, bilateral smoothing, JPEG); a trained
swap model loses detail in its own way (the autoencoder's averaging, its 128 px grid, what it never
learned about this face). Its reconstruction of each of the subject's photos, brought to the face's
native size by bicubic (as convert brings it), paired with the photo cut again at that size, is a
degradation of that exact kind, and its target is the subject's own detail, not an average face's.
The swap model comes in as a function (`swap.loading.face_renderer`), so the enhancer does not
depend on the swap package.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from synthswap.enhance.degrade import upscale
from synthswap.enhance.recrop import recrop
from synthswap.faceset import Faceset

Pair = tuple[np.ndarray, np.ndarray]  # (soft, sharp): BGR uint8, same square size
Render = Callable[[np.ndarray], np.ndarray]  # an aligned BGR uint8 crop -> the model's rendering of it


def swap_pairs(render: Render, render_size: int, subject: Sequence[str | os.PathLike], max_faces: int = 64,
               max_size: int = 512) -> list[Pair]:
    """(the swap model's rendering of the face at `render_size`, brought up to its native size; the face
    cut again at that size) for up to `max_faces` real faces of the subject's facesets, spread evenly."""
    facesets = [Faceset.open(path) for path in subject]
    faces = [(n, face) for n, fs in enumerate(facesets) for face in fs if not face.synthetic]
    if len(faces) > max_faces:
        faces = [faces[i] for i in np.linspace(0, len(faces) - 1, max_faces).round().astype(int)]
    pairs = []
    for n, fs in enumerate(facesets):
        for _face, sharp in recrop([face for m, face in faces if m == n], fs.size, max_size):
            small = cv2.resize(sharp, (render_size, render_size), interpolation=cv2.INTER_AREA)
            pairs.append((upscale(render(small), sharp.shape[0]), sharp))
    return pairs
