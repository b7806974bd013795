"""Media as players show them (issue 28): phone rotation tags, variable frame rates, odd sizes,
several audio and subtitle streams, HEIC/AVIF photos and truncated fast-start MP4s, all made
with PyAV from the real clips of ../shared."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from media_helpers import GRID_CLIP, make_video, source_frames, truncate
from synthswap.cli import main
from synthswap.media import MediaError, VideoWriter, check_video_whole, iter_video_frames, probe_video, read_image


@pytest.fixture(scope="module")
def shipped_swap():
    from synthswap.pretrained import shipped_model

    return shipped_model("swap")


def _convert(model: Path, video: Path, out: Path, *extra: str) -> int:
    return main(["swap", "convert", "--model", str(model), "--video", str(video), "--out", str(out), "--quiet",
                 "--threads", "1", *extra])


def _times(path: Path) -> list[float]:
    return [f.time_s for f in iter_video_frames(path)]


def _audio_packets(path: Path) -> list[list[bytes]]:
    with av.open(str(path)) as container:
        return [[bytes(p) for p in container.demux(s) if p.size] for s in container.streams.audio]


def test_a_phone_video_stored_sideways_is_read_and_written_upright(shared_data, tmp_path, shipped_swap, capsys):
    video = tmp_path / "portrait.mp4"
    make_video(shared_data / GRID_CLIP, video, 4, rotation=-90)  # as a phone held upright stores it
    stored = source_frames(video, 4)  # the frames as coded: 360 wide, the face lying on its side
    info = probe_video(video)
    assert (info.width, info.height, info.rotation) == (288, 360, 3)
    frames = list(iter_video_frames(video))
    assert frames[0].bgr.shape == (360, 288, 3)
    assert np.array_equal(frames[0].bgr, np.rot90(stored[0], -1))  # a quarter turn clockwise
    out = tmp_path / "out.mp4"
    assert _convert(shipped_swap, video, out) == 0
    summary = capsys.readouterr().out
    assert '"faces_swapped": 4' in summary and '"rotation_applied": 270' in summary
    out_info = probe_video(out)
    assert (out_info.width, out_info.height, out_info.rotation) == (288, 360, 0)  # upright in any player
    written = next(iter(iter_video_frames(out))).bgr.astype(np.float32)
    assert np.abs(written[:40, :40] - frames[0].bgr[:40, :40]).mean() < 6.0  # same way up: corners agree


# FFmpeg display matrices (16.16 fixed point): a mirror, and a phone's -90 degree tag then mirrored
# (av_display_matrix_flip negates the first column), as some editors and front cameras store them.
MIRROR = [-65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30]
MIRRORED_QUARTER_TURN = [0, 65536, 0, 65536, 0, 0, 0, 0, 1 << 30]


def test_a_mirrored_display_matrix_is_undone_as_players_do(shared_data, tmp_path, shipped_swap, capsys):
    """A mirror in the display matrix used to read as a half turn: the face came out upside down."""
    for name, matrix, shown in (("mirror", MIRROR, lambda f: f[:, ::-1]),
                                ("turned", MIRRORED_QUARTER_TURN, lambda f: np.rot90(f, -1)[:, ::-1])):
        video = tmp_path / f"{name}.mp4"
        make_video(shared_data / GRID_CLIP, video, 3, matrix=matrix)
        info = probe_video(video)
        assert info.mirrored and info.rotation == (0 if name == "mirror" else 3), name
        assert np.array_equal(next(iter(iter_video_frames(video))).bgr, shown(source_frames(video, 1)[0])), name
    out = tmp_path / "out.mp4"
    assert _convert(shipped_swap, tmp_path / "mirror.mp4", out) == 0
    summary = capsys.readouterr().out
    assert '"rotation_applied": 0,' in summary
    assert '"mirror_applied": true' in summary and '"faces_swapped": 3' in summary
    out_info = probe_video(out)
    assert not out_info.mirrored and out_info.rotation == 0  # plays the same way round in any player
    written = next(iter(iter_video_frames(out))).bgr.astype(np.float32)
    shown_first = next(iter(iter_video_frames(tmp_path / "mirror.mp4"))).bgr.astype(np.float32)
    assert np.abs(written[:40, :40] - shown_first[:40, :40]).mean() < 6.0  # the corners agree: not mirrored back


def test_variable_frame_rate_keeps_every_frame_time_and_the_sound(shared_data, tmp_path, shipped_swap):
    video = tmp_path / "vfr.mp4"
    times = [0.0, 0.04, 0.2, 0.23, 0.5, 0.52, 0.9]
    make_video(shared_data / GRID_CLIP, video, len(times), times=times, audio_tracks=1)
    out = tmp_path / "out.mp4"
    assert _convert(shipped_swap, video, out) == 0
    assert np.allclose(_times(out), times, atol=1e-3)  # not n / fps: the lips stay on the sound
    assert _audio_packets(out) == _audio_packets(video)


def test_odd_frame_sizes_convert_and_evaluate_crops_back(shared_data, tmp_path, shipped_swap, capsys, extracted):
    from synthswap.metrics.evaluate import evaluate

    video = tmp_path / "odd.mp4"
    made = make_video(shared_data / GRID_CLIP, video, 3, size=(361, 287))
    out = tmp_path / "out.mkv"
    assert _convert(shipped_swap, video, out) == 0
    assert '"encoded_size": "362x288"' in capsys.readouterr().out
    written = next(iter(iter_video_frames(out))).bgr
    assert written.shape == (288, 362, 3)
    assert np.abs(written[:, 361].astype(float) - written[:, 360]).mean() < 2.0  # the added column repeats the edge
    assert np.abs(written[:30, :30].astype(float) - made[0][:30, :30]).mean() < 6.0
    result = evaluate(out, video, extracted("videos/people/d6.mp4", size=64, max_frames=2), dlib_every=0, fid=False,
                      progress=False)
    assert len(result.frames) == 3 and all(f.output_face for f in result.frames)


def test_every_audio_and_subtitle_stream_is_kept_or_reported(shared_data, tmp_path, shipped_swap, capsys):
    video = tmp_path / "tracks.mkv"
    make_video(shared_data / GRID_CLIP, video, 5, audio_tracks=2, subtitles=True)
    out_mkv, out_mp4 = tmp_path / "out.mkv", tmp_path / "out.mp4"
    assert _convert(shipped_swap, video, out_mkv) == 0
    assert [s.kind for s in probe_video(out_mkv).streams] == ["audio", "audio", "subtitle"]
    assert _audio_packets(out_mkv) == _audio_packets(video)
    capsys.readouterr()
    assert _convert(shipped_swap, video, out_mp4) == 0
    summary = capsys.readouterr().out
    assert [s.kind for s in probe_video(out_mp4).streams] == ["audio", "audio"]
    assert "stream 3 (subtitle srt): a .mp4 file cannot hold srt; write a .mkv to keep it" in summary


def test_video_writer_cuts_the_sound_at_the_last_frame_written(shared_data, tmp_path):
    src = shared_data / GRID_CLIP
    out = tmp_path / "cut.mp4"
    with VideoWriter(out, 360, 288, probe_video(src).fps, audio_source=src, audio_until_s=0.4) as writer:
        for frame in iter_video_frames(src, max_frames=10):
            writer.write(frame.bgr, frame.time_s)
    with av.open(str(out)) as container:
        audio = container.streams.audio[0]
        last = max(float(p.pts * p.time_base) for p in container.demux(audio) if p.size)
    assert 0.3 < last <= 0.4


def test_heic_and_avif_photos_decode(shared_data, tmp_path):
    from PIL import Image

    photo = next(iter(sorted((shared_data / "faces/utkface").glob("*.jpg"))))
    reference = read_image(photo).astype(np.float32)
    with Image.open(photo) as img:
        img.save(tmp_path / "me.heic", quality=95)
        img.save(tmp_path / "me.avif", quality=95)
    for name in ("me.heic", "me.avif"):
        decoded = read_image(tmp_path / name)
        assert decoded.shape == reference.shape
        assert np.abs(decoded.astype(np.float32) - reference).mean() < 8.0, name


def test_a_refused_file_lists_the_accepted_formats(tmp_path, capsys):
    notes = tmp_path / "face.gif"
    notes.write_bytes(b"GIF89a")
    assert main(["extract", str(notes), "--out", str(tmp_path / "set"), "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "not an image or video extension (.gif)" in err and "heic" in err and "mp4" in err
    assert not (tmp_path / "set").exists()


def test_a_truncated_fast_start_mp4_is_refused_before_any_stage(shared_data, tmp_path, capsys):
    video = tmp_path / "cut.mp4"
    make_video(shared_data / GRID_CLIP, video, 40, faststart=True)
    check_video_whole(video)  # whole, it passes
    truncate(video, 0.6)
    assert probe_video(video).duration_s == pytest.approx(1.6)  # the header still claims every frame
    with pytest.raises(MediaError, match="truncated: its header lists 40 frames"):
        check_video_whole(video)
    photo = tmp_path / "me.png"
    from synthswap.media import write_png

    write_png(photo, next(iter(iter_video_frames(shared_data / GRID_CLIP, max_frames=1))).bgr)
    out = tmp_path / "out.mp4"
    rc = main(["run", "--subject", str(photo), "--video", str(video), "--out", str(out), "--quiet",
               "--engine", "warp", "--synthetic", "0", "--swap-steps", "2"])
    assert rc == 1
    assert "truncated" in capsys.readouterr().err
    assert not (tmp_path / "out_work").exists() and not out.exists()


def test_verify_refuses_a_png_declaring_gigapixels_from_its_header(tmp_path, capsys):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    bomb = tmp_path / "bomb.png"  # 1.8 KB on disk, 60000 x 60000 pixels declared
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)) +
                     chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b""))
    assert main(["verify", str(bomb)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "over the limit of 50" in err and "Traceback" not in err
