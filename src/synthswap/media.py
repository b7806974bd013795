"""Safe decoding of images and videos, and H.264 encoding with audio passthrough.

Every stage reads media through this module, so a bad file gives the same clear
`MediaError` everywhere instead of a decoder's crash or a silently empty image.
Media are read as players show them: photos with their EXIF orientation, video frames
turned by their display matrix (the rotation tag of phone video), at their own timestamps.
"""

from __future__ import annotations

import fractions
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import av
import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

from synthswap import atomic

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
VIDEO_EXTENSIONS = {".mp4", ".mov", ".mkv", ".avi", ".flv", ".mpg", ".mpeg", ".webm", ".m4v"}

# iPhone photos are HEIC: pillow-heif teaches Pillow to open them (Pillow reads AVIF itself).
register_heif_opener()


def accepted_formats() -> str:
    """The extensions synthswap reads, for error messages."""
    return (f"photos: {' '.join(sorted(e[1:] for e in IMAGE_EXTENSIONS))}; "
            f"videos: {' '.join(sorted(e[1:] for e in VIDEO_EXTENSIONS))}")

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
        raise MediaError(  # PIL refuses it at open, before we can read the size: over 179 megapixels
            f"{path}: image declares over {Image.MAX_IMAGE_PIXELS * 2 / 1e6:.0f} megapixels, over the limit of "
            f"{max_pixels / 1e6:.0f}; downscale it first"
        ) from exc
    except UnidentifiedImageError as exc:
        raise MediaError(f"{path}: not a readable image (unknown or corrupt format)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"{path}: corrupt or truncated image ({exc})") from exc


def check_image_size(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(width, height) from the image's header; MediaError when it is over `max_pixels` or unreadable."""
    with _open_checked(Path(path), max_pixels) as img:
        return img.size


_REDUCIBLE = ("RGB", "RGBA", "L", "LA", "CMYK", "I", "F")  # the modes PIL's Image.reduce takes


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS,
               max_side: int | None = None) -> np.ndarray:
    """Decode an image file to an 8-bit BGR array (OpenCV's channel order).

    EXIF orientation is applied, grayscale is expanded to three channels, 16-bit
    images are scaled to 8 bits, and transparency is composited over mid-grey.
    The pixel count is checked from the header before anything is decoded.
    `max_side`: no side longer than this, for a look rather than the pixels (a face search):
    a JPEG is decoded at a reduced scale by the decoder itself, other formats are reduced right
    after decoding, so a 49-megapixel photo costs 50 (JPEG) to 300 MB (PNG) instead of 0.8 to 1.4 GB.
    """
    path = Path(path)
    with _open_checked(path, max_pixels) as img:
        if max_side is not None:
            img.draft(img.mode, (max_side, max_side))  # JPEG only: 1/2 to 1/8 scale, at least max_side
        img.load()  # raises on truncated or corrupt data
        img = ImageOps.exif_transpose(img)
        if max_side is not None and max(img.size) >= 2 * max_side and img.mode in _REDUCIBLE:
            img = img.reduce(max(img.size) // max_side)  # other formats: before the conversions copy it
        rgb = _to_rgb8(img)
    if max_side is not None and max(rgb.shape[:2]) > max_side:
        scale = max_side / max(rgb.shape[:2])
        rgb = cv2.resize(rgb, (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA)
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
class StreamInfo:
    """A stream beside the picture: an audio track, subtitles, data."""
    index: int
    kind: str  # "audio", "subtitle", "data", "video" (a second picture: cover art, a depth map)
    codec: str


@dataclass
class VideoInfo:
    width: int  # as displayed: after the display matrix's rotation
    height: int
    fps: fractions.Fraction
    frame_count: int  # from the container header; 0 when the container does not say
    duration_s: float
    has_audio: bool
    rotation: int = 0  # quarter turns counter-clockwise that make a decoded frame upright (0-3)
    mirrored: bool = False  # the display matrix then mirrors it left to right
    streams: list[StreamInfo] = field(default_factory=list)  # every stream but the picture


@dataclass
class VideoFrame:
    index: int
    time_s: float  # the frame's own timestamp (variable frame rates keep theirs)
    bgr: np.ndarray


def _orientation(frame: av.VideoFrame) -> tuple[int, bool]:
    """How the display matrix shows this frame: quarter turns counter-clockwise, then whether it is
    mirrored left to right (phones store portrait video sideways with a rotation tag, some editors
    and front cameras store a mirror; players apply both). FFmpeg's matrix [a b u; c d v; x y w]
    maps (p, q) to (a p + c q, b p + d q); a mirror is a negative determinant, the rotation matrix
    with its first column negated (av_display_matrix_flip), which `frame.rotation` would read as a
    half turn."""
    data = frame.side_data.get("DISPLAYMATRIX")
    if data is None:
        return 0, False
    m = np.frombuffer(bytes(data), np.int32).astype(np.float64)
    a, b, c, d = m[0], m[1], m[3], m[4]
    mirrored = a * d - b * c < 0
    if mirrored:
        a, c = -a, -c
    degrees = -np.degrees(np.arctan2(b, a))  # as av_display_rotation_get reads a rotation
    return int(round(degrees / 90.0)) % 4, bool(mirrored)


def _upright(bgr: np.ndarray, turns: int, mirrored: bool = False) -> np.ndarray:
    if turns:
        bgr = np.rot90(bgr, turns)
    if mirrored:
        bgr = bgr[:, ::-1]
    return np.ascontiguousarray(bgr) if turns or mirrored else bgr


def _check_frame_size(path: Path, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise MediaError(f"{path}: video frames are {width}x{height} = {width * height / 1e6:.0f} megapixels, "
                         f"over the limit of {max_pixels / 1e6:.0f}; downscale it first")
    if width < 2 or height < 2:
        raise MediaError(f"{path}: video frames are {width}x{height}, too small to hold a face")


def probe_video(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> VideoInfo:
    """The video's header, its frame size as displayed, and its other streams. The frame size is
    checked against `max_pixels` from the header, before any frame is decoded."""
    path = Path(path)
    check_file(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: contains no video stream")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            _check_frame_size(path, width, height, max_pixels)
            fps = stream.average_rate or stream.guessed_rate or fractions.Fraction(25)
            duration = (
                float(stream.duration * stream.time_base)
                if stream.duration is not None
                else (container.duration or 0) / av.time_base
            )
            others = [StreamInfo(s.index, s.type, s.codec_context.name if s.codec_context else "unknown")
                      for s in container.streams if s.index != stream.index]
            # The rotation is side data that the decoder attaches to each frame: read the first one.
            turns, mirrored = 0, False
            try:
                turns, mirrored = _orientation(next(container.decode(stream)))
            except (StopIteration, av.error.FFmpegError):
                pass  # no decodable frame: iter_video_frames says so
            if turns % 2:
                width, height = height, width
            return VideoInfo(
                width=width,
                height=height,
                fps=fractions.Fraction(fps),
                frame_count=stream.frames or 0,
                duration_s=duration,
                has_audio=bool(container.streams.audio),
                rotation=turns,
                mirrored=mirrored,
                streams=others,
            )
    except MediaError:
        raise
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: not a readable video ({exc})") from exc


def check_video_whole(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> VideoInfo:
    """Refuse a video whose picture stops before its header says it ends, before any long work.

    A truncated "fast-start" MP4 keeps a header that lists every frame, so probing it reports
    the full duration; only reading it finds the end missing. This reads every packet of the
    picture without decoding (seconds for a long 1080p file) and decodes the last one.
    """
    path = Path(path)
    info = probe_video(path, max_pixels)
    packets = 0
    last_time = 0.0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the demuxer's end-of-stream marker
                packets += 1
                if packet.pts is not None:
                    last_time = max(last_time, float(packet.pts * packet.time_base))
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: video is corrupt or truncated after {packets} frames ({exc})") from exc
    if packets == 0:
        raise MediaError(f"{path}: video has no frames (corrupt or truncated)")
    if info.frame_count and packets < info.frame_count * 0.98:
        raise MediaError(f"{path}: video is truncated: its header lists {info.frame_count} frames, the file holds "
                         f"{packets}")
    if info.duration_s and last_time < info.duration_s * 0.95 - 1.0:
        raise MediaError(f"{path}: video is truncated: its header says {info.duration_s:.1f} s, its frames stop "
                         f"at {last_time:.1f} s")
    return info


def iter_video_frames(
    path: str | os.PathLike, every_n: int = 1, max_frames: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Iterator[VideoFrame]:
    """Stream BGR frames one at a time, upright as players show them; memory does not grow with the
    video's length.

    `every_n` keeps frames 0, n, 2n...; `max_frames` bounds how many are yielded.
    A file that breaks off mid-stream raises MediaError after the good frames.
    """
    path = Path(path)
    info = probe_video(path, max_pixels)
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
                # A stream may change size mid-way: every frame is held to the limit before conversion.
                _check_frame_size(path, frame.width, frame.height, max_pixels)
                time_s = float(frame.time) if frame.time is not None else index / float(info.fps)
                yield VideoFrame(index, time_s, _upright(frame.to_ndarray(format="bgr24"), *_orientation(frame)))
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


def sample_video_frames(path: str | os.PathLike, count: int,
                        max_pixels: int = DEFAULT_MAX_PIXELS) -> list[VideoFrame]:
    """About `count` frames spread evenly over the whole video, upright, for a quick look at who is in
    it. Only key frames are decoded first (the decoder skips the rest, so an hour of video costs
    seconds); a video with too few key frames for that is short, and is decoded frame by frame."""
    path = Path(path)
    info = probe_video(path, max_pixels)
    duration = info.duration_s or (info.frame_count / float(info.fps) if info.frame_count else 0.0)
    # Without a known length: one frame a second from the start.
    step = duration / count if duration > 0 else 1.0
    frames = _frames_at(path, info, [i * step for i in range(count)], max_pixels, keyframes_only=True)
    if len(frames) < count // 2:
        frames = _frames_at(path, info, [i * step for i in range(count)], max_pixels, keyframes_only=False)
    return frames


def _frames_at(path: Path, info: VideoInfo, times: list[float], max_pixels: int,
               keyframes_only: bool) -> list[VideoFrame]:
    """The first frame at or after each of `times` (ascending), each frame taken once."""
    taken: list[VideoFrame] = []
    index, wanted = -1, 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if keyframes_only:
                stream.codec_context.skip_frame = "NONKEY"
            for frame in container.decode(stream):
                index += 1
                time_s = float(frame.time) if frame.time is not None else index / float(info.fps)
                if time_s + 1e-6 < times[wanted]:
                    continue
                _check_frame_size(path, frame.width, frame.height, max_pixels)
                taken.append(VideoFrame(index, time_s, _upright(frame.to_ndarray(format="bgr24"), *_orientation(frame))))
                while wanted < len(times) and times[wanted] <= time_s + 1e-6:
                    wanted += 1
                if wanted == len(times):
                    break
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: video is corrupt or truncated after frame {index} ({exc})") from exc
    if not taken and not keyframes_only:
        raise MediaError(f"{path}: video has no decodable frames (corrupt or truncated)")
    return taken


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


def _codec_ids(names: set[str]) -> set[int]:
    """Codec ids of a container's supported codec names (a decoder's name may differ: srt/subrip)."""
    ids = set()
    for name in names:
        for mode in ("r", "w"):
            try:
                ids.add(av.Codec(name, mode).id)
                break
            except (av.error.FFmpegError, ValueError):
                continue
    return ids


TIME_SCALE = 90_000  # ticks per second of the written video's timestamps (MPEG's clock)


X264_THREADS = 4


class VideoWriter:
    """H.264 writer that copies the audio and subtitle streams of a source video packet for packet
    (and writes `metadata` as container tags).

    Frames are written as they come (memory stays flat), each at its own timestamp when one is
    given, so a variable-frame-rate source keeps its timing against its audio. Any frame size is
    accepted: H.264 in 4:2:0 stores even sizes only (its crop field counts in 2-pixel steps too),
    so an odd width or height gets one repeated edge column or row. The output goes to a
    temporary file next to the target and is renamed into place only by `close()`, so a crash
    never leaves a half-written video under the final name; temporary files of the same target
    left by a killed writer are removed when the next one starts.
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
        audio_until_s: float | None = None,
    ):
        self.out_path = Path(out_path)
        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        atomic.remove_stale(self.out_path)
        self.tmp_path = atomic.temp_path(self.out_path)
        # MP4 and MOV keep keys of their own (provenance tags) only with use_metadata_tags.
        options = {"movflags": "use_metadata_tags"} if metadata and self.out_path.suffix.lower() in (
            ".mp4", ".mov", ".m4v") else {}
        self.container = av.open(str(self.tmp_path), mode="w", options=options)
        self.container.metadata["comment"] = VIDEO_COMMENT  # what lets convert know a file is its own
        if metadata:
            self.container.metadata.update(metadata)
        self.fps = fractions.Fraction(fps).limit_denominator(100000)
        self.width, self.height = width, height
        self.coded_size = (width + width % 2, height + height % 2)
        self.stream = self.container.add_stream("libx264", rate=self.fps)
        self.stream.width, self.stream.height = self.coded_size
        self.stream.pix_fmt = "yuv420p"
        self.stream.codec_context.time_base = fractions.Fraction(1, TIME_SCALE)
        self.stream.options = {"crf": str(crf), "preset": "veryfast"}
        # x264's output depends on its thread count, which by default follows the CPUs the calling thread
        # may use: a fixed count makes the same frames the same file on every machine and in every thread.
        self.stream.codec_context.thread_count = X264_THREADS
        self.frames_written = 0
        self._last_pts: int | None = None
        self.audio_until_s = audio_until_s
        self._source = None
        self._copies: dict[int, Any] = {}  # source stream index -> output stream
        self.streams_copied: list[str] = []
        self.streams_dropped: list[str] = []  # "stream N (kind codec): why", for the summary
        if audio_source is not None:
            try:
                self._open_source(Path(audio_source))
            except BaseException:  # the temporary file exists already: never leave it behind
                self.abort()
                raise

    def _open_source(self, source: Path) -> None:
        self._source = av.open(str(source))  # held from here, so that abort() closes it
        supported = _codec_ids(self.container.supported_codecs)
        picture = self._source.streams.video[0].index if self._source.streams.video else None
        for stream in self._source.streams:
            if stream.index == picture:
                continue
            codec = stream.codec_context.name if stream.codec_context else "unknown"
            what = f"stream {stream.index} ({stream.type} {codec})"
            if stream.type not in ("audio", "subtitle"):
                self.streams_dropped.append(f"{what}: only audio and subtitle streams are copied")
            elif stream.codec_context is None or stream.codec_context.codec.id not in supported:
                self.streams_dropped.append(f"{what}: a {self.out_path.suffix} file cannot hold {codec}; "
                                            f"write a .mkv to keep it")
            else:
                self._copies[stream.index] = self.container.add_stream_from_template(stream)
                self.streams_copied.append(what)
        if not self._copies:
            self._source.close()
            self._source = None

    def write(self, bgr: np.ndarray, time_s: float | None = None) -> None:
        """Add a frame shown at `time_s` seconds (the source frame's timestamp), or, without one,
        at frame count / fps."""
        if bgr.shape[1] != self.coded_size[0] or bgr.shape[0] != self.coded_size[1]:
            bgr = cv2.copyMakeBorder(bgr, 0, self.coded_size[1] - bgr.shape[0], 0,
                                     self.coded_size[0] - bgr.shape[1], cv2.BORDER_REPLICATE)
        if time_s is None:
            time_s = float(self.frames_written / self.fps)
        pts = int(round(time_s * TIME_SCALE))
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1  # the encoder needs rising timestamps; a repeated one moves a tick
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24")
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, TIME_SCALE)
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self._last_pts = pts
        self.frames_written += 1

    def close(self) -> Path:
        try:
            self._finish()
        except BaseException:  # a full disk or Ctrl-C while finishing: no temporary file stays behind
            self.abort()
            raise
        os.replace(self.tmp_path, self.out_path)
        return self.out_path

    def _finish(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        if self._source is not None:
            for packet in self._source.demux(*(self._source.streams[i] for i in self._copies)):
                if packet.dts is None and packet.pts is None:
                    continue  # the demuxer's end-of-stream marker
                when = packet.pts if packet.pts is not None else packet.dts
                if self.audio_until_s is not None and float(when * packet.time_base) > self.audio_until_s:
                    continue  # beyond the last frame written: the file must not outlast its picture
                packet.stream = self._copies[packet.stream.index]
                self.container.mux(packet)
            self._source.close()
            self._source = None
        self.container.close()

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - the file is being discarded anyway
            pass
        if self._source is not None:
            self._source.close()
        self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
