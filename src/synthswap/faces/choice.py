"""Which face of a video is the one to work on, and following that person from frame to frame.

    --face largest   the largest face where the choice is first made (the default)
    --face N         the N-th face from the left (1 = leftmost)
    --face PHOTO     the face most like the person in PHOTO (SFace identity)

For `largest` and `N` the chosen face is then followed: in each new frame the detection that
overlaps the last swapped face wins, so the swap never jumps to someone else when sizes or
order change. The rule is applied afresh only when the followed face is gone. A PHOTO choice
is followed by identity instead (`FaceAnalyzer(reference=...)`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthswap.faces.detect import Detection
from synthswap.options import option

LARGEST = "largest"
FOLLOW_MIN_OVERLAP = 0.3  # intersection over union with the last face: below it, someone else


def parse_face(text: str) -> tuple[int | None, Path | None]:
    """A --face value as (position, reference photo); (None, None) is the largest face.
    ValueError names what is accepted."""
    if text == LARGEST:
        return None, None
    if text.isdigit():
        if int(text) < 1:
            raise ValueError(f"--face {text}: positions count from 1 (the leftmost face)")
        return int(text), None
    path = Path(text)
    if path.is_file():
        return None, path
    raise ValueError(f"--face {text}: give 'largest', a position from the left (1, 2, ...) or a photo of the "
                     f"person to swap (no such file)")


def face_problem(value: str) -> str | None:
    """Why a --face value is refused (for an option's declared check), or None."""
    try:
        parse_face(value)
    except ValueError as exc:  # its message starts with the flag and value, which the caller puts first
        return "is refused: " + str(exc).split(": ", 1)[-1]
    return None


def face_option(purpose: str) -> Any:
    """The one declaration of --face, for every command that chooses a face; `purpose` says what the
    chosen face is for ("to replace", "to keep")."""
    return option(LARGEST, f"which person {purpose}: the largest face, the N-th from the left, or the one most "
                           f"like the person in PHOTO; the chosen face is followed from frame to frame",
                  metavar="largest|N|PHOTO", check=face_problem)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class FaceChoice:
    """Chooses among a frame's detections by `position` (None: the largest), following the face
    last passed to `followed`."""

    position: int | None = None
    _last: np.ndarray | None = field(default=None, repr=False)

    def choose(self, detections: list[Detection]) -> Detection | None:
        if not detections:
            return None
        if self._last is not None:
            best = max(detections, key=lambda d: _iou(d.box, self._last))
            if _iou(best.box, self._last) >= FOLLOW_MIN_OVERLAP:
                return best
        if self.position is None:
            return max(detections, key=lambda d: d.area)
        by_x = sorted(detections, key=lambda d: d.box[0] + d.box[2] / 2)
        return by_x[self.position - 1] if len(by_x) >= self.position else None

    def followed(self, box: np.ndarray | None) -> None:
        """The box (x, y, w, h) of the face just used; None forgets it (a new shot, a new file)."""
        self._last = None if box is None else np.asarray(box, np.float64)
