"""How much disk a stage will write, told before it starts (issue 28: a full disk should cost no
stage its work). Each estimate is an upper bound made from what the stage's outputs measured per
unit (per face pixel, per model parameter, per video pixel), so `cache.run_stage` can refuse a
stage that cannot fit, naming the folder, the space needed and the space free, before it writes
anything. Estimates only: they read headers and shapes, never decode a frame.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from synthswap.media import VideoInfo

# A faceset face: its crop PNG, its mask PNG and its manifest row. Measured 2.1-2.5 bytes per crop
# pixel on real 128 px facesets (448 destination faces of d10: 17 MB; 500 synthetic faces: 15 MB).
FACE_BYTES_PER_PIXEL = 3.0
# A trainer's checkpoint holds fp32 weights and AdamW's two moments: 12 bytes per parameter (the
# 128 px swap model's 8.29 M parameters: 99.5 MB). While one is written, the previous one and its
# .prev fallback are on the disk too.
CHECKPOINT_BYTES_PER_PARAMETER = 12
CHECKPOINT_COPIES = 3
# H.264 at CRF 18 (convert's default): talking heads measured 0.015 bytes per pixel per frame (448
# frames of 512 x 512 in 1.7 MB); grain and motion cost more, so the bound is four times that.
VIDEO_BYTES_PER_PIXEL = 0.06
SLACK = 16_000_000  # previews, logs, reports and markers beside a stage's main output


def free_bytes(folder: str | os.PathLike) -> int:
    """Space free to this user on the disk holding `folder` (or its nearest existing parent)."""
    path = Path(folder).absolute()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def used_bytes(path: str | os.PathLike) -> int:
    """What a file or folder takes now (0 when it does not exist); a file removed while the folder
    is walked (a running job's temporary files) counts for nothing."""
    total = 0
    for p in [Path(path), *Path(path).rglob("*")] if Path(path).is_dir() else [Path(path)]:
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:
            continue
    return total


def faceset_bytes(faces: int, size: int) -> int:
    return int(faces * size * size * FACE_BYTES_PER_PIXEL) + SLACK


def extraction_bytes(inputs: Iterable[Path], size: int, every_n: int, max_frames: int | None) -> int:
    """A faceset of the faces `extract` can find in `inputs` (expanded files)."""
    return faceset_bytes(faces_looked_at(inputs, every_n, max_frames), size)


def faces_looked_at(inputs: Iterable[Path], every_n: int, max_frames: int | None) -> int:
    """The faces an extraction of `inputs` can find at most: one per photo, one per kept frame of a
    video (every N-th, at most max_frames). MediaError for a video whose header cannot be read."""
    from synthswap.media import is_image, probe_video

    faces = 0
    for path in inputs:
        if is_image(path):
            faces += 1
            continue
        kept = -(-video_frame_count(probe_video(path)) // every_n)
        faces += min(kept, max_frames) if max_frames else kept
    return faces


def video_frame_count(info: VideoInfo) -> int:
    """A video's frame count from its header, or duration x rate (rounded up) where the header does not say."""
    return info.frame_count or int(info.duration_s * float(info.fps)) + 1


def checkpoint_bytes(parameters: int) -> int:
    return parameters * CHECKPOINT_BYTES_PER_PARAMETER * CHECKPOINT_COPIES + SLACK


def video_bytes(video: str | os.PathLike) -> int:
    """A converted copy of `video`: its picture at the bound above, and every other stream copied."""
    from synthswap.media import probe_video

    info = probe_video(video)
    return int(video_frame_count(info) * info.width * info.height * VIDEO_BYTES_PER_PIXEL) + Path(video).stat().st_size + SLACK


def megabytes(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e6:.1f} MB"
