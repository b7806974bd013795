"""Nothing of the user's is lost by `run` and the trainers: refused requests touch nothing,
interrupted training is not done, and one process writes an output at a time."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synthswap.cli import main

GRID_CLIP = "videos/grid/bbaf2n.mpg"


def _digest(path: Path) -> dict[str, str]:
    """sha256 of every file under `path` (or of the file): 'byte-identical' made checkable."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _env() -> dict[str, str]:
    env = dict(os.environ, GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
    return env


@pytest.fixture
def inputs(shared_data, tmp_path):
    """A copy of a real destination clip and a folder with one real subject photo (a d6 frame)."""
    from synthswap.media import iter_video_frames, write_png

    video = tmp_path / "dest.mpg"
    shutil.copyfile(shared_data / GRID_CLIP, video)
    photos = tmp_path / "photos"
    frame = next(iter(iter_video_frames(shared_data / "videos/people/d6.mp4", max_frames=1)))
    write_png(photos / "me.png", frame.bgr)
    return video, photos


def _run(video, subject, out, *extra):
    return main(["run", "--subject", str(subject), "--video", str(video), "--out", str(out), "--engine", "warp",
                 "--synthetic", "0", "--swap-init", "none", "--swap-steps", "2", "--batch-size", "2", "--quiet",
                 "--swap-id-weight", "0", "--swap-resolution", "64",  # the mechanics, not the default model
                 *extra])


def test_refused_run_requests_leave_every_user_file_byte_identical(inputs, tmp_path, capsys):
    video, photos = inputs
    folder = tmp_path / "results"
    (folder / "notes.txt").parent.mkdir()
    (folder / "notes.txt").write_text("my notes")
    foreign = tmp_path / "other.mp4"
    shutil.copyfile(video, foreign)
    before = {**_digest(video), **_digest(photos), **_digest(folder), **_digest(foreign)}
    cases = [
        ((video, photos, video), "is (or is inside) the input"),  # --out is the destination video
        ((video, photos, folder), "is a folder"),  # --out is a folder with the user's files in it
        ((video, photos, tmp_path / "x.mp4", "--work", str(photos.parent)), "overlaps the input"),
        ((video, photos, photos / "out.mp4"), "inside) the input"),  # the next run would read it as a photo
        ((video, photos, foreign), "not written by synthswap"),  # a video synthswap did not make
        ((video, photos, tmp_path / "y.mp4", "--device", "gpu"), "--device must be auto, cpu, cuda or cuda:N"),
    ]
    for args, message in cases:
        # a refused setting exits 2 (a usage error), a refused path 1
        assert _run(*args) == (2 if "--device" in args else 1)
        err = capsys.readouterr().err
        assert message in err and err.count("error:") == 1, err
    after = {**_digest(video), **_digest(photos), **_digest(folder), **_digest(foreign)}
    assert after == before
    assert not (tmp_path / "x_work").exists() and not (tmp_path / "y_work").exists()


@pytest.mark.slow
def test_ctrl_c_during_run_swap_training_is_resumed_by_the_same_command(inputs, tmp_path):
    video, photos = inputs
    out = tmp_path / "out.mp4"
    cmd = [sys.executable, "-m", "synthswap", "run", "--subject", str(photos), "--video", str(video),
           "--out", str(out), "--engine", "warp", "--synthetic", "0", "--swap-init", "none", "--every-n", "5",
           "--swap-steps", "30", "--batch-size", "2", "--swap-id-weight", "0", "--swap-resolution", "64", "--quiet"]
    log = tmp_path / "out_work" / "swap" / "log.csv"
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not (log.is_file() and len(log.read_text().splitlines()) >= 2):
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr.decode()[-2000:]
    assert "run the same command again to resume" in stderr.decode()
    marker = json.loads((tmp_path / "out_work" / ".swap.stage.json").read_text())
    assert "pending" in marker and "done" not in marker  # interrupted is not done
    assert not out.exists()  # nothing after the interrupted stage ran
    stopped_at = json.loads((tmp_path / "out_work" / "swap" / "model.json").read_text())["steps"]
    assert 1 <= stopped_at < 30

    done = subprocess.run(cmd, env=_env(), capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert "[swap train] resuming" in done.stdout.decode()
    meta = json.loads((tmp_path / "out_work" / "swap" / "model.json").read_text())
    assert meta["steps"] == 30 and [h["start_step"] for h in meta["history"]] == [0, stopped_at]
    assert out.is_file()


@pytest.mark.slow
def test_two_swap_trainings_into_one_folder_leave_one_model_and_one_lock_error(extracted, tmp_path):
    a = extracted("videos/people/d6.mp4", size=64, max_frames=8, every_n=20)
    b = extracted("videos/people/d9.mp4", size=64, max_frames=8, every_n=20)
    out = tmp_path / "model"
    cmd = [sys.executable, "-m", "synthswap", "swap", "train", "--src", str(a), "--dst", str(b), "--out", str(out),
           "--steps", "6", "--batch-size", "2", "--threads", "1", "--quiet"]
    first = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (out / ".synthswap.lock").is_file():
            time.sleep(0.05)
        first.send_signal(signal.SIGSTOP)  # holding the lock, certainly still writing
        second = subprocess.run(cmd, env=_env(), capture_output=True, timeout=120)
        first.send_signal(signal.SIGCONT)
        _, first_err = first.communicate(timeout=180)
    finally:
        if first.poll() is None:
            first.kill()
    assert second.returncode == 2 and f"locked by pid {first.pid}" in second.stderr.decode()
    assert first.returncode == 0, first_err.decode()[-2000:]
    meta = json.loads((out / "model.json").read_text())
    assert meta["steps"] == 6 and len(meta["history"]) == 1
    from synthswap.swap.loading import load_model

    load_model(out)


def test_two_runs_in_one_folder_keep_their_own_reports_and_the_users_files(shared_data, tmp_path):
    """Every file `run` writes beside --out is named after it: the user's report.html and
    report_synthetic.png stay, and a second --out in the same folder does not rewrite the first's report."""
    from media_helpers import make_video
    from synthswap.media import write_png, iter_video_frames

    video = tmp_path / "dest.mp4"
    make_video(shared_data / GRID_CLIP, video, 6)
    photo = tmp_path / "me.png"
    write_png(photo, next(iter(iter_video_frames(shared_data / "videos/people/d6.mp4", max_frames=1))).bgr)
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "report.html").write_text("<p>my own report</p>")
    (folder / "report_synthetic.png").write_bytes(photo.read_bytes())
    mine = _digest(folder)
    assert _run(video, photo, folder / "a.mp4") == 0
    first = _digest(folder / "a_report.html")
    assert _run(video, photo, folder / "b.mp4") == 0
    assert {k: v for k, v in _digest(folder).items() if k in mine} == mine
    assert _digest(folder / "a_report.html") == first
    assert "b.mp4" in (folder / "b_report.html").read_text()
    assert (folder / "b_report_frames.png").is_file() and (folder / "a_report_frames.png").is_file()
