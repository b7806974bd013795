"""`synthswap evaluate` on real videos: an unswapped clip is measured as exactly that."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synthswap.cli import main
from synthswap.media import VideoWriter, iter_video_frames, probe_video
from synthswap.metrics.evaluate import evaluate


@pytest.fixture(scope="module")
def d9_clip(shared_data, tmp_path_factory):
    """The first 30 frames of d9.mp4 re-encoded: an 'output' in which nothing was swapped."""
    src = shared_data / "videos/people/d9.mp4"
    info = probe_video(src)
    out = tmp_path_factory.mktemp("eval") / "d9_clip.mp4"
    with VideoWriter(out, info.width, info.height, info.fps) as writer:
        for frame in iter_video_frames(src, max_frames=30):
            writer.write(frame.bgr)
    return out


@pytest.mark.slow
def test_unswapped_video_reads_as_the_destination_person(shared_data, extracted, d9_clip):
    source = shared_data / "videos/people/d9.mp4"
    result = evaluate(d9_clip, source, extracted("videos/people/d6.mp4", size=128, max_frames=20, every_n=10),
                      max_frames=30, dlib_every=10, fid=False, progress=False)
    s = result.summary()
    assert s["frames"] == 30 and s["frames_with_both_faces"] == 30
    assert s["swap_rate"] == 0.0
    assert s["identity_to_destination"] > 0.9  # the same face, re-encoded
    assert s["identity_to_subject"] < 0.363 and s["subject_closer_rate"] == 0.0
    assert s["dlib_distance_to_destination"] < 0.3 < 0.6 < s["dlib_distance_to_subject"]
    assert s["expression_error"] < 0.03 and s["pose_error_deg"] < 1.5
    assert 0.7 < s["landmark_jitter_ratio"] < 1.3

    same_person = evaluate(d9_clip, source, extracted("videos/people/d9.mp4", size=128, max_frames=20, every_n=10),
                           max_frames=30, dlib_every=0, fid=False, progress=False).summary()
    assert same_person["identity_to_subject"] > 0.6


def test_evaluate_cli_writes_json_and_markdown_and_refuses_mismatched_videos(
        shared_data, extracted, d9_clip, tmp_path, capsys):
    subject = extracted("videos/people/d6.mp4", size=128, max_frames=20, every_n=10)
    code = main(["evaluate", "--video", str(d9_clip), "--source", str(shared_data / "videos/people/d9.mp4"),
                 "--subject", str(subject), "--max-frames", "8", "--dlib-every", "0", "--no-fid", "--quiet",
                 "--out", str(tmp_path / "ev_gan0.1")])
    assert code == 0
    # A dot in the prefix is part of the name: ev_gan0.1 and ev_gan0.2 must not both write ev_gan0.json.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev_gan0.1.json", "ev_gan0.1.md"]
    report = json.loads((tmp_path / "ev_gan0.1.json").read_text())
    assert report["summary"]["frames"] == 8 and len(report["frames"]) == 8
    assert "| swap_rate | 0.0000 |" in (tmp_path / "ev_gan0.1.md").read_text()

    code = main(["evaluate", "--video", str(d9_clip), "--source", str(shared_data / "videos/people/d6.mp4"),
                 "--subject", str(subject), "--quiet", "--out", str(tmp_path / "bad")])
    assert code == 1 and "not a swap of that video" in capsys.readouterr().err
    assert not (tmp_path / "bad.json").exists()
    code = main(["evaluate", "--video", str(d9_clip), "--source", str(d9_clip), "--subject", str(tmp_path / "nope")])
    assert code == 1 and "not a faceset" in capsys.readouterr().err


def test_an_output_of_another_length_is_refused_not_scored(shared_data, d9_clip, tmp_path, capsys):
    """A 1-frame 'output' against the 30-frame source is not a swap of it: one error line, no files."""
    info = probe_video(d9_clip)
    short = tmp_path / "one_frame.mp4"
    with VideoWriter(short, info.width, info.height, info.fps) as writer:
        writer.write(next(iter(iter_video_frames(d9_clip, max_frames=1))).bgr)
    subject = shared_data / "videos/people/d9.mp4"
    code = main(["evaluate", "--video", str(short), "--source", str(d9_clip), "--subject", str(subject),
                 "--out", str(tmp_path / "eval"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "has 1 frames" in err and err.count("error:") == 1
    assert not list(tmp_path.glob("eval*"))


def test_grain_inflates_the_sharpness_ratio_and_much_less_its_half_size_twin(shared_data, extracted, tmp_path):
    """Grain is not detail: added to the destination's own frames it raises the full-size sharpness
    ratio far above 1 (measured 2.56), the ratio on half-size copies, what survives a 2x downscale,
    about half as far (1.36)."""
    source = shared_data / "videos/people/d9.mp4"
    info = probe_video(source)
    grainy = tmp_path / "grainy.mp4"
    rng = np.random.default_rng(0)
    with VideoWriter(grainy, info.width, info.height, info.fps, crf=0) as writer:
        for frame in iter_video_frames(source, max_frames=6):
            noise = rng.normal(0.0, 12.0, frame.bgr.shape[:2])[..., None]
            writer.write(np.clip(frame.bgr + noise, 0, 255).astype(np.uint8))
    s = evaluate(grainy, source, extracted("videos/people/d9.mp4", size=128, max_frames=20, every_n=10),
                 max_frames=6, dlib_every=0, fid=False, progress=False).summary()
    assert s["swap_rate"] == 1.0  # the grain changes the face by more than SWAPPED_MIN_DIFFERENCE
    assert s["sharpness_ratio"] > 2.0 and s["sharpness_ratio_half"] < 0.6 * s["sharpness_ratio"], s
