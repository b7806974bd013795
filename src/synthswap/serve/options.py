"""A job's request: which of `synthswap run`'s options the page offers, how form values become
RunOptions, and the job.json that tells the worker what to run.

The options are RunOptions' own fields (defaults, help, types and choices come from there), so
the page, the CLI and `run` cannot disagree. Model paths are not offered: a web form must not
name arbitrary folders on the server, so --gan stays the shipped prior and --swap-init is
'shipped' or 'none'.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from synthswap import atomic
from synthswap.options import OptionError, convert, default_of, flag_of, kind_of, optional, problem
from synthswap.pretrained import SHIPPED_NAME
from synthswap.run import RunOptions

# In the order the form shows them.
WEB_OPTIONS = ("engine", "synthetic", "swap_minutes", "swap_steps", "swap_resolution", "swap_init", "batch_size",
               "size", "every_n", "subject_every_n", "subject_max_frames", "train_gan", "gan_minutes", "seed")
CHOICES = {"swap_init": (SHIPPED_NAME, "none")}  # a web form names no folder on the server

JOB_FILE = "job.json"  # in the job's folder: inputs and options, what the worker runs
OUT_NAME = "out.mp4"

__all__ = ["OptionError", "describe", "parse", "write_job_file", "run_options", "JOB_FILE", "OUT_NAME"]


def _fields() -> dict[str, Any]:
    return {f.name: f for f in fields(RunOptions)}


def describe() -> list[dict[str, Any]]:
    """The form's fields: name, flag, help, default, kind (int/float/str/bool), choices, optional."""
    out = []
    all_fields = _fields()
    for name in WEB_OPTIONS:
        f = all_fields[name]
        out.append({"name": name, "flag": flag_of(f), "help": f.metadata["help"], "default": default_of(f),
                    "kind": kind_of(f), "choices": list(CHOICES.get(name, f.metadata.get("choices", ()))),
                    "optional": optional(f)})
    return out


def parse(values: dict[str, Any]) -> dict[str, Any]:
    """Form values (strings, or booleans for check boxes) -> RunOptions keyword arguments.

    A missing or empty value takes the default; anything else is converted and checked by the
    field's own declaration (`synthswap.options`), so the page refuses exactly what the CLI
    refuses, with the same message ("--size must be between 32 and 1024, not 16").
    """
    unknown = sorted(set(values) - set(WEB_OPTIONS))
    if unknown:
        raise OptionError(f"unknown setting: {', '.join(unknown)}")
    all_fields = _fields()
    out: dict[str, Any] = {}
    for name in WEB_OPTIONS:
        f = all_fields[name]
        raw = values.get(name)
        if kind_of(f) == "bool":
            if raw is not None and not isinstance(raw, bool):
                raise OptionError(f"{flag_of(f)}: must be true or false")
            out[name] = bool(raw) if raw is not None else default_of(f)
            continue
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            out[name] = default_of(f)
            continue
        try:
            value = convert(f, str(raw).strip())
        except OptionError as exc:
            raise OptionError(f"{flag_of(f)}: {exc}") from None
        if name in CHOICES and value not in CHOICES[name]:
            raise OptionError(f"{flag_of(f)} must be one of {', '.join(CHOICES[name])}, not {value}")
        reason = problem(f, value)
        if reason is not None:
            raise OptionError(reason)
        out[name] = value
    return out


def write_job_file(job_dir: Path, subject: list[str], video: str, options: dict[str, Any]) -> None:
    atomic.write_json(job_dir / JOB_FILE, {"subject": subject, "video": video, "options": options})


def run_options(job_dir: Path, device: str = "auto") -> RunOptions:
    """The RunOptions of the job in `job_dir` (its output and work directory are inside it)."""
    spec = json.loads((job_dir / JOB_FILE).read_text(encoding="utf-8"))
    return RunOptions(subject=spec["subject"], video=spec["video"], out=str(job_dir / OUT_NAME), progress=False,
                      device=device, **spec["options"])
