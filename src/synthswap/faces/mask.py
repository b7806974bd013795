"""Face masks from the face-oval landmarks, and the mouth's opening."""

from __future__ import annotations

import cv2
import numpy as np

from synthswap.faces.landmarks import FACE_OVAL, LIPS_INNER


def face_mask(landmarks_xy: np.ndarray, size: int) -> np.ndarray:
    """8-bit mask (255 inside the face oval) for landmarks given in crop pixels."""
    mask = np.zeros((size, size), np.uint8)
    polygon = np.round(landmarks_xy[FACE_OVAL, :2] * 16).astype(np.int32)  # 4 fractional bits
    cv2.fillPoly(mask, [polygon], 255, lineType=cv2.LINE_AA, shift=4)
    return mask


def mouth_opening_mask(landmarks_xy: np.ndarray, size: int) -> np.ndarray:
    """8-bit mask (255 inside the lips' inner edge: teeth, tongue, the mouth's dark) for landmarks in
    crop pixels; empty where the lips meet."""
    mask = np.zeros((size, size), np.uint8)
    polygon = np.round(landmarks_xy[LIPS_INNER, :2] * 16).astype(np.int32)
    cv2.fillPoly(mask, [polygon], 255, lineType=cv2.LINE_AA, shift=4)
    return mask
