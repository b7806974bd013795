"""Options declared once: a dataclass field carries its default and its help text, and the
command line's flags are generated from it (see `synthswap.cli.options.add_flags`).

    @dataclass
    class RunOptions:
        swap_minutes: float = option(60.0, "swap training budget in minutes")
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import field
from typing import Any

_DEVICE = re.compile(r"(auto|cpu|cuda(:\d+)?)")


def option(default: Any, help: str, **argparse_kwargs: Any) -> Any:  # noqa: A002 - argparse's name
    """A dataclass field whose flag `--name-with-dashes` says `help`; extra keywords (choices, metavar,
    type) go to argparse as they are."""
    return field(default=default, metadata={"help": help, **argparse_kwargs})


def device_name(text: str) -> str:
    """A device name torch and `training.resolve_device` accept: auto, cpu, cuda or cuda:N.
    (The error type is argparse's, so a flag of this type prints the message as it is.)"""
    if not _DEVICE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"'{text}' is not a device: use auto, cpu, cuda or cuda:N")
    return text


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
    return value


def positive_int(text: str) -> int:
    return _whole_number(text, 1)


def nonnegative_int(text: str) -> int:
    return _whole_number(text, 0)


def finite_float(text: str) -> float:
    """A number that is not nan or infinite (a nan weight or radius silently poisons every result)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def nonnegative_float(text: str) -> float:
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, not {text}")
    return value


def unit_float(text: str) -> float:
    """A probability or fraction: 0 to 1."""
    value = finite_float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value
