"""Who the destination shows (issue 24): its faces, sampled over the whole video, grouped into people
by identity; the web page offers each person, and the person picked is the one the job learns and
replaces. Two real people made into one video from two GRID clips; they change sides half-way, so a
position ("the 2nd from the left") would name two people and only identity names one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from media_helpers import GRID_CLIP, source_frames, two_people
from synthswap.media import write_png

RIGHT_CLIP = "videos/grid/lbax4n.mpg"  # another man than GRID_CLIP's


@pytest.fixture(scope="module")
def sides(shared_data, tmp_path_factory) -> Path:
    """24 frames: GRID_CLIP's man on the left and RIGHT_CLIP's on the right, then the other way round."""
    folder = tmp_path_factory.mktemp("people")
    two_people(shared_data / GRID_CLIP, shared_data / RIGHT_CLIP, folder / "sides.mp4", [(0.9, 0.9)] * 24,
               change_sides_at=12)
    return folder / "sides.mp4"


@pytest.fixture(scope="module")
def alone(shared_data, tmp_path_factory) -> dict[str, np.ndarray]:
    """Each man's SFace embedding from a later frame of his own clip (not one the video uses)."""
    from synthswap.extract import reference_embedding

    folder = tmp_path_factory.mktemp("alone")
    found = {}
    for name, clip in (("grid", GRID_CLIP), ("right", RIGHT_CLIP)):
        write_png(folder / f"{name}.png", source_frames(shared_data / clip, 60)[-1])
        found[name] = reference_embedding(folder / f"{name}.png")
    return found


def _embedding(picture: np.ndarray, folder: Path) -> np.ndarray:
    from synthswap.extract import reference_embedding

    write_png(folder / "picture.png", picture)
    return reference_embedding(folder / "picture.png")


def test_the_people_of_a_video_are_grouped_by_identity_wherever_they_stand(shared_data, sides, alone, tmp_path):
    from synthswap.faces.identity import SAME_PERSON_COSINE
    from synthswap.serve.uploads import FaceChecker

    checker = FaceChecker()
    checked = checker.check(sides, "video", "sides.mp4")
    # two people, each in all 12 frames looked at (by position it would be four half-people)
    assert checked.searched == 12 and checked.seen == (12, 12) and len(checked.faces) == 2
    matches = []
    for person in (1, 2):
        found = _embedding(checker.person_photo(sides, person, "sides.mp4"), tmp_path)
        matches.append({name: float(found @ e) >= SAME_PERSON_COSINE for name, e in alone.items()})
    # each person's picture is one of the two men, and not the other
    assert sorted(tuple(m.values()) for m in matches) == [(False, True), (True, False)], matches
    # one man alone: one person, nothing to choose
    assert checker.check(shared_data / GRID_CLIP, "video", "one.mpg").seen == (7,)
    # nor a lone doubtful detection: d20's foliage reads as a face in one sampled frame (score 0.78)
    assert checker.check(shared_data / "videos/people/d20.mp4", "video", "d20.mp4").seen == (12,)


def test_two_faces_in_one_frame_are_two_people_however_alike():
    from synthswap.faces.detect import Detection
    from synthswap.faces.people import SeenFace, group_by_identity

    def face(frame: int, area: float, embedding: np.ndarray) -> SeenFace:
        side = np.sqrt(area)
        return SeenFace(frame, Detection(np.array([0, 0, side, side]), np.zeros((5, 2)), 0.9), embedding,
                        np.zeros((8, 8, 3), np.uint8))

    a, b = np.eye(4)[0], np.eye(4)[1]
    twins = group_by_identity([face(0, 100, a), face(0, 90, a), face(1, 100, a)])
    assert [len(p.frames) for p in twins] == [2, 1]  # a frame's two faces are never one person
    people = group_by_identity([face(0, 50, a), face(0, 80, b), face(1, 60, b), face(2, 40, b)])
    assert [len(p.frames) for p in people] == [3, 1]  # the most often seen first
    assert people[0].best.detection.area == pytest.approx(80)  # shown by its largest face


def test_a_job_for_person_k_learns_and_replaces_that_person_and_a_bad_k_leaves_nothing(
        shared_data, sides, alone, tmp_path):
    from serve_helpers import subject_photos

    from synthswap.extract import reference_embedding
    from synthswap.faces.identity import SAME_PERSON_COSINE
    from synthswap.serve.jobs import JobStore
    from synthswap.serve.submit import create_job
    from synthswap.serve.uploads import FaceChecker

    media = tmp_path / "media"
    subject_photos(shared_data, media, 1)
    (media / "sides.mp4").hardlink_to(sides)
    jobs, checker = JobStore(tmp_path / "data"), FaceChecker()
    body = {"subject_media": ["d6_0000.jpg"], "video_media": "sides.mp4", "options": {"face": "person 3"}}
    answer, status = create_job(jobs, checker, media, "cpu", body)
    assert status == 400 and answer["error"] == "sides.mp4 shows 2 people: there is no person 3 to choose"
    assert not list((tmp_path / "data" / "jobs").iterdir())

    person_2 = _embedding(checker.person_photo(sides, 2, "sides.mp4"), tmp_path)
    answer, status = create_job(jobs, checker, media, "cpu", {**body, "options": {"face": "person 2"}})
    assert status == 201 and answer["options"]["face"] == "person 2"  # what the job's page shows
    spec = json.loads((jobs.job_dir(answer["id"]) / "job.json").read_text())
    photo = Path(spec["options"]["face"])  # what `run` gets: --face PHOTO, a picture inside the job
    assert photo.parent == jobs.job_dir(answer["id"]) / "inputs" and photo.name == "video_person_2.png"
    chosen = reference_embedding(photo)
    assert float(chosen @ person_2) > 0.9
    assert sum(float(chosen @ e) >= SAME_PERSON_COSINE for e in alone.values()) == 1


def _sides_kept(faceset: Path) -> list[bool]:
    """For each frame of a faceset made from `sides`, in order: whether its face is on the right."""
    from synthswap.faceset import Faceset

    kept = []
    for face in sorted(Faceset.open(faceset), key=lambda f: f.frame_index):
        to_frame = np.linalg.inv(np.vstack([face.affine_array(), [0, 0, 1]]))  # crop -> frame
        kept.append(float((to_frame @ [32, 32, 1])[0]) > 360)
    return kept


def test_extract_keeps_the_person_chosen_by_photo_across_a_change_of_sides(sides, tmp_path, capsys):
    """A position is followed by where the face is, so when the two men change sides (a cut) `--face 2`
    goes on with whoever now stands there; the person's picture (what the page's "person 2" becomes,
    and what run's destination extraction gets) keeps one man throughout."""
    from synthswap.cli import main
    from synthswap.serve.uploads import FaceChecker

    photo = tmp_path / "person.png"
    write_png(photo, FaceChecker().person_photo(sides, 2, "sides.mp4"))
    by_position, by_person = tmp_path / "position", tmp_path / "person"
    assert main(["extract", str(sides), "--out", str(by_position), "--size", "64", "--face", "2", "--quiet"]) == 0
    assert main(["extract", str(sides), "--out", str(by_person), "--size", "64", "--face", str(photo),
                 "--quiet"]) == 0
    assert _sides_kept(by_position) == [True] * 24
    assert _sides_kept(by_person) in ([True] * 12 + [False] * 12, [False] * 12 + [True] * 12)
    assert main(["extract", str(sides), "--out", str(tmp_path / "both"), "--face", "2",
                 "--reference", str(photo)]) == 2
    assert "not both" in capsys.readouterr().err and not (tmp_path / "both").exists()
