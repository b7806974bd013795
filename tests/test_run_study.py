"""The one-command pipeline and the study, end to end on real videos with tiny budgets."""

from __future__ import annotations

import json
import re

import pytest

from synthswap.cli import main
from synthswap.faceset import Faceset
from synthswap.media import probe_video
from synthswap.provenance.verify import verify_file


@pytest.mark.slow
def test_run_makes_a_swapped_video_and_report_then_skips_every_stage(shared_data, tmp_path, capsys):
    args = ["run", "--subject", str(shared_data / "videos/people/d6.mp4"), "--subject-every-n", "100",
            "--subject-max-frames", "3", "--video", str(shared_data / "videos/grid/bbaf2n.mpg"),
            "--out", str(tmp_path / "out.mp4"), "--every-n", "5", "--engine", "warp", "--synthetic", "6",
            "--swap-resolution", "64", "--swap-steps", "12", "--batch-size", "4", "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "swap_rate" in out
    work = tmp_path / "out_work"
    assert len(Faceset.open(work / "subject")) == 3
    synthetic = Faceset.open(work / "synthetic_warp")
    assert 0 < len(synthetic) <= 6 and all(f.synthetic for f in synthetic)
    src, dst = probe_video(shared_data / "videos/grid/bbaf2n.mpg"), probe_video(tmp_path / "out.mp4")
    assert (dst.width, dst.height, dst.fps) == (src.width, src.height, src.fps) and dst.frame_count == 75
    report = (tmp_path / "out_report.html").read_text()
    assert "identity_to_subject" in report and "out_report_frames.png" in (tmp_path / "out_report.md").read_text()
    # one file to share: its pictures inside it, the inputs by name (no path of this machine), plain words
    images = re.findall(r'<img src="([^"]*)"', report)
    assert len(images) == 3 and all(src.startswith("data:image/png;base64,iVBORw0KGgo") for src in images)
    assert (tmp_path / "out_report_synthetic.png").stat().st_size > 1000
    assert str(tmp_path) not in report and str(shared_data) not in report and "Subject: d6.mp4." in report
    assert "In plain words" in report and "A face was swapped in 100% of the 75 frames" in report
    assert "fine-tuning" in out  # the log names the swap model it started from
    evaluation = json.loads((work / "evaluation.json").read_text())
    assert evaluation["summary"]["frames"] == 75
    # The output says it is synthetic in all three layers, and the report shows its metadata.
    marks = verify_file(tmp_path / "out.mp4")
    assert marks.layers == ["metadata", "watermark", "manifest"], marks.to_dict()
    assert marks.watermark.run_id == marks.tags["synthswap_run_id"] and marks.manifest.ai_generated
    assert "Provenance" in report and marks.tags["synthswap_run_id"] in report

    mtime = (tmp_path / "out.mp4").stat().st_mtime_ns
    assert main(args[:-1]) == 0  # same inputs and settings: every stage is skipped
    assert capsys.readouterr().out.count("up to date, skipped") == 6  # extract x2, synthesize, train, convert, evaluate
    assert (tmp_path / "out.mp4").stat().st_mtime_ns == mtime


def test_run_reports_bad_input_without_writing_an_output(shared_data, tmp_path, capsys):
    code = main(["run", "--subject", str(tmp_path / "missing.jpg"), "--video",
                 str(shared_data / "videos/grid/bbaf2n.mpg"), "--out", str(tmp_path / "out.mp4"), "--quiet"])
    assert code == 1 and "missing.jpg" in capsys.readouterr().err
    assert not (tmp_path / "out.mp4").exists()
    # a --gan that is not a trained prior fails before any stage runs
    code = main(["run", "--subject", str(shared_data / "videos/people/d6.mp4"), "--video",
                 str(shared_data / "videos/grid/bbaf2n.mpg"), "--out", str(tmp_path / "gan_out.mp4"),
                 "--gan", str(tmp_path), "--quiet"])
    assert code == 1 and "not a GAN folder" in capsys.readouterr().err
    assert not (tmp_path / "gan_out.mp4").exists() and not (tmp_path / "gan_out_work").exists()


@pytest.mark.slow
def test_study_trains_every_condition_and_reports_gap_recovery(shared_data, tmp_path):
    study = tmp_path / "study"
    code = main(["study", "--subject", str(shared_data / "videos/people/d3.mp4"),
                 "--dest", str(shared_data / "videos/people/d20.mp4"), "--out", str(study), "--k", "2",
                 "--engines", "warp", "--subject-every-n", "25", "--dest-every-n", "8", "--eval-max-frames", "12",
                 "--synthetic", "8", "--swap-resolution", "64", "--swap-steps", "10", "--batch-size", "4",
                 "--swap-id-weight", "0",  # the study's mechanics; identity training is tested by run and swap
                 "--quiet"])
    assert code == 0
    results = json.loads((study / "results.json").read_text())
    names = [c["name"] for c in results["conditions"]]
    assert names == ["all-real", "real-2", "real-2+warp"]
    for cond in results["conditions"]:
        assert cond["metrics"]["frames"] == 12
        assert probe_video(study / "outputs" / f"{cond['name'].replace('+', '_')}.mp4").frame_count == 12
    # No training frame is evaluated: the destination's training split ends before the evaluation clip.
    dest_train = Faceset.open(study / "data" / "dest_train")
    dest_eval = Faceset.open(study / "data" / "dest_eval_faces")
    assert max(f.frame_index for f in dest_train) < min(f.frame_index for f in dest_eval)
    subject_train = Faceset.open(study / "data" / "subject_train")
    holdout = Faceset.open(study / "data" / "subject_holdout")
    assert max(f.frame_index for f in subject_train) < min(f.frame_index for f in holdout)
    report = (study / "report.md").read_text()
    assert "Gap recovery" in report and "| 2 | warp |" in report
    for png in ("identity_vs_k.png", "expression_vs_k.png", "frames.png"):
        assert (study / png).stat().st_size > 1000


@pytest.mark.slow
def test_run_uses_a_given_prior_instead_of_training_one(shared_data, extracted, tmp_path, capsys):
    """`run --gan DIR` inverts into that prior: no personal prior is trained in the work directory."""
    from gan_helpers import FACES, tiny_options

    from synthswap.gan.train import train

    gan = tmp_path / "prior"
    train(tiny_options(extracted(*FACES), gan, kimg=0.016))
    args = ["run", "--subject", str(shared_data / "videos/people/d6.mp4"), "--subject-every-n", "100",
            "--subject-max-frames", "2", "--video", str(shared_data / "videos/grid/bbaf2n.mpg"),
            "--out", str(tmp_path / "out.mp4"), "--every-n", "5", "--gan", str(gan), "--synthetic", "2",
            "--invert-steps", "2", "--pti-steps", "2", "--landmark-steps", "2", "--directions-n", "8",
            "--swap-resolution", "64", "--swap-steps", "4", "--batch-size", "2",
            "--swap-id-weight", "0",  # the prior's path; identity training is tested by the test above
            "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"inverting into {gan}" in out
    work = tmp_path / "out_work"
    assert not (work / "gan").exists() and (work / "inversion" / "inversion.json").is_file()
    assert json.loads((work / "inversion" / "inversion.json").read_text())["gan_dir"] == str(gan)
    assert probe_video(tmp_path / "out.mp4").frame_count == 75
