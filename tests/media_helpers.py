"""Phone-like and broken videos made with PyAV from the real clips of ../shared (no system ffmpeg):
rotation tags, variable frame rates, odd sizes, several audio tracks, subtitles, truncation."""

from __future__ import annotations

import fractions
from pathlib import Path

import av
import cv2
import numpy as np

GRID_CLIP = "videos/grid/bbaf2n.mpg"  # 360x288, 25 fps, one face, MPEG audio


def source_frames(clip: Path, n: int) -> list[np.ndarray]:
    """The first n frames of a clip as stored (BGR, no rotation applied)."""
    frames = []
    with av.open(str(clip)) as container:
        for frame in container.decode(container.streams.video[0]):
            frames.append(frame.to_ndarray(format="bgr24"))
            if len(frames) == n:
                break
    return frames


def make_video(clip: Path, out: Path, n: int = 6, *, rotation: int = 0, times: list[float] | None = None,
               size: tuple[int, int] | None = None, audio_tracks: int = 0, subtitles: bool = False,
               faststart: bool = False, matrix: list[int] | None = None) -> list[np.ndarray]:
    """Write the first `n` frames of `clip` to `out` (H.264) as a phone or a careless tool would:
    `rotation` stored as a display matrix (degrees counter-clockwise), or any display `matrix`
    (FFmpeg's 9 integers, e.g. a mirror), frames shown at `times`
    seconds, resized to `size` (width, height), `audio_tracks` copies of the clip's audio, an SRT
    subtitle stream (Matroska), moov first (`faststart`). Returns the frames written."""
    frames = source_frames(clip, n)
    if size is not None:
        frames = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
    times = times if times is not None else [i / 25 for i in range(len(frames))]
    end = times[-1] + 0.04
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(clip)) as src, av.open(str(out), "w", options=options) as dst:
        stream = dst.add_stream("libx264", rate=25)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv444p" if stream.width % 2 or stream.height % 2 else "yuv420p"
        stream.codec_context.time_base = fractions.Fraction(1, 90000)
        stream.options = {"threads": "1"}
        if rotation:
            stream.set_display_rotation(rotation)
        if matrix is not None:
            stream.set_display_matrix(matrix)
        audio_in = src.streams.audio[0] if audio_tracks else None
        audio_out = [dst.add_stream_from_template(audio_in) for _ in range(audio_tracks)]
        subs = dst.add_mux_stream("subrip") if subtitles else None  # SRT needs no encoder
        for image, t in zip(frames, times):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = int(round(t * 90000)), fractions.Fraction(1, 90000)
            for packet in stream.encode(frame):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
        if audio_in is not None:
            for packet in src.demux(audio_in):
                if packet.dts is None or float(packet.pts * packet.time_base) > end:
                    continue
                for out_stream in audio_out:
                    copy = av.Packet(bytes(packet))
                    copy.pts, copy.dts, copy.time_base = packet.pts, packet.dts, packet.time_base
                    copy.stream = out_stream
                    dst.mux(copy)
        if subs is not None:
            packet = av.Packet(b"hello")
            packet.pts = packet.dts = 0
            packet.duration = 100
            packet.time_base = fractions.Fraction(1, 1000)
            packet.stream = subs
            dst.mux(packet)
    return frames


def truncate(path: Path, keep: float) -> None:
    """Cut a file to `keep` of its bytes, as an interrupted copy or download leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def two_people(left: Path, right: Path, out: Path, scales: list[tuple[float, float]],
               change_sides_at: int | None = None) -> list[np.ndarray]:
    """A video of two people side by side (one frame per entry of `scales`: each person's size that
    frame), made from the first frames of two single-person clips; from frame `change_sides_at` on,
    the two change sides. Returns the frames written."""
    a, b = source_frames(left, len(scales)), source_frames(right, len(scales))
    frames = []
    for i, (fa, fb, (sa, sb)) in enumerate(zip(a, b, scales)):
        canvas = np.full((288, 720, 3), 128, np.uint8)
        if change_sides_at is not None and i >= change_sides_at:
            fa, fb = fb, fa
        for x0, image, scale in ((0, fa, sa), (360, fb, sb)):
            small = cv2.resize(image, (round(360 * scale), round(288 * scale)), interpolation=cv2.INTER_AREA)
            h, w = small.shape[:2]
            top, left_x = (288 - h) // 2, x0 + (360 - w) // 2
            canvas[top:top + h, left_x:left_x + w] = small
        frames.append(canvas)
    with av.open(str(out), "w") as dst:
        stream = dst.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 720, 288, "yuv420p"
        stream.options = {"threads": "1", "crf": "12"}
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return frames
