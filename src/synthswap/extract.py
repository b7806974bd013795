"""Extraction: photos, folders and videos in, one aligned and measured faceset out."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np
from tqdm import tqdm

from synthswap.faces.choice import LARGEST, FaceChoice, face_option, parse_face
from synthswap.faceset import FacesetWriter
from synthswap.overlap import read_ahead
from synthswap.media import (DEFAULT_MAX_PIXELS, MediaError, VideoFrame, accepted_formats, check_image_size,
                             check_video_whole, is_image, is_video, iter_video_frames, probe_video, read_image)
from synthswap.options import option, problems

if TYPE_CHECKING:  # MediaPipe loads where faces are analysed: `extract --help` and its checks need none
    from synthswap.faces.pipeline import FaceAnalyzer


class ExtractError(Exception):
    """The extraction as a whole cannot proceed or produced nothing."""


class UsageError(ExtractError):
    """A bad argument (a missing or unsupported input, a number out of range, an --out that
    overlaps an input): a usage error, refused before anything is written."""


@dataclass
class ExtractSummary:
    out: Path
    inputs: int = 0
    frames: int = 0
    faces_added: int = 0
    duplicates: int = 0
    frames_without_face: int = 0
    failed_inputs: list[str] = field(default_factory=list)
    faceset_size: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def faces_found(self) -> int:
        return self.faces_added + self.duplicates

    def text(self) -> str:
        fps = self.frames / self.seconds if self.seconds else 0.0
        lines = [
            f"faceset {self.out}: {self.faceset_size} faces "
            f"({self.faces_added} added, {self.duplicates} already present)",
            f"{self.inputs} inputs, {self.frames} images/frames read in {self.seconds:.1f} s ({fps:.1f}/s), "
            f"{self.frames_without_face} without a usable face",
        ]
        if self.failed_inputs:
            lines.append(f"{len(self.failed_inputs)} inputs could not be read:")
            lines += [f"  {msg}" for msg in self.failed_inputs]
        return "\n".join(lines)


def collect_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Expand folders (recursively, sorted) into media files; refuse missing or unsupported paths."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UsageError(f"{path}: no such file or folder")
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and (is_image(p) or is_video(p)))
            if not found:
                raise UsageError(f"{path}: folder holds no images or videos ({accepted_formats()})")
            files += found
        elif is_image(path) or is_video(path):
            files.append(path)
        else:
            raise UsageError(f"{path}: not an image or video extension ({path.suffix or 'none'}); accepted: "
                             f"{accepted_formats()}")
    return files


def check_readable(inputs: Iterable[str | Path], max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse, before any long work, inputs that a stage would fail on later: every photo's header is
    read (size limit included; a photo broken further in is skipped by extraction, with its reason),
    every video read to its end (a truncated one that claims its full length included)."""
    for path in collect_inputs(inputs):
        if is_image(path):
            check_image_size(path, max_pixels)
        else:
            check_video_whole(path, max_pixels)


CROP_SIZES = (32, 1024)  # the aligned crop sizes a faceset may be made at (smallest, largest)


@dataclass(kw_only=True)
class ExtractOptions:
    """`extract`'s settings (its inputs, --out and --reference are paths, given apart)."""

    size: int = option(256, "aligned crop size in pixels", minimum=CROP_SIZES[0], maximum=CROP_SIZES[1])
    every_n: int = option(1, "keep every N-th video frame", minimum=1, metavar="N")
    max_frames: int | None = option(None, "at most N frames per video (after --every-n; default: every frame)",
                                    minimum=1, metavar="N")
    max_pixels: int = option(DEFAULT_MAX_PIXELS, "refuse images larger than N pixels", minimum=1, metavar="N")
    face: str = face_option("to keep in each picture")


def check_arguments(size: int, every_n: int, max_frames: int | None, max_pixels: int, face: str = LARGEST) -> None:
    """UsageError unless the settings are valid (by ExtractOptions' declarations, as the CLI checks them)."""
    reason = problems(ExtractOptions(size=size, every_n=every_n, max_frames=max_frames, max_pixels=max_pixels,
                                     face=face))
    if reason is not None:
        raise UsageError(reason)


