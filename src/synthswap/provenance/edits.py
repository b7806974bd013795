"""The edits a shared video goes through, for measuring what survives them (tests, benchmarks).

Each re-encodes with H.264 through `media.VideoWriter` and keeps no metadata, manifest or
audio: what a platform's transcoder leaves is the picture alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from synthswap.media import VideoWriter, iter_video_frames, probe_video


@dataclass(frozen=True)
class Edit:
    name: str
    crf: int = 23
    scale: float = 1.0  # resize factor (0.75: a 0.75x downscale)
    crop: float = 0.0  # fraction of each side's length cut off, about half at each end, at odd offsets
    brightness: int = 0  # added to B, G and R
    flip: bool = False  # a horizontal mirror
    rotate: float = 0.0  # degrees, counter-clockwise about the centre, the corners filled black
    box: tuple[int, int, int, int] | None = None  # a crop to x, y, width, height (e.g. the face alone)

    def apply(self, bgr: np.ndarray) -> np.ndarray:
        if self.box is not None:
            x, y, w, h = self.box
            bgr = bgr[max(y, 0):y + h, max(x, 0):x + w]
        if self.flip:
            bgr = bgr[:, ::-1]
        if self.rotate:
            h, w = bgr.shape[:2]
            m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), self.rotate, 1.0)
            bgr = cv2.warpAffine(np.ascontiguousarray(bgr), m, (w, h), flags=cv2.INTER_LINEAR)
        if self.crop:
            h, w = bgr.shape[:2]
            ch, cw = round(h * (1 - self.crop)), round(w * (1 - self.crop))
            y0, x0 = (h - ch) // 2 | 1, (w - cw) // 2 | 1  # odd: off the 2 x 2 chroma and DWT grid
            bgr = bgr[y0:y0 + ch, x0:x0 + cw]
        if self.scale != 1.0:
            h, w = bgr.shape[:2]
            bgr = cv2.resize(bgr, (round(w * self.scale), round(h * self.scale)), interpolation=cv2.INTER_AREA)
        if self.brightness:
            bgr = np.clip(bgr.astype(np.int16) + self.brightness, 0, 255).astype(np.uint8)
        h, w = bgr.shape[:2]
        return np.ascontiguousarray(bgr[:h // 2 * 2, :w // 2 * 2])  # H.264 4:2:0 needs even sides


EDITS = (
    Edit("H.264 CRF 23", crf=23),
    Edit("H.264 CRF 28", crf=28),
    Edit("0.75x downscale (CRF 23)", scale=0.75),
    Edit("10% crop (CRF 23)", crop=0.10),
    Edit("brightness +20 (CRF 23)", brightness=20),
)

# The geometric edits of short-video apps that a mark must survive (issue 27), each then re-encoded.
GEOMETRIC_EDITS = (
    Edit("horizontal flip (CRF 23)", flip=True),
    Edit("rotation +5 deg (CRF 23)", rotate=5.0),
    Edit("rotation -5 deg (CRF 23)", rotate=-5.0),
    Edit("0.33x downscale (CRF 23)", scale=0.33),
    Edit("centre crop 0.71 (CRF 23)", crop=0.29),
)


def apply_edit(edit: Edit, video: str | os.PathLike, out: str | os.PathLike, max_frames: int | None = None) -> Path:
    info = probe_video(video)
    writer = None
    try:
        for frame in iter_video_frames(video, max_frames=max_frames):
            edited = edit.apply(frame.bgr)
            if writer is None:
                writer = VideoWriter(out, edited.shape[1], edited.shape[0], info.fps, crf=edit.crf)
            writer.write(edited)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is None:
        raise ValueError(f"{video}: no frames to edit")
    return writer.close()
