"""The faceset: the one on-disk format that every stage reads and writes.

    FACESET/
      faceset.json      format version, alignment template, crop size, tool version
      faces.jsonl       one JSON object per face (see `Face`), one per line
      faces/000000.png  aligned face crops (BGR PNG)
      masks/000000.png  face masks (8-bit, 255 = face)

A faceset is a closed world: every row's image and mask lie inside its folder, and
every image read from it goes through the same pixel limit as extraction inputs.

The writer appends one line per face, after that face's PNGs are in place, so a row
exists exactly when its line is complete (newline included). A last line without its
newline is a row still being written, or one torn by a kill: readers ignore it and the
next writer cuts it off. An interrupted run therefore leaves a valid faceset holding
every face written so far; images written after the last row are orphans whose ids the
next run reuses.
"""

from __future__ import annotations

import json
import operator
import os
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Iterator, Sequence, overload

import numpy as np
from tqdm import tqdm

from synthswap import __version__, atomic
from synthswap.info import read_info_json
from synthswap.locking import LockError, exclusive_lock
from synthswap.media import DEFAULT_MAX_PIXELS, MediaError, read_crop, write_png
from synthswap.provenance.metadata import synthetic_image_tags

FORMAT_VERSION = 1
INFO_FILE = "faceset.json"
MANIFEST_FILE = "faces.jsonl"
SUBFOLDERS = ("faces", "masks")
LANDMARK_COUNT = 478  # MediaPipe FaceMesh with irises
_ROWS_PER_READ = 256  # rows parsed per opening of the manifest while iterating
PROGRESS_ROWS = 5_000  # a faceset this long takes seconds to read (about 0.2 ms a row): show a progress bar
MAX_SIZE = 4096  # crop sizes beyond this are not facesets we wrote, and would be costly to allocate


class FacesetError(Exception):
    """A folder that is not a valid faceset, or one incompatible with the request."""


@dataclass
class Face:
    """One aligned face. Coordinates of `landmarks` are in crop pixels.

    Rows read from a manifest hold `affine`, `landmarks` and `identity` as float64 arrays: as
    Python lists, 478 x 2 landmarks cost about 8 times the memory (20,000 rows: 1.8 GB), and
    float64 writes back the very numbers that were read."""

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


_FIELDS = {f.name for f in fields(Face)}
_REQUIRED = {f.name for f in fields(Face) if f.default is MISSING and f.default_factory is MISSING}


ARRAY_FIELDS = ("affine", "landmarks", "identity")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _manifest_line(face: Face) -> bytes:
    return (json.dumps(asdict(face), separators=(",", ":"), default=_jsonable) + "\n").encode("utf-8")


def _as_array(value: Any) -> Any:
    """A nested list of numbers as a float64 array; anything else as it is, for `_row_problem` to name."""
    if not isinstance(value, list):
        return value
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        return value
    return arr if arr.dtype == np.float64 else value


