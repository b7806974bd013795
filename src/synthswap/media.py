"""Safe decoding of images and videos, and H.264 encoding with audio passthrough.

Every stage reads media through this module, so a bad file gives the same clear
`MediaError` everywhere instead of a decoder's crash or a silently empty image.
"""

from __future__ import annotations

import fractions
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from synthswap import atomic

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_EXTENSIONS = {".mp4", ".mov", ".mkv", ".avi", ".flv", ".mpg", ".mpeg", ".webm", ".m4v"}

# 50 megapixels: larger than any camera photo a user would hand us, far below what
# would exhaust memory once decoded (50 MP x 3 bytes = 150 MB).
DEFAULT_MAX_PIXELS = 50_000_000


class MediaError(Exception):
    """A file that cannot be read as the image or video it claims to be."""


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def write_png(path: str | os.PathLike, image: np.ndarray, compression: int = 3,
              text: dict[str, str] | None = None) -> None:
    """Encode a BGR or grey image as PNG under a temporary name, then rename: readers never see half a file.
    `text` becomes tEXt chunks (keyword -> value), as provenance metadata."""
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise MediaError(f"could not encode {Path(path).name} as PNG")
    data = buf.tobytes()
    if text:
        from synthswap.pngtext import png_with_text

        data = png_with_text(data, text)
    atomic.write_bytes(path, data)


def check_file(path: Path) -> None:
    """MediaError unless `path` is an existing, non-empty regular file."""
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if not path.is_file():
        raise MediaError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: file is empty (0 bytes)")


