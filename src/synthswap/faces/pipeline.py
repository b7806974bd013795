"""One face in one image, analysed end to end: the code extract, synthesize and convert share."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from synthswap.faces.align import alignment_affine, transform_points, warp_to_crop
from synthswap.faces.choice import FaceChoice
from synthswap.faces.detect import Detection, FaceDetector
from synthswap.faces.identity import SAME_PERSON_COSINE, IdentityModel
from synthswap.faces.landmarks import LandmarkModel, five_points
from synthswap.faces.mask import face_mask
from synthswap.faces.measure import expression_vector, head_pose, sharpness


@dataclass
class AnalyzedFace:
    crop: np.ndarray  # aligned BGR crop, size x size
    mask: np.ndarray  # 8-bit face mask, size x size
    affine: np.ndarray  # 2x3, frame pixels -> crop pixels
    landmarks_frame: np.ndarray  # (478, 3) in frame pixels
    landmarks_crop: np.ndarray  # (478, 2) in crop pixels
    expression: dict[str, float]
    pose: dict[str, float]
    sharpness: float
    identity: np.ndarray | None
    detection_score: float

    def record(self) -> dict[str, Any]:
        """The per-face fields of a faceset row (the caller adds source, frame and time).

        Rounded in float64: a rounded float32 prints as its 17-digit neighbour (31.889999389648438
        for 31.89), which more than doubled the size of every row.
        """
        return {
            "affine": np.round(self.affine.astype(np.float64), 6).tolist(),
            "landmarks": np.round(self.landmarks_crop.astype(np.float64), 2).tolist(),
            "expression": {k: round(v, 5) for k, v in self.expression.items()},
            "pose": {k: round(v, 3) for k, v in self.pose.items()},
            "sharpness": round(self.sharpness, 3),
            "identity": [] if self.identity is None else np.round(self.identity.astype(np.float64), 6).tolist(),
            "detection_score": round(self.detection_score, 4),
        }


class FaceAnalyzer:
    """Detect, choose the subject, landmark, align, mask, measure and embed.

    The subject is the largest face, or with `reference` (an SFace embedding) the face
    most similar to it, provided that similarity reaches `min_reference_cosine`.
    With `track=True` (consecutive video frames) the landmarks of the previous frame
    give the next frame's face box, and the detector runs only when that fails, every
    `redetect_every` frames, or when a tracked face stops matching the reference.
    `timings` accumulates seconds per stage for the benchmark.
    """

    def __init__(self, size: int = 256, reference: np.ndarray | None = None,
                 min_reference_cosine: float = SAME_PERSON_COSINE, with_identity: bool = True,
                 choice: FaceChoice | None = None, resample: int = cv2.INTER_LINEAR):
        self.size = size
        self.resample = resample  # how crops are interpolated (align.SHARP_RESAMPLE for faces already at crop size)
        self.reference = reference
        self.choice = choice  # without a reference: a position and following (faces/choice.py); None: the largest
        self.faces_in_frame = 0  # what the last detection found
        self.min_reference_cosine = min_reference_cosine
        self.with_identity = with_identity or reference is not None
        self.detector = FaceDetector()
        self.landmarker = LandmarkModel()
        self.identity_model = IdentityModel() if self.with_identity else None
        self.timings: dict[str, float] = defaultdict(float)
        self.redetect_every = 12
        self._tracked: tuple[np.ndarray, float] | None = None  # face box, detection score
        self._since_detect = 0

    def close(self) -> None:
        self.landmarker.close()

    def _choose(self, bgr: np.ndarray, detections: list[Detection]) -> Detection | None:
        if self.reference is None:
            return self.choice.choose(detections) if self.choice else max(detections, key=lambda d: d.area)
        t = time.perf_counter()
        scored = [(float(self.identity_model.embed(bgr, d.points) @ self.reference), d) for d in detections]
        self.timings["embed"] += time.perf_counter() - t
        best_cos, best = max(scored, key=lambda s: s[0])
        return best if best_cos >= self.min_reference_cosine else None

    def reset_tracking(self) -> None:
        """A new file: nothing of the last one is followed (its box says nothing about this one's people)."""
        self._tracked = None
        if self.choice is not None:
            self.choice.followed(None)

    def analyze(self, bgr: np.ndarray, track: bool = False) -> AnalyzedFace | None:
        """The subject's face in `bgr`, or None when there is none."""
        if track and self._tracked is not None and self._since_detect < self.redetect_every:
            face = self._landmark_and_measure(bgr, *self._tracked)
            self._since_detect += 1
            if face is not None:
                return face
        t = time.perf_counter()
        detections = self.detector.detect(bgr)
        self.timings["detect"] += time.perf_counter() - t
        self._tracked = None
        self._since_detect = 0
        self.faces_in_frame = len(detections)
        chosen = self._choose(bgr, detections) if detections else None
        if chosen is None:
            return None
        face = self._landmark_and_measure(bgr, chosen.box, chosen.score)
        if face is not None and self.choice is not None:
            self.choice.followed(chosen.box)
        return face

    def _landmark_and_measure(self, bgr: np.ndarray, box: np.ndarray, score: float) -> AnalyzedFace | None:
        t = time.perf_counter()
        landmarks = self.landmarker(bgr, box)
        self.timings["landmarks"] += time.perf_counter() - t
        if landmarks is None:
            self._tracked = None
            return None
        face = self.from_landmarks(bgr, landmarks, score)
        if self.identity_model is not None:
            t = time.perf_counter()
            face.identity = self.identity_model.embed(bgr, five_points(landmarks))
            self.timings["embed"] += time.perf_counter() - t
            if self.reference is not None and float(face.identity @ self.reference) < self.min_reference_cosine:
                self._tracked = None  # tracking drifted onto someone else
                return None
        lo, hi = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
        self._tracked = (np.concatenate([lo, hi - lo]), score)
        return face

    def from_landmarks(self, bgr: np.ndarray, landmarks: np.ndarray, detection_score: float = 1.0) -> AnalyzedFace:
        """Align and measure a face whose frame landmarks are already known (e.g. smoothed ones)."""
        t = time.perf_counter()
        affine = alignment_affine(landmarks, self.size)
        crop = warp_to_crop(bgr, affine, self.size, self.resample)
        lm_crop = transform_points(landmarks, affine).astype(np.float32)
        mask = face_mask(lm_crop, self.size)
        self.timings["align"] += time.perf_counter() - t
        t = time.perf_counter()
        face = AnalyzedFace(
            crop=crop, mask=mask, affine=affine, landmarks_frame=landmarks, landmarks_crop=lm_crop,
            expression=expression_vector(lm_crop),
            pose=head_pose(landmarks),
            sharpness=sharpness(crop, mask), identity=None, detection_score=detection_score,
        )
        self.timings["measure"] += time.perf_counter() - t
        return face
