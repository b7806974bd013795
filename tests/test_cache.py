"""Stage caching of `synthswap run` and `study`: skip, rebuild on change, resume after interruption."""

from __future__ import annotations

import pytest

from synthswap import cache
from synthswap.cache import run_stage


def test_stage_skips_rebuilds_and_resumes(tmp_path):
    photo = tmp_path / "photo.txt"
    photo.write_text("first")
    calls = []

    def build(out, resume):
        calls.append(resume)
        out.mkdir(exist_ok=True)
        (out / "result.txt").write_text(photo.read_text())

    out = tmp_path / "work" / "stage"
    assert run_stage("s", out, {"size": 64}, [photo], build, log=lambda m: None)
    assert not run_stage("s", out, {"size": 64}, [photo], build, log=lambda m: None)  # cached
    assert calls == [False]

    (out / "stale.txt").write_text("left from the old inputs")
    photo.write_text("second, longer")  # input changed: the old output goes, the stage reruns
    assert run_stage("s", out, {"size": 64}, [photo], build, log=lambda m: None)
    assert (out / "result.txt").read_text() == "second, longer" and not (out / "stale.txt").exists()
    assert run_stage("s", out, {"size": 128}, [photo], build, log=lambda m: None)  # parameters changed
    assert calls == [False, False, False]

    # A downstream stage keys on the upstream stage's key, not on its files' times.
    downstream = tmp_path / "work" / "next"
    assert run_stage("n", downstream, {}, [out], lambda o, r: o.mkdir(), log=lambda m: None)
    assert not run_stage("n", downstream, {}, [out], lambda o, r: o.mkdir(), log=lambda m: None)

    def interrupted(out, resume):
        out.mkdir(exist_ok=True)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_stage("s", out, {"size": 256}, [photo], interrupted, log=lambda m: None)
    assert run_stage("s", out, {"size": 256}, [photo], build, log=lambda m: None)
    assert calls[-1] is True  # the same stage with the same inputs resumes


def test_outputs_of_an_older_pipeline_version_are_rebuilt(tmp_path, monkeypatch):
    photo = tmp_path / "photo.txt"
    photo.write_text("a")
    calls = []
    out = tmp_path / "work" / "stage"
    build = lambda o, r: (calls.append(r), o.mkdir(exist_ok=True))  # noqa: E731
    assert run_stage("s", out, {}, [photo], build, log=lambda m: None)
    assert not run_stage("s", out, {}, [photo], build, log=lambda m: None)
    monkeypatch.setattr(cache, "PIPELINE_VERSION", cache.PIPELINE_VERSION + 1)  # code that makes other output
    assert run_stage("s", out, {}, [photo], build, log=lambda m: None)
    assert calls == [False, False]


def test_missing_input_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        run_stage("s", tmp_path / "out", {}, [tmp_path / "nope"], lambda o, r: None)
