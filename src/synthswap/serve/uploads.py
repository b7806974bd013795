"""Receiving and checking one uploaded file.

A file arrives as the raw body of one request (no multipart parsing, so nothing is spooled
anywhere else first). It is written under DATA/uploads with a generated name (the client's
name is kept only as a label to show), counted as it arrives and dropped the moment it passes
the size limit; then it is decoded through `synthswap.media` (the header, and for a photo the
whole image) and searched for faces. Whatever fails, the partial file is removed: only a file
that passed every check gets its final name.
"""

from __future__ import annotations

import base64
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import cv2
import numpy as np

from synthswap.faces.detect import FaceDetector
from synthswap.faces.identity import IdentityModel
from synthswap.faces.people import Person, SeenFace, group_by_identity
from synthswap.media import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    MediaError,
    check_image_size,
    probe_video,
    read_image,
    sample_video_frames,
)
from synthswap.serve.guard import Refused
from synthswap.serve.jobs import Upload

ROLES = ("subject", "video")  # the subject's photos or video; the destination video
# A second face at least this fraction of the largest one's area is a second person, not a face
# on a poster behind them: extraction would take the largest face, which may be the wrong one.
SECOND_FACE_AREA = 0.25
VIDEO_SAMPLES = 12  # frames searched for faces in a video, spread over its length
MIN_SIDE = 32  # px: a picture narrower than this cannot hold a face the detector finds
CHECK_SIDE = 1280  # a photo is searched at most this large (the detector itself works at 640)
LABEL_LENGTH = 120
# A "person" seen in one sampled frame only is offered when the detector is sure of it: d20's foliage
# gave one such face at 0.78 (real faces there score 0.94-0.95).
LONE_FACE_SCORE = 0.9
MAX_FACES_SHOWN = 8  # a crowd's people beyond these (the least seen) are not offered
THUMBNAIL_SIDE = 96
THUMBNAIL_SHARE = 0.65  # of a face picture's side: the face (half of it) and a little margin
PICTURE_SIDE = 224  # a chosen person's picture, matched by `--face PHOTO` (SFace works at 112)


class UploadError(Refused):
    """A file refused, with the message the page shows; `status` is the HTTP status."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message, status)


@dataclass
class Checked:
    kind: str  # "image" or "video"
    detail: str  # what the page shows beside the file, e.g. "1 face, 640x480"
    # The faces found, as small JPEG data URIs sent once with the upload's answer (not stored): a
    # photo's face, so the page shows which face it found; a video's people (faces.people), the most
    # often seen first, for the page to choose from ("person K" is the K-th).
    faces: tuple[str, ...] = ()
    seen: tuple[int, ...] = ()  # a video's: of the frames searched, how many show each person
    searched: int = 0  # a video's: the frames searched, spread over its length


def safe_label(name: str) -> str:
    """The client's file name, for display only: its last path component, printable, bounded."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable()).strip()
    if len(base) > LABEL_LENGTH:  # shortened in the middle: the extension says what the file is
        suffix = Path(base).suffix[:10]
        base = base[:LABEL_LENGTH - len(suffix) - 3] + "..." + suffix
    return base or "unnamed"


def extension_for(label: str, role: str) -> str:
    ext = Path(label).suffix.lower()
    allowed = VIDEO_EXTENSIONS if role == "video" else IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
    if ext not in allowed:
        what = "a video" if role == "video" else "an image or a video"
        raise UploadError(f"{label}: not {what} ({', '.join(sorted(allowed))} files are accepted)", 415)
    return ext


async def receive(chunks: AsyncIterator[bytes], folder: Path, ext: str, limit: int) -> tuple[Path, int]:
    """Write the request body to a partial file in `folder`; refuse it past `limit` bytes."""
    partial = folder / f".incoming-{uuid.uuid4().hex}{ext}"
    size = 0
    try:
        # Only this account may read it (0600), whatever the umask: uploads are people's faces.
        with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise UploadError(f"the file is larger than the limit of {limit / 2**20:.0f} MB", 413)
                fh.write(chunk)
    except BaseException:  # refused, client gone, too slow, disk full: no partial file stays
        partial.unlink(missing_ok=True)
        raise
    if size == 0:
        partial.unlink(missing_ok=True)
        raise UploadError("the file is empty (0 bytes)")
    return partial, size


