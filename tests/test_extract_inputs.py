"""Extraction's handling of every kind of input, good and bad, through the real CLI entry point."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from synthswap.cli import main
from synthswap.extract import extract
from synthswap.faces.pipeline import FaceAnalyzer
from synthswap.faceset import Faceset
from synthswap.media import iter_video_frames


@pytest.fixture(scope="module")
def face_rgb(shared_data) -> np.ndarray:
    """A real frontal face: frame 30 of d3.mp4, as RGB."""
    frame = next(f for f in iter_video_frames(shared_data / "videos/people/d3.mp4") if f.index == 30)
    return np.ascontiguousarray(frame.bgr[:, :, ::-1])


def run_cli(capsys, *args) -> tuple[int, str]:
    code = main(["extract", "--quiet", *map(str, args)])
    return code, capsys.readouterr().err


def only_face(out: Path):
    faceset = Faceset.open(out)
    assert len(faceset) == 1
    return faceset.faces[0]


def test_missing_path_is_a_usage_error(tmp_path, capsys):
    code, err = run_cli(capsys, tmp_path / "nope.jpg", "--out", tmp_path / "fs")
    assert code == 2 and "no such file" in err
    assert not (tmp_path / "fs").exists()


@pytest.mark.parametrize("name, content, message", [
    ("empty.jpg", b"", "empty"),
    ("text.jpg", b"this is not an image\n" * 20, "not a readable image"),
    ("text.png", b"\x89PNG but not really" * 10, "not a readable image"),
    ("text.mp4", b"not a video at all\n" * 50, "not a readable video"),
])
def test_unreadable_file_fails_cleanly(tmp_path, capsys, name, content, message):
    bad = tmp_path / name
    bad.write_bytes(content)
    code, err = run_cli(capsys, bad, "--out", tmp_path / "fs")
    assert code == 1 and message in err
    assert not (tmp_path / "fs").exists()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image_fails_cleanly(tmp_path, capsys, face_rgb, fmt):
    whole = tmp_path / f"face.{fmt.lower()}"
    Image.fromarray(face_rgb).save(whole, fmt)
    cut = tmp_path / f"cut.{fmt.lower()}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    code, err = run_cli(capsys, cut, "--out", tmp_path / "fs")
    assert code == 1 and "corrupt or truncated" in err
    assert not (tmp_path / "fs").exists()


def test_truncated_mp4_fails_cleanly(tmp_path, capsys, shared_data):
    src = (shared_data / "videos/people/d0.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(src[: len(src) // 2])  # the index (moov) is at the end: the file cannot be opened
    code, err = run_cli(capsys, cut, "--out", tmp_path / "fs")
    assert code == 1 and "not a readable video" in err
    assert not (tmp_path / "fs").exists()


def test_truncated_video_keeps_the_good_frames_and_says_so(tmp_path, capsys, shared_data):
    import av

    # Remux d0.mp4 with its index first (faststart), then cut it: it opens, decodes, then breaks off.
    whole = tmp_path / "faststart.mp4"
    with av.open(str(shared_data / "videos/people/d0.mp4")) as src, \
            av.open(str(whole), "w", options={"movflags": "faststart"}) as dst:
        out_stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = out_stream
                dst.mux(packet)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    code, err = run_cli(capsys, cut, "--out", tmp_path / "fs")
    assert code == 1 and "truncated" in err
    faceset = Faceset.open(tmp_path / "fs")  # the frames before the cut make a valid faceset
    assert 10 < len(faceset) < 78


def test_image_without_face_is_reported_and_skipped(tmp_path, capsys, face_rgb):
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((300, 400, 3), 180, np.uint8)).save(blank)
    code, err = run_cli(capsys, blank, "--out", tmp_path / "fs")
    assert code == 1 and "no face found" in err
    assert not (tmp_path / "fs").exists()

    good = tmp_path / "face.png"
    Image.fromarray(face_rgb).save(good)
    code, err = run_cli(capsys, blank, good, "--out", tmp_path / "fs")
    assert code == 0 and f"no face found: {blank}" in err
    assert Path(only_face(tmp_path / "fs").source).name == "face.png"


def test_absurdly_large_image_is_refused_before_decoding(tmp_path, capsys):
    # A valid PNG header claiming 100000 x 100000 pixels (30 GB decoded), with a tiny body.
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    huge = tmp_path / "huge.png"
    huge.write_bytes(png)
    code, err = run_cli(capsys, huge, "--out", tmp_path / "fs")
    assert code == 1 and "megapixels" in err
    assert not (tmp_path / "fs").exists()


def _roll(face) -> float:
    return face.pose["roll"]


def test_grayscale_rgba_16bit_and_exif_rotated_images_are_handled(tmp_path, capsys, face_rgb):
    variants = tmp_path / "in"
    variants.mkdir()
    Image.fromarray(face_rgb).save(variants / "colour.png")
    gray = np.asarray(Image.fromarray(face_rgb).convert("L"))
    Image.fromarray(gray).save(variants / "gray.png")
    rgba = np.dstack([face_rgb, np.full(face_rgb.shape[:2], 255, np.uint8)])
    rgba[:40] = 0  # a fully transparent band must not confuse anything
    Image.fromarray(rgba, "RGBA").save(variants / "rgba.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(variants / "gray16.png")
    # Pixels stored rotated 90 degrees counter-clockwise, with EXIF orientation 6 (display: rotate clockwise).
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(face_rgb).transpose(Image.Transpose.ROTATE_90).save(variants / "rotated.jpg", exif=exif,
                                                                        quality=95)
    code, err = run_cli(capsys, variants, "--out", tmp_path / "fs", "--size", "128")
    assert code == 0, err
    faces = {Path(f.source).stem: f for f in Faceset.open(tmp_path / "fs")}
    assert set(faces) == {"colour", "gray", "rgba", "gray16", "rotated"}
    ref = faces["colour"]
    for name, face in faces.items():
        assert abs(_roll(face) - _roll(ref)) < 5, f"{name}: roll {_roll(face)} vs {_roll(ref)}"
        assert np.abs(face.landmarks_array() - ref.landmarks_array()).mean() < 2.0, name
    crops = {n: cv2.imread(str(tmp_path / "fs" / f.image), cv2.IMREAD_GRAYSCALE).astype(float)
             for n, f in faces.items()}
    # 16-bit data is scaled to 8 bits, not clipped to white or black.
    assert abs(crops["gray16"].mean() - crops["gray"].mean()) < 2


@pytest.mark.slow
def test_rerun_and_interruption_leave_a_valid_faceset_without_duplicates(tmp_path, shared_data, monkeypatch):
    video = shared_data / "videos/people/d0.mp4"
    calls = {"n": 0}
    real_analyze = FaceAnalyzer.analyze

    def interrupted(self, bgr, **kwargs):
        calls["n"] += 1
        if calls["n"] > 30:
            raise KeyboardInterrupt
        return real_analyze(self, bgr, **kwargs)

    monkeypatch.setattr(FaceAnalyzer, "analyze", interrupted)
    with pytest.raises(KeyboardInterrupt):
        extract([video], tmp_path / "fs", size=64, progress=False)
    assert len(Faceset.open(tmp_path / "fs")) == 30  # everything analysed before Ctrl-C was kept
    monkeypatch.setattr(FaceAnalyzer, "analyze", real_analyze)

    summary = extract([video], tmp_path / "fs", size=64, progress=False)
    assert summary.duplicates == 30 and summary.faces_added == 48
    summary = extract([video], tmp_path / "fs", size=64, progress=False)
    assert summary.faces_added == 0
    faceset = Faceset.open(tmp_path / "fs")
    assert len(faceset) == 78 and len({f.key for f in faceset}) == 78
    assert len(list((tmp_path / "fs" / "faces").glob("*.png"))) == 78

    with pytest.raises(Exception, match="size 64"):
        extract([video], tmp_path / "fs", size=128, progress=False)


def test_reference_photo_picks_the_matching_face(tmp_path, capsys, shared_data, face_rgb):
    other = next(f for f in iter_video_frames(shared_data / "videos/people/d9.mp4") if f.index == 30).bgr
    subject = cv2.resize(face_rgb[:, :, ::-1], (256, 256))  # the subject is the smaller face
    canvas = np.full((512, 800, 3), 90, np.uint8)
    canvas[:other.shape[0], :512] = other[:, :512]
    canvas[100:356, 530:786] = subject
    cv2.imwrite(str(tmp_path / "two.png"), canvas)
    ref = next(f for f in iter_video_frames(shared_data / "videos/people/d3.mp4") if f.index == 200).bgr
    cv2.imwrite(str(tmp_path / "ref.png"), ref)

    assert run_cli(capsys, tmp_path / "two.png", "--out", tmp_path / "largest")[0] == 0
    assert run_cli(capsys, tmp_path / "two.png", "--out", tmp_path / "ref", "--reference", tmp_path / "ref.png")[0] == 0
    chosen_largest = only_face(tmp_path / "largest").affine_array()
    chosen_ref = only_face(tmp_path / "ref").affine_array()
    # The affine maps frame to crop: the matched face's crop centre comes from the right half.
    centre = lambda a: cv2.invertAffineTransform(a) @ np.array([64, 64, 1.0])  # noqa: E731
    assert centre(chosen_largest)[0] < 512 < centre(chosen_ref)[0]
