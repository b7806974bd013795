"""A faceset's faces cut again from their photos and videos, at the size they have there.

A faceset stores each face at one small size (the swap model's, 128 px); the photo or video frame
it came from usually holds more (a face filling 370 px of a 512 px video frame, a phone photo's
1,000 px face). The face enhancer learns the subject's own detail from those pixels, so it needs
the same aligned crop at the face's native size: the stored affine, scaled, applied to the source
frame again. Sources that are gone (moved, deleted) or synthetic are skipped, never guessed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from synthswap.faces.align import side_in_frame, warp_to_crop
from synthswap.faceset import Face
from synthswap.media import MediaError, is_video, iter_video_frames, read_image


def native_size(face: Face, crop_size: int, max_size: int, multiple: int = 16) -> int:
    """The side (px) of the face's crop at the source's own resolution (the stored crop's side over
    the alignment's scale), rounded to `multiple`, between `crop_size` and `max_size`."""
    side = int(round(side_in_frame(face.affine_array(), crop_size) / multiple)) * multiple
    return int(min(max(side, crop_size), max(max_size, crop_size)))


def recrop(faces: Iterable[Face], crop_size: int, max_size: int = 512) -> Iterator[tuple[Face, np.ndarray]]:
    """(face, BGR uint8 crop at its native size) for every face whose source can still be read, in
    source order; each video is decoded once, up to the last frame asked for."""
    by_source: dict[str, list[Face]] = defaultdict(list)
    for face in faces:
        if not face.synthetic:
            by_source[face.source].append(face)
    for source, wanted in by_source.items():
        path = Path(source)
        if not path.is_file():
            continue
        if not is_video(path):
            try:
                image = read_image(path)
            except MediaError:
                continue
            for face in wanted:
                yield face, _cut(image, face, crop_size, max_size)
            continue
        by_frame: dict[int, list[Face]] = defaultdict(list)
        for face in wanted:
            by_frame[face.frame_index].append(face)
        last = max(by_frame)
        try:
            for frame in iter_video_frames(path):
                for face in by_frame.get(frame.index, ()):
                    yield face, _cut(frame.bgr, face, crop_size, max_size)
                if frame.index >= last:
                    break
        except MediaError:
            continue


def _cut(image: np.ndarray, face: Face, crop_size: int, max_size: int) -> np.ndarray:
    side = native_size(face, crop_size, max_size)
    return warp_to_crop(image, face.affine_array() * (side / crop_size), side)
