"""The edits a shared video goes through, for measuring what survives them (tests, benchmarks).

Each re-encodes (H.264 through `media.VideoWriter`, or HEVC or VP9) and keeps no metadata, manifest
or audio: what a platform's transcoder leaves is the picture alone.
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
    rotate: float = 0.0  # degrees, counter-clockwise about the centre, the corners filled black (90: turned)
    box: tuple[int, int, int, int] | None = None  # a crop to x, y, width, height (e.g. the face alone)
    aspect: float | None = None  # a centre crop to this width / height (9 / 16: a reframe to portrait)
    canvas: tuple[int, int] | None = None  # fitted into this width x height, black bars around (letterbox)
    contrast: float = 1.0  # about mid-grey
    saturation: float = 1.0  # 0: grey
    gamma: float = 1.0
    perspective: float = 0.0  # the top corners moved in by this fraction of the width (a filmed screen)
    start_s: float = 0.0  # an excerpt: from this time
    length_s: float | None = None  # ... for this long
    codec: str = "h264"  # h264 (media.VideoWriter), hevc (libx265) or vp9 (libvpx-vp9), at `crf`

    def apply(self, bgr: np.ndarray) -> np.ndarray:
        if self.box is not None:
            x, y, w, h = self.box
            bgr = bgr[max(y, 0):y + h, max(x, 0):x + w]
        if self.flip:
            bgr = bgr[:, ::-1]
        if self.rotate and self.rotate % 90 == 0:
            bgr = np.rot90(bgr, int(self.rotate // 90) % 4)
        elif self.rotate:
            h, w = bgr.shape[:2]
            m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), self.rotate, 1.0)
            bgr = cv2.warpAffine(np.ascontiguousarray(bgr), m, (w, h), flags=cv2.INTER_LINEAR)
        if self.perspective:
            h, w = bgr.shape[:2]
            d = self.perspective * w
            src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
            dst = np.float32([[d, 0], [w - d, 0], [w, h], [0, h]])
            bgr = cv2.warpPerspective(np.ascontiguousarray(bgr), cv2.getPerspectiveTransform(src, dst), (w, h),
                                      flags=cv2.INTER_LINEAR)
        if self.aspect:
            h, w = bgr.shape[:2]
            cw, ch = (round(h * self.aspect), h) if w / h > self.aspect else (w, round(w / self.aspect))
            y0, x0 = (h - ch) // 2, (w - cw) // 2
            bgr = bgr[y0:y0 + ch, x0:x0 + cw]
        if self.crop:
            h, w = bgr.shape[:2]
            ch, cw = round(h * (1 - self.crop)), round(w * (1 - self.crop))
            y0, x0 = (h - ch) // 2 | 1, (w - cw) // 2 | 1  # odd: off the 2 x 2 chroma and DWT grid
            bgr = bgr[y0:y0 + ch, x0:x0 + cw]
        if self.scale != 1.0:
            h, w = bgr.shape[:2]
            bgr = cv2.resize(bgr, (round(w * self.scale), round(h * self.scale)), interpolation=cv2.INTER_AREA)
        if self.canvas is not None:
            cw, ch = self.canvas
            h, w = bgr.shape[:2]
            fit = min(cw / w, ch / h)
            small = cv2.resize(np.ascontiguousarray(bgr), (round(w * fit), round(h * fit)), interpolation=cv2.INTER_AREA)
            bgr = np.zeros((ch, cw, 3), np.uint8)
            y0, x0 = (ch - small.shape[0]) // 2, (cw - small.shape[1]) // 2
            bgr[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
        if self.brightness or self.contrast != 1.0 or self.gamma != 1.0:
            x = (bgr.astype(np.float32) - 128.0) * self.contrast + 128.0 + self.brightness
            if self.gamma != 1.0:
                x = 255.0 * (np.clip(x, 0, 255) / 255.0) ** (1.0 / self.gamma)
            bgr = np.clip(np.round(x), 0, 255).astype(np.uint8)
        if self.saturation != 1.0:
            grey = cv2.cvtColor(np.ascontiguousarray(bgr), cv2.COLOR_BGR2GRAY)[..., None].astype(np.float32)
            bgr = np.clip(np.round(grey + (bgr - grey) * self.saturation), 0, 255).astype(np.uint8)
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
    Edit("letterbox into 1280x720 (CRF 23)", canvas=(1280, 720)),
    Edit("pillarbox into 1080x1920 (CRF 23)", canvas=(1080, 1920)),
    Edit("filmed screen: perspective 3%, 0.75x, gamma 1.2 (CRF 23)", perspective=0.03, scale=0.75, gamma=1.2),
)


def apply_edit(edit: Edit, video: str | os.PathLike, out: str | os.PathLike, max_frames: int | None = None) -> Path:
    info = probe_video(video)
    frames = (edit.apply(f.bgr) for f in iter_video_frames(video, max_frames=max_frames)
              if f.time_s + 1e-6 >= edit.start_s and (edit.length_s is None or f.time_s < edit.start_s + edit.length_s))
    if edit.codec != "h264":
        return _write_other_codec(frames, Path(out), info.fps, edit)
    writer = None
    try:
        for edited in frames:
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


OTHER_CODECS = {"hevc": ("libx265", {"x265-params": "log-level=error"}), "vp9": ("libvpx-vp9", {"b:v": "0"})}


def _write_other_codec(frames, out: Path, fps, edit: Edit) -> Path:
    """HEVC or VP9 at `edit.crf`, as another platform's transcoder would (a .mkv beside `out`'s name)."""
    import av

    name, options = OTHER_CODECS[edit.codec]
    out = out.with_suffix(".mkv")
    with av.open(str(out), "w") as container:
        stream = None
        for i, bgr in enumerate(frames):
            if stream is None:
                stream = container.add_stream(name, rate=fps)
                stream.width, stream.height, stream.pix_fmt = bgr.shape[1], bgr.shape[0], "yuv420p"
                stream.options = {"crf": str(edit.crf), **options}
            frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        if stream is None:
            raise ValueError("no frames to edit")
        for packet in stream.encode():
            container.mux(packet)
    return out
