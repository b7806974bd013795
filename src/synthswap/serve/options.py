"""A job's request: which of `synthswap run`'s options the page offers, how form values become
RunOptions, and the job.json that tells the worker what to run.

The options are RunOptions' own fields (defaults, help, types and choices come from there), so
the page, the CLI and `run` cannot disagree. Model paths are not offered: a web form must not
name arbitrary folders on the server, so --gan stays the shipped prior and --swap-init is
'shipped' or 'none'.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from synthswap import atomic
from synthswap.options import OptionError, convert, default_of, flag_of, kind_of, optional, problem
from synthswap.pretrained import SHIPPED_NAME
from synthswap.run import RunOptions

# In the order the form shows them, each with the plain label the page gives it (the help, the
# default and the limits are the declaration's own; the flag is shown beside the label).
WEB_OPTIONS = {
    "engine": "How extra photos of the subject are made",
    "synthetic": "Extra photos to make",
    "swap_minutes": "Training time (minutes)",
    "swap_steps": "Training steps (at most)",
    "swap_resolution": "Face resolution (pixels)",
    "swap_id_weight": "Identity supervision of the face model (0: off)",
    "enhance_minutes": "Teach the face enhancer the subject's detail (minutes)",
    "swap_init": "Start the face model from",
    "batch_size": "Faces per training step",
    "size": "Face crop size (pixels)",
    "every_n": "Train on every N-th frame of the video",
    "subject_every_n": "Subject video: use every N-th frame",
    "subject_max_frames": "Subject video: use at most N frames",
    "train_gan": "Train a personal GAN prior first (slow)",
    "gan_minutes": "Personal prior's training time (minutes)",
    "seed": "Random seed (the same seed repeats a job)",
    "face": "Which face of the video to replace",
}
CHOICES = {"swap_init": (SHIPPED_NAME, "none")}  # a web form names no folder on the server
# A web form names no file on the server either: --face takes a position here, or "person K", the
# K-th person the destination's upload listed (the job gets that person's picture as --face PHOTO).
WEB_FACE_HINT = "'largest', a position from the left (1, 2, ...) or 'person K' (a person the video's upload listed)"
PERSON = "person "


def web_person(value: str) -> int | None:
    """K of a form's "person K" face choice, else None."""
    number = value[len(PERSON):] if value.startswith(PERSON) else ""
    return int(number) if number.isascii() and number.isdigit() and 1 <= int(number) <= 99 else None


def _web_face(value: str) -> bool:
    return value == "largest" or web_person(value) is not None or (
        value.isascii() and value.isdigit() and 1 <= int(value) <= 99)


@dataclass(frozen=True)
class Preset:
    """A named set of settings the form offers first; what it does not name keeps `run`'s default."""

    name: str
    label: str
    summary: str
    values: dict[str, Any]


PRESETS = (
    Preset("quick", "Quick look", "warped copies of the photos instead of the GAN's, 4 minutes of training: "
                                  "a first look at the face", {"engine": "warp", "swap_minutes": 4.0}),
    Preset("good", "Good", "synthswap run's defaults: 500 photos made by the GAN, 15 minutes of training", {}),
    Preset("best", "Best", "the defaults with an hour of training: the face keeps improving with more minutes "
                           "(docs/swap.md)", {"swap_minutes": 60.0}),
)
DEFAULT_PRESET = "good"

JOB_FILE = "job.json"  # in the job's folder: inputs and options, what the worker runs
OUT_NAME = "out.mp4"

__all__ = ["OptionError", "PRESETS", "Preset", "describe", "parse", "presets", "settings_of", "write_job_file",
           "run_options", "JOB_FILE", "OUT_NAME"]


def _fields() -> dict[str, Any]:
    return {f.name: f for f in fields(RunOptions)}


def describe() -> list[dict[str, Any]]:
    """The form's fields: name, label, flag, help, default, kind (int/float/str/bool), choices, optional."""
    out = []
    all_fields = _fields()
    for name, label in WEB_OPTIONS.items():
        f = all_fields[name]
        out.append({"name": name, "label": label, "flag": flag_of(f), "help": f.metadata["help"],
                    "default": default_of(f), "kind": kind_of(f),
                    "choices": list(CHOICES.get(name, f.metadata.get("choices", ()))), "optional": optional(f)})
    return out


def presets() -> list[dict[str, Any]]:
    """The presets as the form shows them, each with every setting it gives (defaults included); the
    face to replace is the inputs' business, not a preset's."""
    defaults = {name: default_of(f) for name, f in _fields().items() if name in WEB_OPTIONS and name != "face"}
    return [{"name": p.name, "label": p.label, "summary": p.summary, "values": {**defaults, **p.values},
             "default": p.name == DEFAULT_PRESET} for p in PRESETS]


def settings_of(values: dict[str, Any]) -> list[dict[str, Any]]:
    """A job's settings as its page lists them: label, flag, value, and whether it is run's default."""
    all_fields = _fields()
    return [{"label": label, "flag": flag_of(all_fields[name]), "value": values.get(name),
             "default": values.get(name) == default_of(all_fields[name])}
            for name, label in WEB_OPTIONS.items() if name in values]


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
        if name == "face" and not _web_face(value):
            raise OptionError(f"{flag_of(f)} must be {WEB_FACE_HINT}, not {value}")
        if name == "face" and web_person(value) is not None:
            out[name] = value  # made a photo when the job is created (serve/submit.py)
            continue
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