def _path_problem(rel: Any) -> str | None:
    """Why a row's image/mask path is not a normalised relative path inside the faceset, or None."""
    if not isinstance(rel, str) or not rel:
        return "is not a path"
    pure = PurePosixPath(rel)
    if pure.is_absolute():
        return "is absolute"
    if ".." in pure.parts:
        return "climbs out of the faceset with '..'"
    if "\0" in rel or pure.as_posix() != rel or rel == ".":
        return "is not a normalised relative path"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _has_shape(value: Any, shape: tuple[int | None, ...]) -> bool:
    """A nested list of numbers with this shape (None: any length)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return arr.ndim == len(shape) and all(want is None or got == want for got, want in zip(arr.shape, shape))


def _row_problem(row: dict[str, Any]) -> str | None:
    for name in ("image", "mask"):
        problem = _path_problem(row[name])
        if problem:
            return f"{name} {row[name]!r} {problem}"
    checks = [
        (isinstance(row["source"], str), "source must be a string"),
        (isinstance(row["frame_index"], int) and not isinstance(row["frame_index"], bool),
         "frame_index must be an integer"),
        (all(_is_number(row.get(k, 0.0)) for k in ("time_s", "sharpness", "detection_score")),
         "time_s, sharpness and detection_score must be numbers"),
        (_has_shape(row["affine"], (2, 3)), "affine must be 2 x 3 numbers"),
        (_has_shape(row["landmarks"], (LANDMARK_COUNT, 2)), f"landmarks must be {LANDMARK_COUNT} x 2 numbers"),
        (_has_shape(row["identity"], (None,)), "identity must be a list of numbers"),
        # The names are checked where they are used (`expressions()`): faces.measure imports MediaPipe.
        (isinstance(row["expression"], dict) and all(map(_is_number, row["expression"].values())),
         "expression must map names to numbers"),
        (isinstance(row["pose"], dict) and all(_is_number(row["pose"].get(k)) for k in ("yaw", "pitch", "roll")),
         "pose must give yaw, pitch and roll as numbers"),
        (isinstance(row.get("synthetic", False), bool), "synthetic must be true or false"),
        (isinstance(row.get("meta", {}), dict), "meta must be an object"),
    ]
    return next((message for ok, message in checks if not ok), None)


def _parse_row(line: bytes, where: str) -> Face:
    try:
        row = json.loads(line)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise FacesetError(f"{where}: corrupt row ({exc})") from exc
    if not isinstance(row, dict):
        raise FacesetError(f"{where}: corrupt row (a JSON {type(row).__name__}, not an object)")
    missing = sorted(_REQUIRED - row.keys())
    unknown = sorted(row.keys() - _FIELDS)
    if missing or unknown:
        what = "; ".join(filter(None, [missing and f"missing {', '.join(missing)}",
                                       unknown and f"unknown {', '.join(unknown)}"]))
        raise FacesetError(f"{where}: corrupt row ({what})")
    face_id = row["id"]
    if not (isinstance(face_id, str) and face_id.isascii() and face_id.isdigit()):
        raise FacesetError(f"{where}: corrupt row (id {face_id!r} is not a string of digits)")
    for name in ARRAY_FIELDS:
        row[name] = _as_array(row[name])
    problem = _row_problem(row)
    if problem:
        raise FacesetError(f"{where}: row {face_id}: {problem}")
    return Face(**row)


def _read_rows(manifest: Path) -> Iterator[tuple[int, int, Face]]:
    """Every complete row of a manifest, with the byte offsets where its line starts and just after it."""
    try:
        with open(manifest, "rb") as fh:
            end = 0
            for lineno, line in enumerate(fh, 1):
                if not line.endswith(b"\n"):
                    return  # a row still being written, or torn by a kill: not part of the faceset
                end += len(line)
                if line.strip():
                    yield end - len(line), end, _parse_row(line, f"{manifest}:{lineno}")
    except OSError as exc:
        raise FacesetError(f"{manifest}: cannot read ({exc.strerror})") from exc


def _read_info(root: Path) -> dict[str, Any]:
    info_path = root / INFO_FILE
    info = read_info_json(info_path, FacesetError, f"not a faceset (no {INFO_FILE}); create one with `synthswap extract`")
    if info.get("format_version") != FORMAT_VERSION:
        raise FacesetError(
            f"{root}: faceset format {info.get('format_version')} is not supported "
            f"(this synthswap reads format {FORMAT_VERSION})"
        )
    size = info.get("size")
    if not (isinstance(size, int) and not isinstance(size, bool) and 1 <= size <= MAX_SIZE):
        raise FacesetError(f"{info_path}: corrupt (size {size!r} is not a crop size from 1 to {MAX_SIZE})")
    if not (isinstance(info.get("template"), dict) and isinstance(info["template"].get("name"), str)):
        raise FacesetError(f"{info_path}: corrupt (no alignment template name)")
    return info


class Faceset:
    """A faceset opened for reading."""

    def __init__(self, root: Path, info: dict[str, Any], faces: Sequence[Face], max_pixels: int = DEFAULT_MAX_PIXELS,
                 progress: bool = False):
        self.root = root
        self.info = info
        self.faces = faces  # a `ManifestRows` when opened from disk: each row read when it is asked for
        self.max_pixels = max_pixels
        self.progress = progress and len(faces) >= PROGRESS_ROWS  # a bar for passes over every row
        self._real_root = root.resolve()
        self._columns: _Columns | None = None

    @property
    def size(self) -> int:
        return int(self.info["size"])

    def __len__(self) -> int:
        return len(self.faces)

    def __iter__(self) -> Iterator[Face]:
        return iter(self.faces)

    @classmethod
    def open(cls, path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = False) -> "Faceset":
        """`progress`: a progress bar (stderr) while a long faceset (PROGRESS_ROWS or more) is read."""
        root = Path(path)
        info = _read_info(root)
        manifest = root / MANIFEST_FILE
        faces = ManifestRows.read(manifest, progress) if manifest.exists() else []
        return cls(root, info, faces, max_pixels, progress)

    def rows(self, what: str) -> Iterable[Face]:
        """Every face in order, with a progress bar saying `what` for a long faceset opened with `progress`."""
        if not self.progress:
            return self.faces
        return tqdm(self.faces, desc=f"{self.root.name}: {what}", unit="face", leave=False)

    def _file(self, face: Face, rel: str) -> Path:
        """The row's file, refused when a symbolic link takes it outside the faceset."""
        path = self.root / rel
        real = path.resolve()
        if not real.is_relative_to(self._real_root):
            raise FacesetError(f"{self.root}: row {face.id}: {rel} leads to {real}, outside the faceset")
        return path

    def _read(self, face: Face, rel: str, grey: bool) -> np.ndarray:
        try:
            return read_crop(self._file(face, rel), self.max_pixels, grey=grey)
        except MediaError as exc:
            raise FacesetError(f"row {face.id}: {exc}") from exc

    def read_image(self, face: Face) -> np.ndarray:
        return self._read(face, face.image, grey=False)

    def read_mask(self, face: Face) -> np.ndarray:
        return self._read(face, face.mask, grey=True)

    def _gathered_columns(self) -> _Columns:
        """The small per-face values that readers take for every face at once, gathered in one pass."""
        if self._columns is None:
            self._columns = _Columns.gather(self.rows("expressions, poses, identities"))
        return self._columns

    def expressions(self) -> np.ndarray:
        """(N, 6) expression vectors in `faces.measure.EXPRESSION_NAMES` order."""
        from synthswap.faces.measure import EXPRESSION_NAMES

        columns = self._gathered_columns()
        for face_id, expression in zip(columns.ids, columns.expressions):
            missing = [k for k in EXPRESSION_NAMES if k not in expression]
            if missing:
                raise FacesetError(f"{self.root}: row {face_id}: expression has no {', '.join(missing)}")
        return np.array([[e[k] for k in EXPRESSION_NAMES] for e in columns.expressions], np.float32).reshape(
            -1, len(EXPRESSION_NAMES)
        )

    def poses(self) -> np.ndarray:
        """(N, 3) head poses: yaw, pitch, roll in degrees."""
        return self._gathered_columns().poses.copy()

    def identities(self) -> np.ndarray:
        return np.array(self._gathered_columns().identities, np.float32)

    def synthetic(self) -> np.ndarray:
        """(N,) which faces were synthesised rather than cut from a photo or video."""
        return self._gathered_columns().synthetic.copy()


