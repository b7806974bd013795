"""Cached pipeline stages: a stage is skipped when its inputs and parameters did not change.

Each stage writes one output (a folder or a file) under a work directory. Beside it a
small JSON marker records the key of what produced it: a hash of the stage's parameters,
of its inputs' fingerprints (size and modification time of files; the key of the stage
that made a folder) and of PIPELINE_VERSION (so outputs of older code are rebuilt). Before a stage runs, the key is written as "pending"; if the
run is interrupted, the next run finds the same pending key and lets the stage resume
(extraction appends, trainers resume from their checkpoint). If the key changed, the old
output is removed and the stage starts over. An output without a marker was not made by a
stage (it is the user's), so it is never removed: the stage refuses to run instead.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from synthswap import atomic, space

MARKER_SUFFIX = ".stage.json"
# Part of every stage's key. Bump it when a change to synthswap makes some stage produce different
# output from the same inputs and parameters (a fixed bug, a new augmentation), so that work
# directories made by the older code are rebuilt instead of being reported "up to date".
# 2: swap augmentation as batched tensor ops (swap/data.augment_batch), GPU-trained shipped models.
# 3: bf16 on CPUs with bf16 units, the face composed at its size in the frame, the enhancer, media
#    decoded as players show it (rotation, timestamps).
# 4: convert tracks the face from frame to frame (the detector every few frames, as extraction does),
#    colour statistics in one OpenCV pass, encoding on its own thread.
# 5: convert's watermark at PSNR 44 dB, its sign changing with the frame index (issue 27).
# 6: evaluate reports sharpness_ratio_half (an older evaluation.json lacks it).
# 7: run and study train the swap with a patch discriminator (GAN power 0.1).
# 8: the shipped 128 px swap model, version 2 (its pretraining continued with GAN power): a stage's
#    key names `--init shipped`, not the weights behind it.
# 9: synthetic faces resampled with Lanczos (the warp engine and every candidate's re-alignment):
#    bilinearly they kept a quarter of their photos' fine detail.
# 10: convert warps the swapped face into the frame bicubically (swap/convert.FACE_RESAMPLE): at 1:1 a
#    bilinear warp kept 0.77 of a face's detail after a 2x downscale.
PIPELINE_VERSION = 10


class StageError(Exception):
    """A stage that cannot run without destroying something it did not make."""


class StageInterrupted(KeyboardInterrupt):
    """A stage stopped by Ctrl-C or SIGTERM after saving what it had (a trainer's checkpoint).
    Its marker stays "pending", so the same command resumes it; the CLI exits with 130."""


def disk_full_message(name: str, output: Path, exc: OSError) -> str:
    """One line for a full disk: the stage, the file it was writing, the space left, what to do."""
    where = Path(exc.filename) if exc.filename else output
    try:
        free = f"{space.free_bytes(where.parent) / 1e6:.0f} MB free"
    except OSError:
        free = "free space unknown"
    return (f"[{name}] the disk is full ({free}) writing {where}; free some space and run the same command "
            f"again: finished stages are kept and this one resumes")


def _check_space(name: str, output: Path, needed: int) -> None:
    free = space.free_bytes(output.parent)
    if needed > free:
        raise StageError(f"[{name}] needs about {space.megabytes(needed)} more in {output.parent} and "
                         f"{space.megabytes(free)} are free; free some space (or choose another --work) and run "
                         f"the same command again: finished stages are kept")


def fresh(path: Path) -> None:
    """Remove a stage's old output (folder or file) so it can start clean."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _marker(output: Path) -> Path:
    return output.with_name(f".{output.name}{MARKER_SUFFIX}")


def stage_state(output: str | os.PathLike) -> dict[str, Any]:
    """What the marker beside `output` says, for callers that show progress: {} when no stage has
    started it, else "pending" (running or interrupted) or "done" (with "seconds"), and "since":
    when the marker was last written (the stage's start, or its end once done)."""
    marker = _marker(Path(output))
    try:
        state = json.loads(marker.read_text(encoding="utf-8"))
        return {**state, "since": marker.stat().st_mtime}
    except (OSError, ValueError):
        return {}  # not started, or a marker being replaced right now (written atomically)


def made_by_stage(output: str | os.PathLike) -> bool:
    """Whether `output` has a stage marker beside it, i.e. a stage made it (and may remake it)."""
    return _marker(Path(output)).is_file()


def fingerprint(path: str | os.PathLike) -> str:
    """What identifies an input: a stage output's key, or the size and time of every file."""
    path = Path(path)
    marker = _marker(path)
    if marker.is_file():
        done = json.loads(marker.read_text(encoding="utf-8")).get("done")
        if done:
            return f"stage:{done}"
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        parts = [f"{p.relative_to(path)}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files]
        return "dir:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()
    if path.is_file():
        st = path.stat()
        return f"file:{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    raise FileNotFoundError(f"{path}: no such file or folder")


def stage_key(params: dict[str, Any], inputs: list[str | os.PathLike]) -> str:
    blob = json.dumps({"params": params, "inputs": [fingerprint(p) for p in inputs], "pipeline": PIPELINE_VERSION},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_stage(
    name: str,
    output: str | os.PathLike,
    params: dict[str, Any],
    inputs: list[str | os.PathLike],
    build: Callable[[Path, bool], Any],
    log: Callable[[str], None] = print,
    needs: Callable[[], int] | None = None,
) -> bool:
    """Run `build(output, resume)` unless `output` is up to date; returns True if it ran.

    `resume` is True when an earlier run of the same stage with the same key was
    interrupted, so `build` should continue from what it left rather than start over.
    `needs()`: the bytes the stage will have on the disk when done (`synthswap.space`); a stage
    the disk cannot hold is refused before it writes anything (what it already has counts).
    """
    output = Path(output)
    marker = _marker(output)
    key = stage_key(params, inputs)
    state = json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else {}
    if state.get("done") == key and output.exists():
        log(f"[{name}] up to date, skipped")
        return False
    resume = state.get("pending") == key and output.exists()
    if not resume and output.exists() and not state:
        # No marker: not made by this stage (a user's file or folder), so it is never removed.
        raise StageError(f"{output}: exists and was not made by synthswap's [{name}] stage; move it away "
                         f"or choose another --out / --work")
    if needs is not None:  # what the stage has already (resumed) or will remove (rerun) is space for it
        _check_space(name, output, needs() - space.used_bytes(output))
    if not resume:
        fresh(output)  # inputs or parameters changed: the old output would mislead the stages after it
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(marker, {"pending": key, "params": params})
    log(f"[{name}] {'resuming' if resume else 'running'}")
    start = time.monotonic()
    try:
        build(output, resume)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise StageError(disk_full_message(name, output, exc)) from exc
    atomic.write_json(marker, {"done": key, "params": params, "seconds": round(time.monotonic() - start, 1)})
    log(f"[{name}] done in {time.monotonic() - start:.0f} s")
    return True
