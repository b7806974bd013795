"""Extraction on real faces: detection rate, alignment, expression and identity measures."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from synthswap.extract import extract
from synthswap.faces.align import TEMPLATE_POINTS
from synthswap.faces.identity import cosine
from synthswap.faces.landmarks import eye_centres
from synthswap.faces.pipeline import FaceAnalyzer
from synthswap.faceset import Faceset
from synthswap.media import iter_video_frames

PEOPLE = ["d0", "d3", "d6", "d9", "d10", "d14", "d20"]
EVERY_N = 4  # every 4th frame of all 7 videos: ~800 frames, a fair sample of each clip


@pytest.fixture(scope="module")
def people(shared_data, tmp_path_factory):
    """Each people video extracted at 128 px: (summary, faceset) per person."""
    root = tmp_path_factory.mktemp("people")
    out = {}
    for name in PEOPLE:
        summary = extract([shared_data / "videos/people" / f"{name}.mp4"], root / name, size=128,
                          every_n=EVERY_N, progress=False)
        out[name] = (summary, Faceset.open(root / name))
    return out


@pytest.mark.slow
def test_face_found_in_95_percent_of_frames_of_every_people_video(people):
    for name, (summary, faceset) in people.items():
        assert summary.frames > 10, name
        rate = len(faceset) / summary.frames
        assert rate >= 0.95, f"{name}: face found in {rate:.1%} of frames"


@pytest.mark.slow
def test_aligned_eye_centres_within_3_percent_of_template(people):
    for name, (_, faceset) in people.items():
        eyes = np.stack([eye_centres(f.landmarks_array()) for f in faceset]) / faceset.size
        err = np.abs(eyes - TEMPLATE_POINTS[None, :2]).max()
        assert err < 0.03, f"{name}: an eye centre lies {err:.3f} of the crop from the template"


@pytest.mark.slow
def test_faceset_rows_are_complete(people):
    summary, faceset = people["d3"]
    face = faceset.faces[1]
    assert faceset.info["template"]["name"] == "synthswap-5pt-v1"
    assert len(face.landmarks) == 478 and len(face.identity) == 128
    assert face.frame_index == EVERY_N and face.time_s == pytest.approx(EVERY_N / 30, abs=1e-3)
    img, mask = faceset.read_image(face), faceset.read_mask(face)
    assert img.shape == (128, 128, 3) and mask.shape == (128, 128)
    assert 0.3 < (mask > 127).mean() < 0.8  # the face oval covers a face-sized part of the crop
    # The stored affine maps the source frame onto the stored crop.
    frame = next(f for f in iter_video_frames(face.source) if f.index == face.frame_index)
    recrop = cv2.warpAffine(frame.bgr, face.affine_array(), (128, 128), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    assert np.abs(recrop.astype(int) - img.astype(int)).mean() < 2.0


@pytest.mark.slow
def test_identity_separates_the_seven_people(people):
    embeddings = {name: fs.identities() for name, (_, fs) in people.items()}
    same = {n: cosine(e, e)[~np.eye(len(e), dtype=bool)].mean() for n, e in embeddings.items()}
    diff = [cosine(embeddings[a], embeddings[b]).mean() for a in PEOPLE for b in PEOPLE if a < b]
    assert min(same.values()) > max(diff), f"same-person {same}, largest different-person {max(diff):.3f}"


def _expressions(video: Path, every_n: int = 1) -> np.ndarray:
    analyzer = FaceAnalyzer(size=128, with_identity=False)
    rows = []
    try:
        for frame in iter_video_frames(video, every_n=every_n):
            face = analyzer.analyze(frame.bgr)
            if face is not None:
                rows.append(face.expression)
    finally:
        analyzer.close()
    return rows


def test_smile_is_higher_in_happy_than_neutral_speech(shared_data):
    happy = _expressions(shared_data / "videos/cremad/1001_DFA_HAP_XX.flv", every_n=2)
    neutral = _expressions(shared_data / "videos/cremad/1001_DFA_NEU_XX.flv", every_n=2)
    assert len(happy) > 10 and len(neutral) > 10
    smile_hap = np.mean([r["smile"] for r in happy])
    smile_neu = np.mean([r["smile"] for r in neutral])
    width_hap = np.mean([r["mouth_width"] for r in happy])
    width_neu = np.mean([r["mouth_width"] for r in neutral])
    assert smile_hap > smile_neu, (smile_hap, smile_neu)
    assert width_hap > width_neu, (width_hap, width_neu)


def test_mouth_open_varies_when_talking_not_on_a_still_image(shared_data):
    talking = [r["mouth_open"] for r in _expressions(shared_data / "videos/grid/bbaf2n.mpg")]
    # The still: one GRID frame, re-encoded and shifted by a few pixels, as camera noise would.
    frame = next(iter_video_frames(shared_data / "videos/grid/bbaf2n.mpg"))
    analyzer = FaceAnalyzer(size=128, with_identity=False)
    still = []
    rng = np.random.default_rng(0)
    for _ in range(20):
        shift = np.float32([[1, 0, rng.uniform(-3, 3)], [0, 1, rng.uniform(-3, 3)]])
        moved = cv2.warpAffine(frame.bgr, shift, frame.bgr.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
        jpeg = cv2.imdecode(cv2.imencode(".jpg", moved, [cv2.IMWRITE_JPEG_QUALITY, 85])[1], cv2.IMREAD_COLOR)
        still.append(analyzer.analyze(jpeg).expression["mouth_open"])
    analyzer.close()
    assert len(talking) > 60
    assert np.std(talking) > 5 * np.std(still), (np.std(talking), np.std(still))


def test_head_pose_follows_mirroring_and_in_plane_rotation(shared_data):
    frame = next(f for f in iter_video_frames(shared_data / "videos/people/d9.mp4") if f.index == 150).bgr
    analyzer = FaceAnalyzer(size=128, with_identity=False)
    base = analyzer.analyze(frame).pose
    mirrored = analyzer.analyze(np.ascontiguousarray(frame[:, ::-1])).pose
    h, w = frame.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), -12, 1.0)  # negative angle: clockwise on screen
    rotated = analyzer.analyze(cv2.warpAffine(frame, turn, (w, h), borderMode=cv2.BORDER_REPLICATE)).pose
    analyzer.close()
    assert abs(base["yaw"]) > 5  # this frame has a clear head turn
    assert mirrored["yaw"] == pytest.approx(-base["yaw"], abs=3)
    assert mirrored["roll"] == pytest.approx(-base["roll"], abs=3)
    assert mirrored["pitch"] == pytest.approx(base["pitch"], abs=3)
    assert rotated["roll"] - base["roll"] == pytest.approx(12, abs=3)