@dataclass
class _Columns:
    ids: list[str]
    expressions: list[dict[str, float]]
    poses: np.ndarray  # (N, 3) float32
    identities: list[np.ndarray]  # float32 each; lengths may differ (none: a face without an embedding)
    synthetic: np.ndarray  # (N,) bool

    @classmethod
    def gather(cls, faces: Iterable[Face]) -> _Columns:
        ids, expressions, poses, identities, synthetic = [], [], [], [], []
        for face in faces:
            ids.append(face.id)
            expressions.append(face.expression)
            poses.append((face.pose["yaw"], face.pose["pitch"], face.pose["roll"]))
            identities.append(np.asarray(face.identity, np.float32))
            synthetic.append(face.synthetic)
        return cls(ids, expressions, np.array(poses, np.float32).reshape(-1, 3), identities,
                   np.array(synthetic, bool))


class ManifestRows(Sequence[Face]):
    """A faceset's rows, each parsed from its manifest line when it is asked for.

    Memory holds where each row's line starts and its id (16 bytes a row), not the rows (about 9 KB
    each as arrays, most of it landmarks), so a faceset of any length opens in bounded memory. The
    manifest only grows by appending (`FacesetWriter`), so a line once read stays where it was; a row
    whose id no longer matches means the file was replaced, and is refused.
    """

    def __init__(self, manifest: Path, starts: np.ndarray, ids: np.ndarray):
        self.manifest = manifest
        self._starts = starts
        self._ids = ids

    @classmethod
    def read(cls, manifest: Path, progress: bool = False) -> ManifestRows:
        """Every complete row of `manifest`, each checked as `_parse_row` checks it (a corrupt row is refused
        here, when the faceset is opened, not later when it is read)."""
        starts, ids = [], []
        size = manifest.stat().st_size
        # A row is about 9 KB on disk: a bar for a manifest that long, by bytes (its row count is unknown).
        with tqdm(total=size, unit="B", unit_scale=True, desc=f"{manifest.parent.name}: reading rows", leave=False,
                  disable=not progress or size < PROGRESS_ROWS * 8_000) as bar:
            for start, end, face in _read_rows(manifest):
                starts.append(start)
                ids.append(int(face.id))
                bar.update(end - start)
        return cls(manifest, np.array(starts, np.int64), np.array(ids, np.int64))

    def __len__(self) -> int:
        return len(self._starts)

    @overload
    def __getitem__(self, index: int) -> Face: ...

    @overload
    def __getitem__(self, index: slice) -> list[Face]: ...

    def __getitem__(self, index: int | slice) -> Face | list[Face]:
        if isinstance(index, slice):
            return self._rows(range(*index.indices(len(self))))
        i = operator.index(index)
        if not -len(self) <= i < len(self):
            raise IndexError(f"row {i} of a faceset of {len(self)}")
        return self._rows([i % len(self)])[0]

    def __iter__(self) -> Iterator[Face]:
        for block in range(0, len(self), _ROWS_PER_READ):
            yield from self._rows(range(block, min(block + _ROWS_PER_READ, len(self))))

    def _rows(self, indices: Iterable[int]) -> list[Face]:
        rows = []
        try:
            with open(self.manifest, "rb") as fh:
                for i in indices:
                    if fh.tell() != self._starts[i]:
                        fh.seek(self._starts[i])
                    face = _parse_row(fh.readline(), f"{self.manifest}: row {self._ids[i]}")
                    if int(face.id) != self._ids[i]:
                        raise FacesetError(f"{self.manifest}: changed since the faceset was opened; open it again")
                    rows.append(face)
        except OSError as exc:
            raise FacesetError(f"{self.manifest}: cannot read ({exc.strerror})") from exc
        return rows


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