@contextmanager
def _open_checked(path: Path, max_pixels: int) -> Iterator[Image.Image]:
    """Open an image lazily, refuse it from its header when it has too many pixels, and turn
    every decoder failure inside the `with` block into a MediaError naming the file."""
    check_file(path)
    try:
        with warnings.catch_warnings():
            # We enforce our own, lower limit below; PIL's own bomb warning is noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise MediaError(
                        f"{path}: image is {width}x{height} = {width * height / 1e6:.0f} megapixels, "
                        f"over the limit of {max_pixels / 1e6:.0f}; downscale it first"
                    )
                yield img
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaError(
            f"{path}: image is over the limit of {max_pixels / 1e6:.0f} megapixels ({exc}); downscale it first"
        ) from exc
    except UnidentifiedImageError as exc:
        raise MediaError(f"{path}: not a readable image (unknown or corrupt format)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"{path}: corrupt or truncated image ({exc})") from exc


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file to an 8-bit BGR array (OpenCV's channel order).

    EXIF orientation is applied, grayscale is expanded to three channels, 16-bit
    images are scaled to 8 bits, and transparency is composited over mid-grey.
    The pixel count is checked from the header before anything is decoded.
    """
    path = Path(path)
    with _open_checked(path, max_pixels) as img:
        img.load()  # raises on truncated or corrupt data
        img = ImageOps.exif_transpose(img)
        rgb = _to_rgb8(img)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def read_crop(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS, grey: bool = False) -> np.ndarray:
    """Decode an image synthswap wrote itself (a faceset crop or mask): BGR, or one channel with `grey`.

    The same header check as `read_image` comes first; the decoding is OpenCV's (2.8 against
    4.9 ms for PIL on a 256 px crop), without the conversions that camera photos need.
    """
    path = Path(path)
    with _open_checked(path, max_pixels):
        pass
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
    if img is None:
        raise MediaError(f"{path}: corrupt or truncated image")
    return img


def _to_rgb8(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img).astype(np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        gray = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA")).astype(np.float32)
        alpha = rgba[:, :, 3:4] / 255.0
        rgb = rgba[:, :, :3] * alpha + 128.0 * (1.0 - alpha)
        return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(img.convert("RGB"))


@dataclass
class VideoInfo:
    width: int
    height: int
    fps: fractions.Fraction
    frame_count: int  # from the container header; 0 when the container does not say
    duration_s: float
    has_audio: bool


@dataclass
class VideoFrame:
    index: int
    time_s: float
    bgr: np.ndarray


def probe_video(path: str | os.PathLike) -> VideoInfo:
    path = Path(path)
    check_file(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: contains no video stream")
            stream = container.streams.video[0]
            fps = stream.average_rate or stream.guessed_rate or fractions.Fraction(25)
            duration = (
                float(stream.duration * stream.time_base)
                if stream.duration is not None
                else (container.duration or 0) / av.time_base
            )
            return VideoInfo(
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                fps=fractions.Fraction(fps),
                frame_count=stream.frames or 0,
                duration_s=duration,
                has_audio=bool(container.streams.audio),
            )
    except MediaError:
        raise
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: not a readable video ({exc})") from exc


def iter_video_frames(
    path: str | os.PathLike, every_n: int = 1, max_frames: int | None = None
) -> Iterator[VideoFrame]:
    """Stream BGR frames one at a time; memory does not grow with the video's length.

    `every_n` keeps frames 0, n, 2n...; `max_frames` bounds how many are yielded.
    A file that breaks off mid-stream raises MediaError after the good frames.
    """
    path = Path(path)
    info = probe_video(path)
    yielded = 0
    index = -1
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                index += 1
                if index % every_n:
                    continue
                time_s = float(frame.time) if frame.time is not None else index / float(info.fps)
                yield VideoFrame(index, time_s, frame.to_ndarray(format="bgr24"))
                yielded += 1
                if max_frames is not None and yielded >= max_frames:
                    return
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: video is corrupt or truncated after frame {index} ({exc})") from exc
    if index < 0:
        raise MediaError(f"{path}: video has no decodable frames (corrupt or truncated)")
    if info.frame_count and index + 1 < info.frame_count * 0.98:
        raise MediaError(
            f"{path}: video ended after {index + 1} of {info.frame_count} frames (truncated?)"
        )


# Written into every video's container metadata ("comment"), so that a command can tell its own
# earlier output, which it may replace, from a video of the user's, which it must not.
VIDEO_COMMENT = "written by synthswap"


def written_by_synthswap(path: str | os.PathLike) -> bool:
    """Whether `path` is a video a synthswap VideoWriter wrote (its container carries VIDEO_COMMENT)."""
    try:
        with av.open(str(path)) as container:
            tags = {key.lower(): value for key, value in container.metadata.items()}  # Matroska: COMMENT
            return str(tags.get("comment", "")).startswith(VIDEO_COMMENT)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError):
        return False


class VideoWriter:
    """H.264 writer that copies the audio of a source video packet for packet (and writes
    `metadata` as container tags).

    Frames are written as they come (memory stays flat). The output goes to a temporary
    file next to the target and is renamed into place only by `close()`, so a crash
    never leaves a half-written video under the final name.
    """

    def __init__(
        self,
        out_path: str | os.PathLike,
        width: int,
        height: int,
        fps: fractions.Fraction,
        audio_source: str | os.PathLike | None = None,
        crf: int = 18,
        metadata: dict[str, str] | None = None,
    ):
        self.out_path = Path(out_path)
        self.tmp_path = atomic.temp_path(self.out_path)
        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        # MP4 and MOV keep keys of their own (provenance tags) only with use_metadata_tags.
        options = {"movflags": "use_metadata_tags"} if metadata and self.out_path.suffix.lower() in (
            ".mp4", ".mov", ".m4v") else {}
        self.container = av.open(str(self.tmp_path), mode="w", options=options)
        self.container.metadata["comment"] = VIDEO_COMMENT  # what lets convert know a file is its own
        if metadata:
            self.container.metadata.update(metadata)
        self.fps = fractions.Fraction(fps).limit_denominator(100000)
        self.stream = self.container.add_stream("libx264", rate=self.fps)
        self.stream.width = width
        self.stream.height = height
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": str(crf), "preset": "veryfast"}
        self.frames_written = 0
        self._audio_in = None
        self._audio_out = None
        if audio_source is not None:
            src = av.open(str(audio_source))
            if src.streams.audio:
                self._audio_in = src
                self._audio_out = self.container.add_stream_from_template(src.streams.audio[0])
            else:
                src.close()

    def write(self, bgr: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24")
        frame.pts = self.frames_written
        frame.time_base = 1 / self.fps  # frame n is shown at n / fps
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames_written += 1

    def close(self) -> Path:
        for packet in self.stream.encode():
            self.container.mux(packet)
        if self._audio_in is not None:
            in_stream = self._audio_in.streams.audio[0]
            for packet in self._audio_in.demux(in_stream):
                if packet.dts is None:
                    continue
                packet.stream = self._audio_out
                self.container.mux(packet)
            self._audio_in.close()
        self.container.close()
        os.replace(self.tmp_path, self.out_path)
        return self.out_path

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - the file is being discarded anyway
            pass
        if self._audio_in is not None:
            self._audio_in.close()
        self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
