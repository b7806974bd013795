"""Time estimates of a run (synthswap.estimate): the work read from real inputs' headers, the stages
from the run's own plan, and this machine's speed from finished stages' times."""

from __future__ import annotations

from dataclasses import replace

import pytest

from synthswap.estimate import (
    GAN_POWER_STEP_COST,
    SWAP_SET_UP_S,
    Workload,
    estimate,
    frames_looked_at,
    machine_speed,
    stage_seconds,
)
from synthswap.run import RunOptions
from synthswap.stages import run_plan

REFERENCE = Workload(subject_faces=10, video_frames=448, video_pixels=512 * 512)  # README's planning run


def _opts(**kw) -> RunOptions:
    return RunOptions(subject=[], video="", out="x.mp4", **kw)


def test_the_work_is_read_from_real_inputs(shared_data, tmp_path):
    grid = shared_data / "videos/grid/bbaf2n.mpg"  # 75 frames of 360 x 288
    photos = sorted((shared_data / "faces/utkface").glob("*.jpg"))[:3]
    opts = RunOptions(subject=[str(p) for p in photos] + [str(grid)], video=str(grid), out="x.mp4",
                      subject_every_n=10, subject_max_frames=5)
    work = Workload.of(opts)
    # MPEG-PS headers give no frame count: it comes from duration x rate (74 of the 75 frames)
    assert work.subject_faces == 3 + 5 and abs(work.video_frames - 75) <= 1 and work.video_pixels == 360 * 288
    assert frames_looked_at([str(grid)], 10, None) == 8  # frames 0, 10, ..., 70
    assert frames_looked_at([str(tmp_path / "gone.mp4")], 1, None) == 0  # unreadable: counts for nothing


def test_the_estimate_follows_the_runs_plan_and_its_budgets():
    default = _opts()
    stages = estimate(default, REFERENCE)
    assert [s["name"] for s in stages] == [stage.title(default) for stage in run_plan(default)]
    # the rates reproduce the whole default run they were measured on (README: about 31 minutes)
    assert 29 * 60 < sum(s["seconds"] for s in stages) < 33 * 60

    warp = estimate(_opts(engine="warp"), REFERENCE)
    assert {"inversion", "directions"}.isdisjoint(s["key"] for s in warp)
    swap = {s["key"]: s["seconds"] for s in estimate(_opts(swap_minutes=4), REFERENCE)}["swap"]
    assert swap == pytest.approx(4 * 60 + stage_seconds("swap", default, REFERENCE) - 15 * 60)
    few_steps = stage_seconds("swap", _opts(swap_steps=100), REFERENCE)
    assert few_steps < stage_seconds("swap", _opts(swap_steps=1000), REFERENCE) < swap + 15 * 60
    # the discriminator (GAN power, on by default) makes each step cost GAN_POWER_STEP_COST times more
    no_gan = stage_seconds("swap", _opts(swap_steps=1000, swap_gan_power=0), REFERENCE)
    with_gan = stage_seconds("swap", _opts(swap_steps=1000), REFERENCE)
    assert with_gan - SWAP_SET_UP_S == pytest.approx(GAN_POWER_STEP_COST * (no_gan - SWAP_SET_UP_S))
    longer = replace(REFERENCE, video_frames=2 * 448)
    assert stage_seconds("evaluate", default, longer) == pytest.approx(2 * stage_seconds("evaluate", default, REFERENCE))

    # a machine twice as slow doubles the stages of fixed work, not the budgets
    slow = {s["key"]: s["seconds"] for s in estimate(default, REFERENCE, speed=2.0)}
    base = {s["key"]: s["seconds"] for s in stages}
    assert slow["swap"] == base["swap"] and slow["convert"] == pytest.approx(2 * base["convert"], abs=0.1)


def test_the_machines_speed_is_the_median_of_its_finished_runs():
    default = _opts()
    reference = {key: stage_seconds(key, default, REFERENCE) for key in ("dest", "inversion", "convert", "evaluate")}
    runs = [(default, REFERENCE, {k: factor * v for k, v in reference.items()} | {"swap": 1.0})
            for factor in (1.5, 2.0, 4.0)]
    assert machine_speed(runs) == (pytest.approx(2.0), 3)  # the budgeted swap says nothing about speed
    tiny = Workload(subject_faces=1, video_frames=10, video_pixels=64 * 64)
    assert machine_speed([(default, tiny, {"dest": 50.0})]) == (1.0, 0)  # seconds of work: start-up, not speed
    assert machine_speed([]) == (1.0, 0)
