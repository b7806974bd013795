"""The form's time estimates: how long a job with these settings and inputs takes on this machine.

The stages and their work come from `synthswap.estimate`; this machine's speed from the stage times
its own finished jobs recorded (their stage markers), so the estimates learn the machine as jobs
finish. Until one has, they are the reference machine's figures, and the answer says so.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from synthswap.cache import stage_state
from synthswap.estimate import Workload, estimate, machine_speed
from synthswap.media import MediaError
from synthswap.run import RunOptions
from synthswap.serve.jobs import JobStore
from synthswap.serve.options import OptionError, parse, presets, run_options
from synthswap.serve.submit import media_path
from synthswap.serve.uploads import UploadError
from synthswap.stages import run_plan

RECENT_JOBS = 20  # the finished jobs this machine's speed is read from
# Before any input is chosen: the reference run's own sizes (10 photos, 448 frames of 512 x 512).
TYPICAL = Workload(subject_faces=10, video_frames=448, video_pixels=512 * 512)

_speed_lock = threading.Lock()
_speed_cache: dict[str, tuple[float, int]] = {}  # the job list's version -> (speed, runs)


def _finished_runs(jobs: JobStore, device: str) -> list[tuple[RunOptions, Workload, dict[str, float]]]:
    runs = []
    listed, _ = jobs.list(RECENT_JOBS * 5)
    for job in [j for j in listed if j.state == "done"][:RECENT_JOBS]:
        try:
            opts = run_options(jobs.job_dir(job.id), device)
            work = Workload.of(opts)
        except (OSError, ValueError, KeyError, MediaError):
            continue  # deleted while we looked, or inputs gone: it says nothing
        measured = {}
        for stage in run_plan(opts):
            seconds = stage_state(stage.path(opts)).get("seconds")
            if seconds is not None:
                measured[stage.key] = float(seconds)
        runs.append((opts, work, measured))
    return runs


def speed(jobs: JobStore, device: str) -> tuple[float, int]:
    """(this machine's time over the reference machine's, finished jobs it was read from)."""
    version = jobs.version
    with _speed_lock:
        if version not in _speed_cache:
            _speed_cache.clear()
            _speed_cache[version] = machine_speed(_finished_runs(jobs, device))
        return _speed_cache[version]


def _workload(jobs: JobStore, media: Path | None, body: dict[str, Any], opts: dict[str, Any]) -> Workload | None:
    """The chosen inputs' workload; None when no destination is chosen yet."""
    subject = [jobs.uploads_dir / u.file for u in map(jobs.get_upload, _names(body, "subject")) if u]
    subject += [media_path(media, name) for name in _names(body, "subject_media")]
    video_id, video_media = body.get("video"), body.get("video_media")
    upload = jobs.get_upload(video_id) if isinstance(video_id, str) and video_id.isalnum() else None
    video = jobs.uploads_dir / upload.file if upload else (
        media_path(media, video_media) if isinstance(video_media, str) and video_media else None)
    if video is None:
        return None
    run = RunOptions(subject=[str(p) for p in subject], video=str(video), out="estimate.mp4", **opts)
    work = Workload.of(run)
    return work if work.subject_faces else Workload(TYPICAL.subject_faces, work.video_frames, work.video_pixels)


def _names(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key) or []
    return [v for v in value if isinstance(v, str) and v.isprintable()] if isinstance(value, list) else []


def estimate_request(jobs: JobStore, media: Path | None, device: str, body: dict[str, Any]) -> dict[str, Any]:
    """{stages, total_s, presets: {name: total_s}, speed, basis} for the form's settings and inputs
    (the same body as a new job's). Raises OptionError for settings the job would be refused for."""
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise OptionError("options must be a JSON object of settings")
    values = parse(options)
    try:
        work = _workload(jobs, media, body, values)
    except (MediaError, UploadError, OSError):
        work = None  # an input that cannot be read: the job's own checks say so when it is submitted
    factor, runs = speed(jobs, device)
    if work is None:
        work, inputs = TYPICAL, "10 photos and a 15-second clip of 512 x 512 (no destination chosen yet)"
    else:
        inputs = f"{work.subject_faces} subject faces and {work.video_frames} frames of the destination"

    def plan(v: dict[str, Any]) -> list[dict[str, Any]]:
        return estimate(RunOptions(subject=[], video="", out="estimate.mp4", **v), work, factor)

    stages = plan(values)
    basis = (f"this machine's speed, from the stage times of its last {runs} finished job{'s' * (runs != 1)}"
             if runs else "the reference machine's figures (2 cores with bf16 units): no job has finished here yet")
    return {"stages": stages, "total_s": round(sum(s["seconds"] for s in stages)),
            "presets": {p["name"]: round(sum(s["seconds"] for s in plan(p["values"]))) for p in presets()},
            "speed": round(factor, 2), "runs": runs, "inputs": inputs, "basis": basis}


_workloads: dict[tuple[str, ...], Workload] = {}  # a job's inputs -> their workload (read once)


def planned(jobs: JobStore, device: str, opts: RunOptions) -> dict[str, float]:
    """Each stage's estimated seconds for the job `opts` on this machine ({} when its inputs cannot
    be read)."""
    key = (*opts.subject, opts.video)
    if len(_workloads) > 1000:  # one entry per job shown: a long-lived server starts the cache again
        _workloads.clear()
    if key not in _workloads:
        try:
            _workloads[key] = Workload.of(opts)
        except (MediaError, OSError):
            return {}
    return {s["key"]: s["seconds"] for s in estimate(opts, _workloads[key], speed(jobs, device)[0])}


def time_left(expected: dict[str, float], stages: list[dict[str, Any]]) -> float | None:
    """Seconds until the job is done: the running stage's own time left (from its progress, which
    `progress.stages` derives from `expected` for a stage without progress of its own), and the
    estimate of each stage still waiting. None without estimates."""
    if not expected:
        return None
    left = 0.0
    for stage in stages:
        if stage["state"] == "running":
            eta = (stage["progress"] or {}).get("eta_s")
            left += eta if eta is not None else max(expected.get(stage["key"], 0.0) - (stage["seconds"] or 0.0), 0.0)
        elif stage["state"] in ("waiting", "interrupted"):
            left += expected.get(stage["key"], 0.0)
    return round(left)


__all__ = ["TYPICAL", "estimate_request", "planned", "speed", "time_left"]
