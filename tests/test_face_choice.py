"""Which face is swapped (issue 28): `--face largest|N|PHOTO`, the chosen person followed through
the video, and a warning when several people are shown and nobody chose. Two real people side by
side, made from two GRID clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from media_helpers import GRID_CLIP, source_frames, two_people
from synthswap.cli import main
from synthswap.media import iter_video_frames, write_png

RIGHT_CLIP = "videos/grid/lbax4n.mpg"  # another man than GRID_CLIP's


@pytest.fixture(scope="module")
def model():
    from synthswap.pretrained import shipped_model

    return shipped_model("swap")


def _changed_halves(model: Path, video: Path, out: Path, capsys, *face: str) -> tuple[list[tuple[float, float]], str]:
    """Per frame: the share of pixels in the middle of the left and of the right half (where each face
    is) that changed by more than re-encoding does (15 grey levels); and stderr. No watermark: its
    grain would blur the comparison."""
    assert main(["swap", "convert", "--model", str(model), "--video", str(video), "--out", str(out), "--quiet",
                 "--threads", "1", "--no-watermark", *face]) == 0
    err = capsys.readouterr().err
    changes = []
    for before, after in zip(iter_video_frames(video), iter_video_frames(out)):
        changed = np.abs(after.bgr.astype(np.float32) - before.bgr).max(axis=2) > 15
        changes.append((float(changed[50:240, 90:270].mean()), float(changed[50:240, 450:630].mean())))
    return changes, err


def test_a_position_or_a_photo_picks_the_person_and_nobody_choosing_is_warned(shared_data, tmp_path, model, capsys):
    video = tmp_path / "two.mp4"
    two_people(shared_data / GRID_CLIP, shared_data / RIGHT_CLIP, video, [(0.9, 0.9)] * 3)
    right, err = _changed_halves(model, video, tmp_path / "right.mp4", capsys, "--face", "2")
    assert all(r > 3 * left for left, r in right), right
    assert "warning" not in err
    photo = tmp_path / "him.png"  # a later frame of the left man, alone: matched by identity
    write_png(photo, source_frames(shared_data / GRID_CLIP, 60)[-1])
    by_photo, _ = _changed_halves(model, video, tmp_path / "photo.mp4", capsys, "--face", str(photo))
    assert all(left > 3 * right for left, right in by_photo), by_photo
    _, err = _changed_halves(model, video, tmp_path / "default.mp4", capsys)
    assert "warning: 3 frames show more than one face" in err and "--face" in err


def test_the_chosen_person_is_followed_when_another_becomes_larger(shared_data, tmp_path, model, capsys):
    video = tmp_path / "two.mp4"
    two_people(shared_data / GRID_CLIP, shared_data / RIGHT_CLIP, video, [(1.0, 0.8)] * 2 + [(0.8, 1.0)] * 2)
    changes, _ = _changed_halves(model, video, tmp_path / "out.mp4", capsys)
    assert all(left > 3 * right for left, right in changes), changes  # the left man throughout, though the right grew larger


def test_a_bad_face_choice_is_refused_before_any_work(shared_data, tmp_path, model, capsys):
    out = tmp_path / "out.mp4"
    for face in ("0", "nobody.jpg"):
        assert main(["swap", "convert", "--model", str(model), "--video", str(shared_data / GRID_CLIP),
                     "--out", str(out), "--quiet", "--face", face]) != 0
        assert "--face" in capsys.readouterr().err and not out.exists()
