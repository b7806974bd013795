"""478 dense landmarks with MediaPipe FaceMesh (refine_landmarks: iris points included)."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

import cv2
import mediapipe as mp
import numpy as np

# Landmark indices used across the project (MediaPipe FaceMesh numbering). "Image-left"
# means the side that appears on the left of the picture (the subject's right).
EYE_IMAGE_LEFT = (33, 133)  # outer, inner corner
EYE_IMAGE_RIGHT = (362, 263)  # inner, outer corner
NOSE_TIP = 1
MOUTH_IMAGE_LEFT, MOUTH_IMAGE_RIGHT = 61, 291
CHIN = 152
# Face outline, in order around the face (MediaPipe's FACEMESH_FACE_OVAL as a polygon).
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
LEFT_EYE_CONTOUR = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246]
RIGHT_EYE_CONTOUR = [362, 382, 381, 380, 374, 373, 390, 249, 263, 466, 388, 387, 386, 385, 384, 398]
LIPS_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]
# The lips' inner edge, in order around the mouth's opening (13 and 14: its upper and lower middle).
LIPS_INNER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191]


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """(2, 2): image-left and image-right eye centres, as the midpoint of the eye corners."""
    return np.stack([landmarks[list(EYE_IMAGE_LEFT), :2].mean(0), landmarks[list(EYE_IMAGE_RIGHT), :2].mean(0)])


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """(5, 2) in YuNet's order: image-left eye, image-right eye, nose tip, mouth corners."""
    eyes = eye_centres(landmarks)
    return np.stack([eyes[0], eyes[1], landmarks[NOSE_TIP, :2],
                     landmarks[MOUTH_IMAGE_LEFT, :2], landmarks[MOUTH_IMAGE_RIGHT, :2]]).astype(np.float32)


@contextmanager
def _native_stderr_silenced():
    """MediaPipe's C++ side prints INFO/WARNING lines (XNNPACK delegate, feedback tensors)
    straight to file descriptor 2 while it starts; users should see our messages only."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class LandmarkModel:
    """FaceMesh run on a square crop around a detected face.

    Cropping first means the face fills FaceMesh's input whatever the frame size, and
    the face we chose (not whichever FaceMesh finds first) is the one measured.
    """

    def __init__(self, crop_scale: float = 1.8, crop_size: int = 256):
        self.crop_scale = crop_scale
        self.crop_size = crop_size
        with _native_stderr_silenced():
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.3
            )
            # The graph's threads print the rest of their start-up lines while the first image runs
            # (after the constructor returns): run one here, inside the silenced window. Each image is
            # independent (static_image_mode), so this changes no result.
            self._mesh.process(np.zeros((crop_size, crop_size, 3), np.uint8))
        self._face_seen = False  # the first face found prints one more line (landmark projection)

    def close(self) -> None:
        self._mesh.close()

    def __call__(self, bgr: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """(478, 3) landmarks in image pixels (z in the same scale, relative), or None."""
        x, y, w, h = box
        side = max(w, h) * self.crop_scale
        cx, cy = x + w / 2, y + h / 2
        scale = self.crop_size / side
        # Similarity that maps the square around the face to the crop (no rotation).
        to_crop = np.array([[scale, 0, self.crop_size / 2 - cx * scale], [0, scale, self.crop_size / 2 - cy * scale]])
        crop = cv2.warpAffine(bgr, to_crop, (self.crop_size, self.crop_size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
        if self._face_seen:
            result = self._mesh.process(rgb)
        else:
            with _native_stderr_silenced():
                result = self._mesh.process(rgb)
            self._face_seen = bool(result.multi_face_landmarks)
        if not result.multi_face_landmarks:
            return None
        lm = result.multi_face_landmarks[0].landmark
        pts = np.array([(p.x, p.y, p.z) for p in lm], dtype=np.float32) * self.crop_size
        pts[:, 0] = (pts[:, 0] - to_crop[0, 2]) / scale
        pts[:, 1] = (pts[:, 1] - to_crop[1, 2]) / scale
        pts[:, 2] = pts[:, 2] / scale
        return pts
