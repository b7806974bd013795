"""Full disks and killed processes (issue 28): one error line naming the stage and the path, no
temporary file left by a full disk or SIGTERM, and what kill -9 leaves swept by the next writer.

The full disk is a real one: a 100-150 KB tmpfs mounted in a user namespace (`unshare -rm`);
those tests skip where the kernel does not allow it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synthswap.pretrained import shipped_model

GRID_CLIP = "videos/grid/bbaf2n.mpg"
SRC = Path(__file__).resolve().parents[1] / "src"


def _env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1", GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="2",
                SYNTHSWAP_KEY_DIR=str(tmp_path / "keys"))


def _on_a_full_disk(tmp_path: Path, size: str, args: list[str]) -> tuple[int, str, list[str]]:
    """Run `synthswap ARGS` in tmp_path with tmp_path/out a tmpfs of `size`; (exit code, stderr, files left in out)."""
    (tmp_path / "out").mkdir()
    script = (f"mount -t tmpfs -o size={size} tmpfs out || exit 99\n"
              f"{sys.executable} -m synthswap \"$@\" 2>err.txt; rc=$?\n"
              "find out -mindepth 1 | sort > left.txt; exit $rc\n")
    try:
        rc = subprocess.run(["unshare", "-rm", "bash", "-c", script, "bash", *args], cwd=tmp_path, env=_env(tmp_path),
                            timeout=600).returncode
    except FileNotFoundError:
        pytest.skip("no unshare(1) to mount a small tmpfs")
    if rc == 99 or not (tmp_path / "left.txt").exists():
        pytest.skip("this kernel does not let an unprivileged user namespace mount a tmpfs")
    return rc, (tmp_path / "err.txt").read_text(), (tmp_path / "left.txt").read_text().split()


def test_a_full_disk_in_convert_is_one_line_and_leaves_nothing(shared_data, tmp_path):
    rc, err, left = _on_a_full_disk(tmp_path, "100k", [
        "swap", "convert", "--model", str(shipped_model("swap")), "--video", str(shared_data / GRID_CLIP),
        "--out", "out/o.mp4", "--quiet", "--threads", "1"])
    assert rc == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]  # mediapipe logs its own lines too
    assert errors == ["error: --out out/o.mp4: cannot write (No space left on device)"] and "Traceback" not in err
    assert left == []  # no half video, no hidden temporary file keeping the disk full


def test_a_stage_the_disk_cannot_hold_is_refused_before_it_writes(shared_data, tmp_path):
    """Each stage estimates its space (synthswap.space): on a 17 MB disk the subject's faceset (one photo)
    fits and is kept, the destination's (75 frames of GRID at 128 px, about 20 MB) is refused before
    anything of it is written, in one line naming the stage, the folder, the space needed and free."""
    from synthswap.media import iter_video_frames, write_png

    write_png(tmp_path / "me.png", next(iter(iter_video_frames(shared_data / "videos/people/d6.mp4", max_frames=1))).bgr)
    rc, err, left = _on_a_full_disk(tmp_path, "17m", [
        "run", "--subject", "me.png", "--video", str(shared_data / GRID_CLIP), "--out", "out/o.mp4", "--quiet",
        "--engine", "warp", "--synthetic", "0", "--swap-init", "none", "--swap-steps", "2", "--batch-size", "2",
        "--swap-id-weight", "0"])
    assert rc == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith("error: [extract destination] needs about 20 MB more in out/o_work and 1"), errors
    assert errors[0].endswith("MB are free; free some space (or choose another --work) and run the same command "
                              "again: finished stages are kept")
    # The subject's stage finished (its faceset and marker are kept); nothing of the destination's was written.
    assert {"out/o_work/subject/faceset.json", "out/o_work/.subject.stage.json"} <= set(left), left
    assert not any(p.startswith(("out/o_work/dest", "out/o_work/.dest")) for p in left), left


def _convert_until_it_writes(shared_data: Path, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    out = tmp_path / "o.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "synthswap", "swap", "convert", "--model", str(shipped_model("swap")),
                             "--video", str(shared_data / GRID_CLIP), "--out", str(out), "--quiet", "--threads", "1"],
                            env=_env(tmp_path), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".o.*.tmp.mp4")):
        assert proc.poll() is None and time.monotonic() < deadline, "convert never started writing"
        time.sleep(0.2)
    time.sleep(1.0)  # a few frames into the file
    return proc, out


def test_sigterm_during_convert_removes_its_temporary_video(shared_data, tmp_path):
    proc, out = _convert_until_it_writes(shared_data, tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "terminated" in err
    assert not out.exists() and not list(tmp_path.glob(".o.*"))


def test_what_kill_9_leaves_is_swept_by_the_next_writer_of_that_output(shared_data, tmp_path):
    from synthswap.media import VideoWriter

    proc, out = _convert_until_it_writes(shared_data, tmp_path)
    proc.kill()
    proc.wait(timeout=60)
    stale = list(tmp_path.glob(".o.*.tmp.mp4"))
    assert len(stale) == 1
    # Not o.mp4's leftovers: a user's file, another output's temporary, one whose writer (pytest's parent) lives.
    mine = [tmp_path / ".o.notes.tmp.mp4", tmp_path / ".other.999999-0123abcd.tmp.mp4",
            tmp_path / f".o.{os.getppid()}-0123abcd.tmp.mp4"]
    for path in mine:
        path.write_text("mine")
    import numpy as np

    with VideoWriter(out, 64, 48, 25) as writer:
        assert not stale[0].exists()
        writer.write(np.zeros((48, 64, 3), np.uint8))
    assert all(p.read_text() == "mine" for p in mine)
