"""What a face is doing: expression vector, head pose, sharpness.

Expression values are distances between landmarks divided by the inter-ocular
distance, measured on aligned-crop landmarks, so they do not depend on image size or
in-plane rotation and can be compared across facesets.
"""

from __future__ import annotations

import cv2
import numpy as np

from synthswap.faces.landmarks import (CHIN, EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, MOUTH_IMAGE_LEFT,
                                       MOUTH_IMAGE_RIGHT, eye_centres)

EXPRESSION_NAMES = ("mouth_open", "mouth_width", "smile", "eye_open_left", "eye_open_right", "brow_raise")
# What synthesis aims at and coverage compares: the expression plus the two head angles
# that change what the face looks like (roll is undone by alignment).
ATTRIBUTE_NAMES = (*EXPRESSION_NAMES, "yaw", "pitch")

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


_FOREHEAD = 10


def head_pose(lm: np.ndarray) -> dict[str, float]:
    """Yaw, pitch and roll in degrees from (478, 3) landmarks with MediaPipe's depth.

    The head's axes come straight from the 3-D landmarks (eye corner to eye corner,
    forehead to chin), which is stable where fitting a generic 3-D head with solvePnP
    flips to the mirror solution. Axes are OpenCV's camera axes (x right, y down, z away
    from the camera). Positive yaw: the face turns towards the image's right; positive
    pitch: it looks up; positive roll: it tilts clockwise in the image. Pitch is
    measured along the forehead-chin line, so a frontal face reads a few degrees, not 0.
    """
    lm = np.asarray(lm, np.float64)
    x_axis = lm[EYE_IMAGE_RIGHT[1]] - lm[EYE_IMAGE_LEFT[0]]
    x_axis /= np.linalg.norm(x_axis)
    y_axis = lm[CHIN] - lm[_FOREHEAD]
    y_axis -= x_axis * (y_axis @ x_axis)
    y_axis /= np.linalg.norm(y_axis)
    return {
        "yaw": float(np.degrees(np.arctan2(x_axis[2], np.hypot(x_axis[0], x_axis[1])))),
        "pitch": float(np.degrees(np.arctan2(-y_axis[2], np.hypot(y_axis[0], y_axis[1])))),
        "roll": float(np.degrees(np.arctan2(x_axis[1], x_axis[0]))),
    }


def sharpness(crop_bgr: np.ndarray, mask: np.ndarray | None = None, size: int = 128) -> float:
    """Variance of the Laplacian inside the mask, on a `size` px copy so sizes compare. At half the
    usual size (64) it measures detail that survives a 2x downscale: real detail does, added grain
    and sharpening halos mostly do not."""
    gray = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2GRAY)
    gray = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA)
    lap = cv2.Laplacian(gray, cv2.CV_32F)
    if mask is not None:
        inside = cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST) > 127
        if inside.any():
            return float(lap[inside].var())
    return float(lap.var())


def attribute_vector(expression: dict[str, float], pose: dict[str, float]) -> np.ndarray:
    """One face's expression + yaw/pitch, in ATTRIBUTE_NAMES order."""
    return np.array([*(expression[k] for k in EXPRESSION_NAMES), pose["yaw"], pose["pitch"]], np.float64)


def attribute_matrix(faceset) -> np.ndarray:
    """(N, 8) expression + yaw/pitch of every face of a faceset, in ATTRIBUTE_NAMES order."""
    return np.concatenate([faceset.expressions(), faceset.poses()[:, :2]], axis=1).astype(np.float64)
