"""What a job's page shows, read from the files `synthswap run` already writes.

Nothing here is reported by the job process: the stage list comes from `stages.RUN_STAGES` and
each output's stage marker (pending or done, with its time), the training progress from the
trainers' own log.csv and preview.png, the extraction progress from the faceset's rows. So a
job shows the same whether it is running, interrupted or finished, and across restarts.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from synthswap.cache import stage_state
from synthswap.estimate import frames_looked_at
from synthswap.media import MediaError, read_crop
from synthswap.run import RunOptions
from synthswap.serve.jobs import Job
from synthswap.serve.worker import LOG_FILE
from synthswap.stages import STAGE, Stage, run_plan

LOSS_POINTS = 200  # the loss curve is thinned to at most this many points
LOG_TAIL_BYTES = 6000
# MediaPipe's and TensorFlow Lite's start-up chatter: native code prints it before any Python setting can
# reach it, once per face model loaded. The log panel leaves it out; log.txt (the download) keeps all.
NATIVE_NOISE = re.compile(r"^([IWE]\d{4} \S+ +\d+ \w+\.cc:\d+\]|"
                          r"INFO: Created TensorFlow Lite XNNPACK delegate|"
                          r"WARNING: All log messages before absl::InitializeLog\(\) is called)")
GRID_FACES = 48
TRAIN_LOG = "log.csv"  # in a trainer's output folder (gan train, swap train)


def _csv_rows(path: Path) -> list[dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    rows = list(csv.DictReader(io.StringIO(text)))
    if rows and not text.endswith("\n"):
        rows.pop()  # a row being written right now
    return rows


def _float(row: dict[str, str], key: str) -> float | None:
    try:
        value = float(row.get(key) or "nan")
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _line_count(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    except OSError:
        return 0


def _swap_progress(opts: RunOptions, output: Path) -> dict[str, Any] | None:
    """Steps or minutes, whichever budget ends first, from the swap trainer's log.csv."""
    rows = _csv_rows(output / TRAIN_LOG)
    if not rows:
        return None
    last = rows[-1]
    step, seconds = int(float(last["step"])), _float(last, "time_s") or 0.0
    fractions, etas = [], []
    if opts.swap_steps:
        fractions.append(step / opts.swap_steps)
        # steps/s over this session's rows (time_s restarts at 0 when training resumes); from its
        # first row alone until there is a second (an overestimate: it includes the set-up)
        session = rows[-1:]
        for row in reversed(rows[:-1]):
            if (_float(row, "time_s") or 0.0) >= (_float(session[0], "time_s") or 0.0):
                break  # time went back: this row is of the session before
            session.insert(0, row)
        first_step, first_s = (int(float(session[0]["step"])), _float(session[0], "time_s") or 0.0) \
            if len(session) > 1 else (step - 1, 0.0)
        if seconds > first_s and step > first_step:
            etas.append((opts.swap_steps - step) * (seconds - first_s) / (step - first_step))
    budget_s = opts.swap_minutes * 60
    fractions.append(seconds / budget_s)
    etas.append(max(budget_s - seconds, 0))
    return {"unit": "steps", "done": step, "total": opts.swap_steps, "fraction": min(max(fractions), 1.0),
            "rate": _float(last, "images_per_s"), "rate_unit": "images/s", "eta_s": min(etas),
            "loss": _float(last, "loss")}


def _gan_progress(opts: RunOptions, output: Path) -> dict[str, Any] | None:
    rows = _csv_rows(output / TRAIN_LOG)
    if not rows:
        return None
    last = rows[-1]
    seconds, budget_s = _float(last, "seconds") or 0.0, opts.gan_minutes * 60
    return {"unit": "kimg", "done": _float(last, "kimg"), "total": None, "fraction": min(seconds / budget_s, 1.0),
            "rate": _float(last, "img_s"), "rate_unit": "images/s", "eta_s": max(budget_s - seconds, 0)}


