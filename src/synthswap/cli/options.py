"""What the subcommands' parsers share: --device, --seed, --threads and --quiet defined once,
flags generated from an options dataclass, and the one way to report a refused request."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Iterable

import torch

from synthswap.options import (  # noqa: F401 - re-exported
    device_name,
    finite_float,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    unit_float,
)

_TYPES = {"int": int, "float": float, "str": str}


def add_common(p: argparse.ArgumentParser, seed: bool = True, threads: bool = True, quiet: bool = True) -> None:
    p.add_argument("--device", type=device_name, default="auto",
                   help="auto (CUDA if available, else CPU), cpu, cuda or cuda:N (default: auto)")
    if seed:
        p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    if threads:
        p.add_argument("--threads", type=positive_int, default=None,
                       help="CPU threads for torch (default: torch's choice); 1-2 on a shared machine")
    if quiet:
        p.add_argument("--quiet", action="store_true", help="no progress bars")


def apply_threads(args: argparse.Namespace) -> None:
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)


def fail(message: str, code: int = 2) -> int:
    """Report a refused request the one way every subcommand does: one `error:` line, an exit code."""
    print(f"error: {message}", file=sys.stderr)
    return code


def overlapping(out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None]) -> str | None:
    """The first of `inputs` that the output `out` is, is inside or holds, or None: an output
    folder that overlaps an input would write into the user's data or read its own output."""
    o = Path(out).resolve()
    for given in inputs:
        if given is None:
            continue
        i = Path(given).resolve()
        if o == i or i in o.parents or o in i.parents:
            return str(given)
    return None


def add_flags(p: argparse.ArgumentParser, cls: type, skip: set[str] | frozenset[str] = frozenset()) -> None:
    """One `--name-with-dashes` flag per field of the dataclass `cls` that carries help (see
    `synthswap.options.option`), with the field's default, type and help."""
    for f in fields(cls):
        if f.name in skip or "help" not in f.metadata:
            continue
        kwargs = {k: v for k, v in f.metadata.items() if k != "help"}
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        if str(f.type) == "bool":
            kwargs["action"] = "store_true"
        elif "type" not in kwargs:
            kwargs["type"] = _TYPES[str(f.type).replace(" | None", "")]
        help_text = f.metadata["help"]
        if default is not None and "action" not in kwargs:
            help_text += f" (default: {default})"
        p.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=default, help=help_text, **kwargs)


def from_args(cls: type, args: argparse.Namespace, **given: Any) -> Any:
    """The dataclass `cls` from parsed flags (fields `add_flags` made) and the `given` values."""
    values = {f.name: getattr(args, f.name) for f in fields(cls) if f.name not in given and hasattr(args, f.name)}
    return cls(**values, **given)
