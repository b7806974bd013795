"""Facesets are closed worlds with one writer; extraction refuses its bad arguments before writing.

Everything goes through the real CLI entry point (in this process, or as a separate
process where two runs, a kill or another user are the point), on real frames of d0.mp4.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from synthswap.cli import main
from synthswap.faceset import Faceset, FacesetError, FacesetWriter
from synthswap.locking import LockError, exclusive_lock
from synthswap.media import iter_video_frames

SRC = Path(__file__).resolve().parents[1] / "src"
D0_FRAMES = 78


@pytest.fixture
def faceset(extracted, tmp_path) -> Path:
    """A private copy of a 4-face, 64 px faceset of d0.mp4, to damage at will."""
    out = tmp_path / "fs"
    shutil.copytree(extracted("videos/people/d0.mp4", size=64, max_frames=4), out, symlinks=True)
    return out


@pytest.fixture
def d0(shared_data, tmp_path) -> Path:
    """A copy of d0.mp4 (78 frames) that a test may hand out as a user's own file."""
    copy = tmp_path / "d0.mp4"
    shutil.copyfile(shared_data / "videos/people/d0.mp4", copy)
    return copy


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file under the roots (symlinks not followed) with the hash of its bytes. The lock
    file is left out: a writer that opens a faceset and then refuses it has written its pid there."""
    out = {}
    for root in roots:
        for path in sorted([root, *root.rglob("*")] if root.is_dir() else [root]):
            if path.name == ".synthswap.lock":
                continue
            if path.is_symlink():
                out[str(path)] = "-> " + os.readlink(path)
            elif path.is_file():
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def cli(capsys, *args) -> tuple[int, str]:
    code = main([*map(str, args)])
    err = capsys.readouterr().err
    return code, err


def assert_one_error_line(err: str, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def edit_rows(fs: Path, edit) -> None:
    manifest = fs / "faces.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    edit(rows)
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))


def synthesize_from(capsys, fs: Path, out: Path) -> tuple[int, str]:
    """The cheapest command that reads a faceset's images: warping its photos."""
    return cli(capsys, "synthesize", "--engine", "warp", "--faces", fs, "--n", "1", "--out", out, "--quiet")


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG header claiming width x height pixels, with a tiny body."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def untouched_since(path: Path) -> None:
    """Set the access time before the modification time: the next read of the file (relatime) moves it."""
    st = path.stat()
    os.utime(path, ns=(st.st_mtime_ns - 10**9, st.st_mtime_ns))


def was_read(path: Path) -> bool:
    st = path.stat()
    return st.st_atime_ns > st.st_mtime_ns