def _extract_progress(output: Path, inputs: list[str], every_n: int, max_frames: int | None) -> dict[str, Any]:
    """Faces written so far against the frames (or photos) that will be looked at."""
    total = frames_looked_at(inputs, every_n, max_frames)
    done = _line_count(output / "faces.jsonl")
    return {"unit": "faces", "done": done, "total": total or None,
            "fraction": min(done / total, 1.0) if total else None, "rate": None, "eta_s": None}


def _stage_progress(stage: Stage, output: Path, opts: RunOptions) -> dict[str, Any] | None:
    """What the stage's declaration says it shows while it runs (`Stage.progress`)."""
    if stage.progress == "swap":
        return _swap_progress(opts, output)
    if stage.progress == "gan":
        return _gan_progress(opts, output)
    if stage.progress == "faces" and stage.frames is not None:
        return _extract_progress(output, *stage.frames(opts))
    return None  # the other stages write no progress of their own: the page shows the time spent


def _estimated_progress(elapsed: float, expected: float) -> dict[str, Any]:
    """For a stage that writes no progress of its own: its time so far against its estimate."""
    return {"unit": None, "done": None, "total": None, "fraction": min(elapsed / expected, 0.99) if expected else None,
            "rate": None, "eta_s": max(expected - elapsed, 0.0), "estimated": True}


def stages(job: Job, opts: RunOptions, expected: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Each planned stage with its state: done, running, interrupted (pending, not running now),
    waiting (not reached) or skipped (the job ended without it, e.g. no synthetic image kept). A
    running stage without progress of its own gets it from `expected` (its estimated seconds)."""
    now = time.time()
    out = []
    running_seen = False
    for stage in run_plan(opts):
        output = stage.path(opts)
        state = stage_state(output)
        entry: dict[str, Any] = {"key": stage.key, "name": stage.title(opts), "state": "waiting", "seconds": None,
                                 "progress": None}
        if state.get("done") and output.exists():
            entry.update(state="done", seconds=state.get("seconds"))
        elif state.get("pending"):
            if job.state == "running" and not running_seen:
                running_seen = True
                elapsed = now - state["since"]
                shown = _stage_progress(stage, output, opts)
                if shown is None and expected and stage.key in expected:
                    shown = _estimated_progress(elapsed, expected[stage.key])
                entry.update(state="running", seconds=round(elapsed, 1), progress=shown)
            else:
                entry["state"] = "interrupted" if job.state != "done" else "skipped"
        elif job.state == "done":
            entry["state"] = "skipped"
        out.append(entry)
    return out


def loss_curve(opts: RunOptions) -> list[list[float]]:
    """[[step, loss], ...] of the swap trainer, thinned to LOSS_POINTS points."""
    points = []
    for row in _csv_rows(STAGE["swap"].path(opts) / TRAIN_LOG):
        loss = _float(row, "loss")
        if loss is not None:
            points.append([float(row["step"]), loss])
    if len(points) > LOSS_POINTS:
        idx = np.linspace(0, len(points) - 1, LOSS_POINTS).round().astype(int)
        points = [points[i] for i in idx]
    return points


def log_tail(job_dir: Path) -> str:
    path = job_dir / LOG_FILE
    try:
        with open(path, "rb") as fh:
            fh.seek(max(path.stat().st_size - LOG_TAIL_BYTES, 0))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(line for line in text.replace("\r", "\n").split("\n") if not NATIVE_NOISE.match(line))


def synthetic_faces(opts: RunOptions) -> list[Path]:
    folder = STAGE["synthetic"].path(opts) / "faces"
    return sorted(folder.glob("*.png"))[:GRID_FACES] if folder.is_dir() else []


def face_grid(paths: list[Path], cell: int = 96, columns: int = 8) -> bytes:
    """The kept synthetic faces as one PNG grid."""
    rows = math.ceil(len(paths) / columns)
    grid = np.full((rows * cell, columns * cell, 3), 255, np.uint8)
    for i, path in enumerate(paths):
        try:
            face = cv2.resize(read_crop(path), (cell, cell), interpolation=cv2.INTER_AREA)
        except MediaError:
            continue
        r, c = divmod(i, columns)
        grid[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = face
    ok, buf = cv2.imencode(".png", grid)
    return buf.tobytes() if ok else b""