class FaceChecker:
    """Decodes a file and counts its faces; one YuNet net. One file is checked at a time, and a photo
    is decoded no larger than CHECK_SIDE: three 49-megapixel photos at once took the server to
    2.9 GB when each was decoded whole, side by side."""

    def __init__(self) -> None:
        self._detector: FaceDetector | None = None
        self._identity: IdentityModel | None = None
        self._lock = threading.Lock()

    def _faces(self, bgr):
        if self._detector is None:
            self._detector = FaceDetector()
        return self._detector.detect(bgr)

    def check(self, path: Path, role: str, label: str) -> Checked:
        """Raise UploadError (naming `label`, never the server's path) unless the file is a
        readable image or video with a face in it, and a photo shows one person. The picture's size
        is checked from its header (synthswap.media's pixel limit, and MIN_SIDE) before any decoding."""
        try:
            with self._lock:
                if path.suffix.lower() in IMAGE_EXTENSIONS:
                    return self._check_image(path, label)
                return self._check_video(path, label)
        except MediaError as exc:  # its message names the file: name the client's, not ours
            raise UploadError(str(exc).replace(str(path), label)) from None

    @staticmethod
    def _check_sides(label: str, width: int, height: int) -> None:
        if min(width, height) < MIN_SIDE:
            raise UploadError(f"{label}: the picture is {width}x{height}, too small to hold a face "
                              f"(at least {MIN_SIDE} px a side)")

    def _check_image(self, path: Path, label: str) -> Checked:
        width, height = check_image_size(path, DEFAULT_MAX_PIXELS)  # as stored
        self._check_sides(label, width, height)
        bgr = read_image(path, DEFAULT_MAX_PIXELS, max_side=CHECK_SIDE)
        if (bgr.shape[1] >= bgr.shape[0]) != (width >= height):
            width, height = height, width  # turned upright by its EXIF orientation
        faces = sorted(self._faces(bgr), key=lambda d: d.area, reverse=True)
        if not faces:
            raise UploadError(f"{label}: no face found in this photo; use a photo where the subject's face is "
                              f"clearly visible")
        people = [f for f in faces if f.area >= SECOND_FACE_AREA * faces[0].area]
        if len(people) > 1:
            raise UploadError(f"{label}: this photo shows {len(people)} faces; use photos of the subject alone "
                              f"(or crop the others out)")
        return Checked("image", f"photo {width}x{height}, 1 face", (face_thumbnail(face_picture(bgr, faces[0].box)),))

    def _check_video(self, path: Path, label: str) -> Checked:
        info = probe_video(path, DEFAULT_MAX_PIXELS)
        self._check_sides(label, info.width, info.height)
        people, searched = self._people(path)
        if not people:
            raise UploadError(f"{label}: no face found in this video (searched {searched} frames across it)")
        return Checked("video", f"video {info.width}x{info.height}, {info.duration_s:.1f} s, "
                                f"{float(info.fps):.0f} fps",
                       tuple(face_thumbnail(p.best.picture) for p in people),
                       tuple(len(p.frames) for p in people), searched)

    def _people(self, path: Path) -> tuple[list[Person], int]:
        frames = sample_video_frames(path, VIDEO_SAMPLES, DEFAULT_MAX_PIXELS)
        if self._identity is None:
            self._identity = IdentityModel()
        seen = [SeenFace(frame.index, d, self._identity.embed(frame.bgr, d.points), face_picture(frame.bgr, d.box))
                for frame in frames for d in self._faces(frame.bgr)]
        people = [p for p in group_by_identity(seen) if len(p.frames) > 1 or p.best.detection.score >= LONE_FACE_SCORE]
        return people[:MAX_FACES_SHOWN], len(frames)

    def person_photo(self, path: Path, person: int, label: str) -> np.ndarray:
        """The picture of the video's `person`-th person (from 1, as the upload's answer listed them)
        that `--face PHOTO` matches in every frame. The video is searched again, as at its upload."""
        with self._lock:
            people, _ = self._people(path)
        if person > len(people):
            raise UploadError(f"{label} shows {len(people)} {'person' if len(people) == 1 else 'people'}: "
                              f"there is no person {person} to choose", 400)
        return people[person - 1].best.picture


def face_picture(bgr: np.ndarray, box: np.ndarray, side: int = PICTURE_SIDE) -> np.ndarray:
    """The face in `box` (x, y, w, h) in the middle of a square of `side` px, twice the face's width
    (grey where the frame ends): enough around it for the detector to find it again, no neighbour."""
    x, y, w, h = (float(v) for v in box)
    half = max(w, h)
    cx, cy = x + w / 2, y + h / 2
    scale = side / (2 * half)
    # one affine warp: crop, scale and pad in a single resampling
    matrix = np.array([[scale, 0, side / 2 - cx * scale], [0, scale, side / 2 - cy * scale]], np.float32)
    return cv2.warpAffine(bgr, matrix, (side, side), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(128, 128, 128))


def face_thumbnail(picture: np.ndarray, side: int = THUMBNAIL_SIDE) -> str:
    """A face_picture's middle (the face and a little margin) as a square JPEG data URI of `side` px."""
    size = picture.shape[0]
    margin = int(size * (1 - THUMBNAIL_SHARE) / 2)
    crop = cv2.resize(picture[margin:size - margin, margin:size - margin], (side, side), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii") if ok else ""


def store(partial: Path, folder: Path, label: str, role: str, checked: Checked, size: int) -> Upload:
    """Give a checked partial file its final, generated name."""
    upload_id = uuid.uuid4().hex
    name = f"{upload_id}{partial.suffix}"
    os.replace(partial, folder / name)
    return Upload(id=upload_id, file=name, label=label, role=role, kind=checked.kind, detail=checked.detail,
                  size=size, created=time.time())