class FacesetWriter:
    """Adds faces to a new or existing faceset; the only code that writes one.

    One writer per faceset: the folder is locked (`synthswap.locking`) from the moment
    it is opened for writing until `close()`, and a second writer gets a FacesetError
    naming the holder's pid. The folder is created when the first face arrives, so a
    run that finds no face leaves nothing behind. Faces whose key (source + frame) is
    already present are skipped, which makes re-running or appending safe. Memory holds
    only the keys, not the rows, so it stays small at any length.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        size: int,
        template: dict[str, Any],
        sync_every: int = 50,
    ):
        self.root = Path(path)
        self.size = size
        self.template = template
        self.sync_every = sync_every  # faces between fsyncs of the manifest (a power cut loses at most these)
        self.added = 0
        self.skipped_duplicates = 0
        self._keys: set[str] = set()
        self.count = 0  # faces in the faceset: those it held before plus those added
        self._next_id = 0
        self._lock = None
        self._fd: int | None = None  # the manifest, open for appending, once the faceset is open
        self._size = 0  # bytes of complete rows in the manifest
        self._unsynced = 0
        if self.root.is_dir():
            if (self.root / INFO_FILE).exists():
                self._open()
                return
            # Hidden names (our lock file, a temporary file of a run killed while creating it) do not count.
            if any(not name.startswith(".") for name in os.listdir(self.root)):
                raise FacesetError(f"{self.root}: exists and is not a faceset; choose an empty or new folder")
        elif self.root.exists() or self.root.is_symlink():
            raise FacesetError(f"{self.root}: exists and is not a faceset; choose an empty or new folder")
        writable = _nearest_existing(self.root)
        if not os.access(writable, os.W_OK):
            raise FacesetError(f"{self.root}: cannot create a faceset here ({writable} is read-only)")

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def _open(self) -> None:
        """Lock the folder, then extend the faceset it holds or, when it holds none, create one."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FacesetError(f"{self.root}: cannot create the faceset ({exc.strerror})") from exc
        if not os.access(self.root, os.W_OK):
            raise FacesetError(f"{self.root}: is read-only; cannot add faces to this faceset")
        try:
            self._lock = exclusive_lock(self.root, "faceset")
        except LockError as exc:
            raise FacesetError(str(exc)) from exc
        try:
            self._check_no_symlinks()  # before anything is read or written through them
            if (self.root / INFO_FILE).exists():  # also when another run created it since __init__
                self._check_compatible(_read_info(self.root))
            else:
                info = {"format_version": FORMAT_VERSION, "size": self.size, "template": self.template,
                        "tool": "synthswap", "tool_version": __version__}
                atomic.write_text(self.root / INFO_FILE, json.dumps(info, indent=2) + "\n", fsync=True)
            for name in SUBFOLDERS:
                (self.root / name).mkdir(exist_ok=True)
            self._check_no_symlinks()
            for name in SUBFOLDERS:
                if not os.access(self.root / name, os.W_OK):
                    raise FacesetError(f"{self.root / name}: is read-only; cannot add faces to this faceset")
            for folder in [self.root, *(self.root / name for name in SUBFOLDERS)]:
                atomic.remove_leftovers(folder)  # PNGs and info files of a run killed mid-write
            manifest = self.root / MANIFEST_FILE
            self._fd = os.open(manifest, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            for _, end, face in _read_rows(manifest):
                self._size = end
                self._keys.add(face.key)
                self._next_id = max(self._next_id, int(face.id) + 1)
                self.count += 1
            os.ftruncate(self._fd, self._size)  # drop a torn last line: the next row must start on its own line
        except BaseException as exc:
            self.close()
            if isinstance(exc, OSError):
                raise FacesetError(f"{self.root}: cannot write the faceset ({exc})") from exc
            raise

    def _check_no_symlinks(self) -> None:
        for name in (*SUBFOLDERS, INFO_FILE, MANIFEST_FILE):
            if (self.root / name).is_symlink():
                raise FacesetError(
                    f"{self.root / name}: is a symbolic link; a faceset is written only inside its own folder"
                )

    def _check_compatible(self, info: dict[str, Any]) -> None:
        if info["size"] != self.size:
            raise FacesetError(
                f"{self.root}: existing faceset has size {info['size']}, not {self.size}; "
                f"use --size {info['size']} or another --out"
            )
        if info["template"]["name"] != self.template["name"]:
            raise FacesetError(f"{self.root}: existing faceset uses another alignment template")

    def add(self, crop: np.ndarray, mask: np.ndarray, **record: Any) -> Face | None:
        """Write one face; returns None when a face with the same key is already there."""
        if crop.shape[:2] != (self.size, self.size):
            raise FacesetError(f"crop is {crop.shape[1]}x{crop.shape[0]}, faceset size is {self.size}")
        if self._fd is None:
            self._open()  # the first face: create the faceset (or extend one another run made meanwhile)
        key = f"{record['source']}#{record['frame_index']}"
        if key in self._keys:
            self.skipped_duplicates += 1
            return None
        face_id = f"{self._next_id:06d}"
        face = Face(id=face_id, image=f"faces/{face_id}.png", mask=f"masks/{face_id}.png", **record)
        # A synthetic face says so in its PNG too (text chunks; no watermark: these are training data).
        text = synthetic_image_tags(face.source) if face.synthetic else None
        write_png(self.root / face.image, crop, compression=1, text=text)  # level 1: fast, files ~10% larger
        write_png(self.root / face.mask, mask, compression=1)
        self._append(_manifest_line(face))  # only now does the face exist
        self._next_id += 1
        self._keys.add(key)
        self.count += 1
        self.added += 1
        self._unsynced += 1
        if self._unsynced >= self.sync_every:
            self.sync()
        return face

    def _append(self, line: bytes) -> None:
        # Unbuffered: a row is in the file (and visible to readers) as soon as add() returns.
        view = memoryview(line)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except BaseException:
            os.ftruncate(self._fd, self._size)  # never leave half a row for the next one to follow
            raise
        self._size += len(line)

    def sync(self) -> None:
        if self._fd is not None and self._unsynced:
            os.fsync(self._fd)
            self._unsynced = 0

    def close(self) -> None:
        if self._fd is not None:
            try:
                self.sync()
            finally:
                os.close(self._fd)
                self._fd = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "FacesetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # Close on errors and Ctrl-C too: the rows are already in the file; this makes them durable.
        self.close()


def write_subset(faceset: Faceset, faces: list[Face], out: str | os.PathLike) -> Faceset:
    """Copy the chosen faces (crops, masks and rows) into a new faceset: how splits and
    the real-k training sets of the study are made, with the same writer as everything else."""
    with FacesetWriter(out, faceset.size, faceset.info["template"]) as writer:
        for face in faces:
            row = {k: v for k, v in asdict(face).items() if k not in ("id", "image", "mask")}
            writer.add(faceset.read_image(face), faceset.read_mask(face), **row)
    return Faceset.open(out)
