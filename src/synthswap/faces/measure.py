"""What a face is doing: expression vector, head pose, sharpness.

Expression values are distances between landmarks divided by the inter-ocular
distance, measured on aligned-crop landmarks, so they do not depend on image size or
in-plane rotation and can be compared across facesets.
"""

from __future__ import annotations

import cv2
import numpy as np

from synthswap.faces.landmarks import (CHIN, EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, MOUTH_IMAGE_LEFT,
                                       MOUTH_IMAGE_RIGHT, NOSE_TIP, eye_centres)

EXPRESSION_NAMES = ("mouth_open", "mouth_width", "smile", "eye_open_left", "eye_open_right", "brow_raise")

_UPPER_LIP, _LOWER_LIP = 13, 14
_LID_LEFT = (159, 145)  # upper, lower lid of the image-left eye
_LID_RIGHT = (386, 374)
_BROW_LEFT = (105, 66, 107)  # image-left brow, middle of its upper edge
_BROW_RIGHT = (334, 296, 336)


def expression_vector(lm: np.ndarray) -> dict[str, float]:
    """Six expression measures from (478, >=2) landmarks in an upright (aligned) frame."""
    lm = np.asarray(lm, np.float64)[:, :2]
    eyes = eye_centres(lm)
    iod = float(np.linalg.norm(eyes[1] - eyes[0]))
    corners = lm[[MOUTH_IMAGE_LEFT, MOUTH_IMAGE_RIGHT]]
    lip_centre_y = (lm[_UPPER_LIP, 1] + lm[_LOWER_LIP, 1]) / 2
    brow_left = lm[list(_BROW_LEFT)].mean(0)
    brow_right = lm[list(_BROW_RIGHT)].mean(0)
    return {
        "mouth_open": float(np.linalg.norm(lm[_UPPER_LIP] - lm[_LOWER_LIP])) / iod,
        "mouth_width": float(np.linalg.norm(corners[1] - corners[0])) / iod,
        # Corners above the lip centre (smaller y) read as a positive lift.
        "smile": float(lip_centre_y - corners[:, 1].mean()) / iod,
        "eye_open_left": float(np.linalg.norm(lm[_LID_LEFT[0]] - lm[_LID_LEFT[1]])) / iod,
        "eye_open_right": float(np.linalg.norm(lm[_LID_RIGHT[0]] - lm[_LID_RIGHT[1]])) / iod,
        "brow_raise": float(((eyes[0, 1] - brow_left[1]) + (eyes[1, 1] - brow_right[1])) / 2) / iod,
    }


# A generic 3-D head in millimetre-like units, in OpenCV's camera axes (x right, y down,
# z away from the camera), so a frontal face has zero rotation.
_MODEL_POINTS = np.array([
    [0.0, 0.0, 0.0],  # nose tip
    [0.0, 330.0, 65.0],  # chin
    [-225.0, -170.0, 135.0],  # image-left eye, outer corner
    [225.0, -170.0, 135.0],  # image-right eye, outer corner
    [-150.0, 150.0, 125.0],  # image-left mouth corner
    [150.0, 150.0, 125.0],  # image-right mouth corner
])
_POSE_LANDMARKS = [NOSE_TIP, CHIN, EYE_IMAGE_LEFT[0], EYE_IMAGE_RIGHT[1], MOUTH_IMAGE_LEFT, MOUTH_IMAGE_RIGHT]


def head_pose(lm: np.ndarray, image_size: tuple[int, int]) -> dict[str, float]:
    """Yaw, pitch and roll in degrees from landmarks in image pixels (image_size = (w, h)).

    Positive yaw: the face turns towards the image's right; positive pitch: it looks up;
    positive roll: it tilts clockwise in the image.
    """
    w, h = image_size
    focal = float(max(w, h))
    camera = np.array([[focal, 0, w / 2], [0, focal, h / 2], [0, 0, 1]], np.float64)
    image_points = np.asarray(lm, np.float64)[_POSE_LANDMARKS, :2]
    ok, rvec, _ = cv2.solvePnP(_MODEL_POINTS, image_points, camera, None, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}
    rot, _ = cv2.Rodrigues(rvec)
    angles = cv2.RQDecomp3x3(rot)[0]  # rotations about x, y, z in degrees
    return {"yaw": float(-angles[1]), "pitch": float(-angles[0]), "roll": float(angles[2])}


def sharpness(crop_bgr: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Variance of the Laplacian inside the mask, on a 128 px copy so sizes compare."""
    gray = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2GRAY)
    gray = cv2.resize(gray, (128, 128), interpolation=cv2.INTER_AREA)
    lap = cv2.Laplacian(gray, cv2.CV_32F)
    if mask is not None:
        inside = cv2.resize(mask, (128, 128), interpolation=cv2.INTER_NEAREST) > 127
        if inside.any():
            return float(lap[inside].var())
    return float(lap.var())