def check_out(out: str | Path, inputs: Iterable[str | Path]) -> None:
    """Refuse an --out that is an input or lies inside an input folder (its crops would become the
    next run's inputs), and inputs inside --out (a faceset does not read from itself)."""
    out_real = Path(out).resolve()
    for raw in inputs:
        path = Path(raw).resolve()
        if out_real == path or out_real.is_relative_to(path) or path.is_relative_to(out_real):
            raise UsageError(f"--out {out} overlaps the input {raw}; write the faceset to another folder")


def reference_embedding(photo: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    from synthswap.faces.pipeline import FaceAnalyzer

    analyzer = FaceAnalyzer(size=128)
    try:
        face = analyzer.analyze(read_image(photo, max_pixels))
    finally:
        analyzer.close()
    if face is None:
        raise ExtractError(f"{photo}: no face found in the reference photo")
    return face.identity


def face_selection(face: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray | None, FaceChoice | None]:
    """A --face value as FaceAnalyzer takes it, one way for every command: a photo becomes the SFace
    embedding its face is matched against in every frame (no following); 'largest' and a position become
    a FaceChoice, which follows the chosen face. ExtractError when the photo shows no face."""
    position, photo = parse_face(face)
    if photo is not None:
        return reference_embedding(photo, max_pixels), None
    return None, FaceChoice(position)


def extract(
    inputs: Iterable[str | Path],
    out: str | Path,
    size: int = 256,
    every_n: int = 1,
    max_frames: int | None = None,
    face: str = LARGEST,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool = True,
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
) -> ExtractSummary:
    """Detect, align and measure the subject's face in every input image and video frame.

    Re-running into the same faceset adds only faces not already there. Raises
    ExtractError when no input gave a face; unreadable inputs are reported in the summary.
    """
    from synthswap.faces.align import template_info
    from synthswap.faces.pipeline import FaceAnalyzer

    check_arguments(size, every_n, max_frames, max_pixels, face)
    inputs = list(inputs)
    files = collect_inputs(inputs)
    check_out(out, inputs)
    summary = ExtractSummary(out=Path(out), inputs=len(files))
    # The faceset is opened (an existing one locked) before the models load, so a busy, foreign or
    # read-only --out fails at once; a new one is created only when the first face arrives.
    with FacesetWriter(out, size, template_info()) as writer:
        reference, choice = face_selection(face, max_pixels)
        analyzer = FaceAnalyzer(size=size, reference=reference, choice=choice)
        start = time.perf_counter()
        try:
            for path in files:
                try:
                    _extract_one(path, writer, analyzer, summary, every_n, max_frames, max_pixels, progress, log)
                except MediaError as exc:
                    summary.failed_inputs.append(str(exc))
                    log(f"skipped: {exc}")
        finally:
            analyzer.close()
            summary.seconds = time.perf_counter() - start
            summary.timings = dict(analyzer.timings)
        summary.faceset_size = writer.count
    if summary.faces_found == 0:
        reasons = "; ".join(summary.failed_inputs) or f"{summary.frames} images/frames had no face"
        raise ExtractError(f"no face found in any input ({reasons})")
    return summary


def _extract_one(path: Path, writer: FacesetWriter, analyzer: FaceAnalyzer, summary: ExtractSummary,
                 every_n: int, max_frames: int | None, max_pixels: int, progress: bool,
                 log: Callable[[str], None]) -> None:
    source = str(path.resolve())
    analyzer.reset_tracking()
    if is_image(path):
        frames: Iterator[VideoFrame] = iter([VideoFrame(0, 0.0, read_image(path, max_pixels))])
        total = 1
    else:
        info = probe_video(path, max_pixels)
        total = -(-info.frame_count // every_n) if info.frame_count else None
        if max_frames is not None:
            total = min(total or max_frames, max_frames)
        frames = read_ahead(iter_video_frames(path, every_n, max_frames, max_pixels), depth=8)
    bar = tqdm(frames, total=total, desc=path.name, unit="frame", disable=not progress or total == 1, leave=False)
    for frame in bar:
        summary.frames += 1
        if f"{source}#{frame.index}" in writer:
            summary.duplicates += 1
            continue
        face = analyzer.analyze(frame.bgr, track=not is_image(path))
        if face is None:
            summary.frames_without_face += 1
            if is_image(path):
                log(f"no face found: {path}")
            continue
        writer.add(face.crop, face.mask, source=source, frame_index=frame.index,
                   time_s=round(frame.time_s, 4), **face.record())
        summary.faces_added += 1