def rows_match_their_pngs(fs: Path, video: Path) -> None:
    """Every row's crop is its source frame warped by its affine: no PNG belongs to another row."""
    faceset = Faceset.open(fs)
    frames = {f.index: f.bgr for f in iter_video_frames(video)}
    for face in faceset:
        img = faceset.read_image(face)
        recrop = cv2.warpAffine(frames[face.frame_index], face.affine_array(), (faceset.size, faceset.size),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        assert np.abs(recrop.astype(int) - img.astype(int)).mean() < 2.0, face.id
    assert len({f.key for f in faceset}) == len(faceset)
    assert len(list((fs / "faces").glob("*.png"))) == len(list((fs / "masks").glob("*.png"))) == len(faceset)


def extract_process(*args, prefix: list[str] = ()) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(SRC), GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen([*prefix, sys.executable, "-m", "synthswap", "extract", "--quiet", *map(str, args)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_rows(fs: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    manifest = fs / "faces.jsonl"
    deadline = time.monotonic() + timeout
    while not (manifest.exists() and manifest.read_bytes().count(b"\n") >= n):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"no {n} rows after {timeout} s"
        time.sleep(0.01)


# --- closed world -------------------------------------------------------------------------------


@pytest.mark.parametrize("escape", ["absolute", "dotdot", "symlink"])
def test_rows_escaping_the_faceset_are_refused_and_the_outside_file_never_read(tmp_path, capsys, faceset, escape):
    outside = tmp_path / "private.png"
    shutil.copyfile(faceset / "faces/000001.png", outside)  # a real face: reading it would "work"
    control = tmp_path / "control.png"
    shutil.copyfile(outside, control)
    untouched_since(control)
    control.read_bytes()
    if not was_read(control):
        pytest.skip("this filesystem does not record reads (noatime)")
    if escape == "absolute":
        edit_rows(faceset, lambda rows: rows[0].update(image=str(outside)))
    elif escape == "dotdot":
        edit_rows(faceset, lambda rows: rows[0].update(image="../private.png"))
    else:
        (faceset / "faces/000000.png").unlink()
        (faceset / "faces/000000.png").symlink_to(outside)
    before = snapshot(faceset, outside)
    untouched_since(outside)

    code, err = synthesize_from(capsys, faceset, tmp_path / "synth")
    reason = {"absolute": "is absolute", "dotdot": "climbs out", "symlink": "outside the faceset"}[escape]
    assert code != 0
    assert_one_error_line(err, "row 000000", reason)
    assert not was_read(outside)
    assert snapshot(faceset, outside) == before
    assert not (tmp_path / "synth").exists()


@pytest.mark.parametrize("sub", ["faces", "masks", "faces.jsonl"])
def test_a_symlinked_subfolder_is_refused_for_writing_and_nothing_is_written_outside(tmp_path, capsys, faceset,
                                                                                  d0, sub):
    elsewhere = tmp_path / "elsewhere"
    shutil.move(faceset / sub, elsewhere)
    (faceset / sub).symlink_to(elsewhere)
    before = snapshot(faceset, elsewhere, d0)

    code, err = cli(capsys, "extract", "--quiet", d0, "--out", faceset, "--size", "64", "--max-frames", "8")
    assert code == 1
    assert_one_error_line(err, f"{sub}: is a symbolic link")
    assert snapshot(faceset, elsewhere, d0) == before


def test_an_image_over_the_pixel_limit_in_a_row_is_refused_from_its_header(tmp_path, capsys, faceset):
    # 12000 x 12000 = 144 megapixels, small enough for OpenCV to decode (430 MB) had it been asked to.
    (faceset / "faces/000002.png").write_bytes(png_header_only(12000, 12000))
    code, err = synthesize_from(capsys, faceset, tmp_path / "synth")
    assert code != 0
    assert_one_error_line(err, "row 000002", "144 megapixels, over the limit of 50")


@pytest.mark.parametrize("content, message", [
    (b"[1, 2, 3]", "a JSON list, not an object"),
    (bytes(range(256)) * 4, "corrupt"),
    (b'{"format_version": 1, "size": -5, "template": {"name": "synthswap-5pt-v1"}}', "size -5"),
])
def test_a_corrupt_faceset_json_gives_one_error_line(capsys, faceset, d0, content, message):
    (faceset / "faceset.json").write_bytes(content)
    before = snapshot(faceset, d0)
    code, err = cli(capsys, "extract", "--quiet", d0, "--out", faceset, "--size", "64")
    assert code == 1
    assert_one_error_line(err, "faceset.json", message)
    assert snapshot(faceset, d0) == before
    with pytest.raises(FacesetError, match=message):
        Faceset.open(faceset)


@pytest.mark.parametrize("damage, message", [
    (lambda rows: rows[1].update(id="abc"), "id 'abc' is not a string of digits"),
    (lambda rows: rows[1].update(id=7), "id 7 is not a string of digits"),
    (lambda rows: rows[1].pop("landmarks"), "missing landmarks"),
    (lambda rows: rows[1].update(landmarks=[]), "landmarks must be 478 x 2"),
    (lambda rows: rows[1].update(landmarks=[[1.0, 2.0]] * 10), "landmarks must be 478 x 2"),
    (lambda rows: rows[1].update(mask="masks/./000001.png"), "is not a normalised relative path"),
    (lambda rows: rows.__setitem__(1, [1, 2]), "a JSON list, not an object"),
])
def test_bad_rows_give_one_error_line_naming_the_row(capsys, faceset, d0, damage, message):
    edit_rows(faceset, damage)
    before = snapshot(faceset, d0)
    code, err = cli(capsys, "extract", "--quiet", d0, "--out", faceset, "--size", "64")
    assert code == 1
    assert_one_error_line(err, "faces.jsonl:2", message)
    assert snapshot(faceset, d0) == before


# --- one writer ---------------------------------------------------------------------------------


def test_the_lock_names_its_holder_and_dies_with_it(tmp_path):
    with exclusive_lock(tmp_path, what="model folder"):
        with pytest.raises(LockError, match=f"this model folder is locked by pid {os.getpid()}"):
            exclusive_lock(tmp_path, what="model folder")
    exclusive_lock(tmp_path).release()  # released on leaving the block
    # A holder killed with SIGKILL leaves its pid in the file but does not hold the lock.
    code = "import sys, time; from synthswap.locking import exclusive_lock; exclusive_lock(sys.argv[1]); " \
           "print('held', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=dict(os.environ, PYTHONPATH=str(SRC)),
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(LockError, match=f"locked by pid {holder.pid}"):
        exclusive_lock(tmp_path)
    holder.kill()
    holder.wait()
    assert (tmp_path / ".synthswap.lock").read_text().strip() == str(holder.pid)
    exclusive_lock(tmp_path).release()


def test_a_writer_that_finds_the_faceset_created_meanwhile_gets_the_lock_error(tmp_path, faceset):
    source = Faceset.open(faceset)
    face = source.faces[0]
    row = {k: getattr(face, k) for k in ("source", "frame_index", "time_s", "affine", "landmarks", "expression",
                                         "pose", "sharpness", "identity")}
    template = source.info["template"]
    first = FacesetWriter(tmp_path / "new", 64, template)
    second = FacesetWriter(tmp_path / "new", 64, template)  # both saw no folder: the creation race
    with first:
        first.add(source.read_image(face), source.read_mask(face), **row)
        with pytest.raises(FacesetError, match=f"locked by pid {os.getpid()}"):
            second.add(source.read_image(face), source.read_mask(face), **dict(row, frame_index=99))
    assert [f.frame_index for f in Faceset.open(tmp_path / "new")] == [face.frame_index]


@pytest.mark.slow
def test_two_extracts_into_one_new_faceset_leave_one_valid_faceset_and_one_lock_error(tmp_path, d0):
    out = tmp_path / "fs"
    first = extract_process(d0, "--out", out, "--size", "64")
    wait_for_rows(out, 1, first)
    os.kill(first.pid, signal.SIGSTOP)  # hold it mid-run, lock held, so the second surely overlaps
    try:
        second = extract_process(d0, "--out", out, "--size", "64")
        _, err = second.communicate(timeout=120)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.returncode == 1
    assert_one_error_line(err, f"this faceset is locked by pid {first.pid}")
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert len(Faceset.open(out)) == D0_FRAMES
    rows_match_their_pngs(out, d0)


@pytest.mark.slow
def test_kill_9_mid_extraction_leaves_a_loadable_faceset_and_a_rerun_completes_it(tmp_path, capsys, d0):
    out = tmp_path / "fs"
    proc = extract_process(d0, "--out", out, "--size", "64")
    wait_for_rows(out, 10, proc)
    proc.kill()
    proc.wait()
    kept = len(Faceset.open(out))
    assert 10 <= kept < D0_FRAMES
    # A kill in the middle of writing a row leaves its first half: readers must not count it.
    with open(out / "faces.jsonl", "ab") as fh:
        fh.write(b'{"id":"000099","image":"faces/000099.png","landmarks":[[1.5,')
    assert len(Faceset.open(out)) == kept

    code, err = cli(capsys, "extract", "--quiet", d0, "--out", out, "--size", "64")
    assert code == 0, err
    lines = (out / "faces.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1])  # the torn half row is gone
    assert len(Faceset.open(out)) == D0_FRAMES
    rows_match_their_pngs(out, d0)


# --- extraction's own bad arguments -------------------------------------------------------------


@pytest.fixture
def user_files(tmp_path, d0) -> Path:
    """A user's folder: the video and two photos from it."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for frame in iter_video_frames(d0, every_n=30, max_frames=2):
        cv2.imwrite(str(photos / f"frame{frame.index}.png"), frame.bgr)
    return tmp_path


@pytest.mark.parametrize("args, message", [
    (["d0.mp4", "--out", "d0.mp4"], "overlaps the input"),
    (["photos", "--out", "photos"], "overlaps the input"),
    (["photos", "--out", "photos/faceset"], "overlaps the input"),
    (["photos/frame0.png", "--out", "photos"], "overlaps the input"),
    (["d0.mp4", "--out", "fs", "--max-frames", "0"], "--max-frames must be at least 1"),
    (["d0.mp4", "--out", "fs", "--max-frames", "-3"], "--max-frames must be at least 1"),
    (["d0.mp4", "--out", "fs", "--every-n", "0"], "--every-n must be at least 1"),
    (["d0.mp4", "--out", "fs", "--size", "16"], "--size must be between 32 and 1024"),
    (["d0.mp4", "--out", "fs", "--size", "-5"], "--size must be between 32 and 1024, not -5"),
    (["d0.mp4", "--out", "fs", "--every-n", "-2"], "--every-n must be at least 1, not -2"),
    (["d0.mp4", "--out", "fs", "--size", "4096"], "--size must be between 32 and 1024"),
    (["d0.mp4", "--out", "fs", "--max-pixels", "0"], "--max-pixels must be at least 1"),
])
def test_bad_arguments_are_refused_before_anything_is_written(capsys, monkeypatch, user_files, args, message):
    monkeypatch.chdir(user_files)
    before = snapshot(user_files)
    code, err = cli(capsys, "extract", "--quiet", *args)
    assert code == 2
    assert_one_error_line(err, message)
    assert snapshot(user_files) == before  # inputs byte-identical, nothing created


def test_an_out_folder_that_is_not_a_faceset_is_refused_before_anything_is_written(capsys, user_files):
    notes = user_files / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("my own file\n")
    before = snapshot(user_files)
    code, err = cli(capsys, "extract", "--quiet", user_files / "d0.mp4", "--out", notes)
    assert code == 1
    assert_one_error_line(err, "exists and is not a faceset")
    assert snapshot(user_files) == before


def test_a_read_only_output_gives_an_error_line(tmp_path, faceset, d0):
    prefix = []
    if os.geteuid() == 0:  # root writes anywhere: run it without the capabilities that let it
        if shutil.which("setpriv") is None:
            pytest.skip("running as root and setpriv (util-linux) is missing to drop CAP_DAC_OVERRIDE")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    folders = [readonly, faceset, faceset / "faces", faceset / "masks"]
    for folder in folders:
        folder.chmod(0o555)
    before = snapshot(tmp_path)
    try:
        for out in (readonly / "fs", faceset):
            proc = extract_process(d0, "--out", out, "--size", "64", prefix=prefix)
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 1, err
            assert_one_error_line(err, str(out), "is read-only")
        assert snapshot(tmp_path) == before
    finally:
        for folder in folders:
            folder.chmod(0o755)
