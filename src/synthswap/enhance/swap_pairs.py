"""Training pairs that show the enhancer exactly what it will be asked to restore: this swap model's
rendering of the subject, next to the subject's own photo at full resolution.

The generic enhancer learns from made-up degradations (blur, bilateral smoothing, JPEG); a trained
swap model loses detail in its own way (the autoencoder's averaging, its 128 px grid, what it never
learned about this face). Its reconstruction of each of the subject's photos, brought to the face's
native size by bicubic (as convert brings it), paired with the photo cut again at that size, is a
degradation of that exact kind, and its target is the subject's own detail, not an average face's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import cv2
import numpy as np
import torch

from synthswap.enhance.degrade import upscale
from synthswap.faces.recrop import recrop
from synthswap.faceset import Faceset
from synthswap.precision import resolve_precision
from synthswap.swap.loading import load_model

Pair = tuple[np.ndarray, np.ndarray]  # (soft, sharp): BGR uint8, same square size


def swap_pairs(swap_model: str | os.PathLike, subject: Sequence[str | os.PathLike], max_faces: int = 64,
               max_size: int = 512, device: str = "cpu", precision: str = "auto") -> list[Pair]:
    """(the swap model's rendering of the face, brought up to its native size; the face cut again at
    that size) for up to `max_faces` real faces of the subject's facesets, spread evenly over them."""
    facesets = [Faceset.open(path) for path in subject]
    faces = [(n, face) for n, fs in enumerate(facesets) for face in fs if not face.synthetic]
    if len(faces) > max_faces:
        faces = [faces[i] for i in np.linspace(0, len(faces) - 1, max_faces).round().astype(int)]
    model, _ = load_model(swap_model, device)
    size = model.config.resolution
    autocast = resolve_precision(precision, torch.device(device)).autocast
    pairs = []
    for n, fs in enumerate(facesets):
        for _face, sharp in recrop([face for m, face in faces if m == n], fs.size, max_size):
            small = cv2.resize(sharp, (size, size), interpolation=cv2.INTER_AREA)
            x = torch.from_numpy(small).to(device).permute(2, 0, 1)[None].float().div(255)
            with torch.no_grad(), autocast():
                rendered, _mask = model.swap(x)
            rendered8 = rendered[0].float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
            pairs.append((upscale(rendered8, sharp.shape[0]), sharp))
    return pairs
