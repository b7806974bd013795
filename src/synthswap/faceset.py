"""The faceset: the one on-disk format that every stage reads and writes.

    FACESET/
      faceset.json      format version, alignment template, crop size, tool version
      faces.jsonl       one JSON object per face (see `Face`)
      faces/000000.png  aligned face crops (BGR PNG)
      masks/000000.png  face masks (8-bit, 255 = face)

The manifest is rewritten atomically (temporary file + rename) at every flush, so a
run that is interrupted leaves a valid faceset holding every face flushed so far;
images written after the last flush are orphans that the next run overwrites.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from synthswap import __version__, atomic
from synthswap.media import write_png

FORMAT_VERSION = 1
INFO_FILE = "faceset.json"
MANIFEST_FILE = "faces.jsonl"


class FacesetError(Exception):
    """A folder that is not a valid faceset, or one incompatible with the request."""


@dataclass
class Face:
    """One aligned face. Coordinates of `landmarks` are in crop pixels."""

    id: str
    image: str  # path relative to the faceset root
    mask: str
    source: str  # the photo or video it came from (or "synthetic:<...>")
    frame_index: int  # 0 for photos
    time_s: float  # 0.0 for photos
    affine: list[list[float]]  # 2x3, maps source-frame pixels to crop pixels
    landmarks: list[list[float]]  # 478 x (x, y), MediaPipe FaceMesh order
    expression: dict[str, float]
    pose: dict[str, float]  # yaw, pitch, roll in degrees
    sharpness: float
    identity: list[float]  # SFace embedding, L2-normalised
    detection_score: float = 1.0
    synthetic: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """What makes a face unique in a faceset: re-extracting it must not add a row."""
        return f"{self.source}#{self.frame_index}"

    def landmarks_array(self) -> np.ndarray:
        return np.asarray(self.landmarks, dtype=np.float32)

    def affine_array(self) -> np.ndarray:
        return np.asarray(self.affine, dtype=np.float64)


def _manifest_line(face: Face) -> str:
    return json.dumps(asdict(face), separators=(",", ":")) + "\n"


class Faceset:
    """A faceset opened for reading."""

    def __init__(self, root: Path, info: dict[str, Any], faces: list[Face]):
        self.root = root
        self.info = info
        self.faces = faces

    @property
    def size(self) -> int:
        return int(self.info["size"])

    def __len__(self) -> int:
        return len(self.faces)

    def __iter__(self) -> Iterator[Face]:
        return iter(self.faces)

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Faceset":
        root = Path(path)
        info_path = root / INFO_FILE
        if not info_path.is_file():
            raise FacesetError(f"{root}: not a faceset (no {INFO_FILE}); create one with `synthswap extract`")
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise FacesetError(f"{info_path}: corrupt ({exc})") from exc
        if info.get("format_version") != FORMAT_VERSION:
            raise FacesetError(
                f"{root}: faceset format {info.get('format_version')} is not supported "
                f"(this synthswap reads format {FORMAT_VERSION})"
            )
        faces = []
        manifest = root / MANIFEST_FILE
        if manifest.exists():
            for lineno, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    faces.append(Face(**json.loads(line)))
                except (json.JSONDecodeError, TypeError) as exc:
                    raise FacesetError(f"{manifest}:{lineno}: corrupt row ({exc})") from exc
        return cls(root, info, faces)

    def read_image(self, face: Face) -> np.ndarray:
        img = cv2.imread(str(self.root / face.image), cv2.IMREAD_COLOR)
        if img is None:
            raise FacesetError(f"{self.root / face.image}: missing or unreadable face image")
        return img

    def read_mask(self, face: Face) -> np.ndarray:
        mask = cv2.imread(str(self.root / face.mask), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise FacesetError(f"{self.root / face.mask}: missing or unreadable mask")
        return mask

    def expressions(self) -> np.ndarray:
        """(N, 6) expression vectors in `faces.measure.EXPRESSION_NAMES` order."""
        from synthswap.faces.measure import EXPRESSION_NAMES

        return np.array([[f.expression[k] for k in EXPRESSION_NAMES] for f in self.faces], np.float32).reshape(
            -1, len(EXPRESSION_NAMES)
        )

    def poses(self) -> np.ndarray:
        """(N, 3) head poses: yaw, pitch, roll in degrees."""
        return np.array([[f.pose["yaw"], f.pose["pitch"], f.pose["roll"]] for f in self.faces], np.float32).reshape(
            -1, 3
        )

    def identities(self) -> np.ndarray:
        return np.array([f.identity for f in self.faces], np.float32)


class FacesetWriter:
    """Adds faces to a new or existing faceset; the only code that writes one.

    The folder is created when the first face arrives, so a run that finds no face
    leaves nothing behind. Faces whose key (source + frame) is already present are
    skipped, which makes re-running or appending safe.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        size: int,
        template: dict[str, Any],
        flush_every: int = 50,
    ):
        self.root = Path(path)
        self.size = size
        self.template = template
        self.flush_every = flush_every
        self.faces: list[Face] = []
        self._lines: list[str] = []  # each face serialised once, so a flush is a plain write
        self._keys: set[str] = set()
        self._next_id = 0
        self._unflushed = 0
        self._created = False
        self.added = 0
        self.skipped_duplicates = 0
        if (self.root / INFO_FILE).exists():
            existing = Faceset.open(self.root)
            if existing.size != size:
                raise FacesetError(
                    f"{self.root}: existing faceset has size {existing.size}, not {size}; "
                    f"use --size {existing.size} or another --out"
                )
            if existing.info.get("template", {}).get("name") != template["name"]:
                raise FacesetError(f"{self.root}: existing faceset uses another alignment template")
            self.faces = existing.faces
            self._lines = [_manifest_line(f) for f in self.faces]
            self._keys = {f.key for f in self.faces}
            self._next_id = 1 + max((int(f.id) for f in self.faces), default=-1)
            self._created = True
        elif self.root.exists() and (not self.root.is_dir() or any(self.root.iterdir())):
            raise FacesetError(f"{self.root}: exists and is not a faceset; choose an empty or new folder")

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def _create(self) -> None:
        (self.root / "faces").mkdir(parents=True, exist_ok=True)
        (self.root / "masks").mkdir(exist_ok=True)
        info = {
            "format_version": FORMAT_VERSION,
            "size": self.size,
            "template": self.template,
            "tool": "synthswap",
            "tool_version": __version__,
        }
        atomic.write_text(self.root / INFO_FILE, json.dumps(info, indent=2) + "\n", fsync=True)
        self._created = True

    def add(self, crop: np.ndarray, mask: np.ndarray, **record: Any) -> Face | None:
        """Write one face; returns None when a face with the same key is already there."""
        key = f"{record['source']}#{record['frame_index']}"
        if key in self._keys:
            self.skipped_duplicates += 1
            return None
        if crop.shape[:2] != (self.size, self.size):
            raise FacesetError(f"crop is {crop.shape[1]}x{crop.shape[0]}, faceset size is {self.size}")
        if not self._created:
            self._create()
        face_id = f"{self._next_id:06d}"
        self._next_id += 1
        face = Face(id=face_id, image=f"faces/{face_id}.png", mask=f"masks/{face_id}.png", **record)
        write_png(self.root / face.image, crop, compression=1)  # level 1: fast, files ~10% larger
        write_png(self.root / face.mask, mask, compression=1)
        self.faces.append(face)
        self._lines.append(_manifest_line(face))
        self._keys.add(key)
        self.added += 1
        self._unflushed += 1
        if self._unflushed >= self.flush_every:
            self.flush()
        return face

    def flush(self) -> None:
        if not self._created:
            return
        atomic.write_text(self.root / MANIFEST_FILE, "".join(self._lines), fsync=True)
        self._unflushed = 0

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> "FacesetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # Flush on errors and Ctrl-C too: every face written so far stays usable.
        self.close()


def write_subset(faceset: Faceset, faces: list[Face], out: str | os.PathLike) -> Faceset:
    """Copy the chosen faces (crops, masks and rows) into a new faceset: how splits and
    the real-k training sets of the study are made, with the same writer as everything else."""
    with FacesetWriter(out, faceset.size, faceset.info["template"]) as writer:
        for face in faces:
            row = {k: v for k, v in asdict(face).items() if k not in ("id", "image", "mask")}
            writer.add(faceset.read_image(face), faceset.read_mask(face), **row)
    return Faceset.open(out)
