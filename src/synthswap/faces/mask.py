"""Face masks from the face-oval landmarks."""

from __future__ import annotations

import cv2
import numpy as np

from synthswap.faces.landmarks import FACE_OVAL


def face_mask(landmarks_xy: np.ndarray, size: int) -> np.ndarray:
    """8-bit mask (255 inside the face oval) for landmarks given in crop pixels."""
    mask = np.zeros((size, size), np.uint8)
    polygon = np.round(landmarks_xy[FACE_OVAL, :2] * 16).astype(np.int32)  # 4 fractional bits
    cv2.fillPoly(mask, [polygon], 255, lineType=cv2.LINE_AA, shift=4)
    return mask
