"""Options declared once: a dataclass field carries its default, help, bounds and choices, and the
command line's flags (`synthswap.cli.options.add_flags`), the web form (`synthswap.serve.options`),
the saved options and the checks (`problems`) are all generated from it.

    @dataclass(kw_only=True)
    class RunOptions(PipelineOptions):
        swap_minutes: float = option(15.0, "swap training budget in minutes", above=0)

A field without help is not an option (an input path, a value the caller sets). A subclass that
needs another default than its base says why (`redefault`). This module imports nothing heavy:
`synthswap --help` reads it.
"""

from __future__ import annotations

import math
import re
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, Callable, Mapping

_DEVICE = re.compile(r"(auto|cpu|cuda(:\d+)?)")


class OptionError(ValueError):
    """A value that is not a valid setting; the message names the setting by its flag."""


def option(default: Any, help: str, *, minimum: float | None = None, maximum: float | None = None,  # noqa: A002
           above: float | None = None, choices: tuple | None = None,
           check: Callable[[Any], str | None] | None = None, flag: str | None = None, metavar: str | None = None,
           why: str | None = None, spaced: bool | None = None) -> Any:
    """A dataclass field that is an option: `help` says what it does (no measured figures: those
    belong in the docs), `minimum`/`maximum` (inclusive), `above` (exclusive), `choices` and
    `check` (value -> message or None) say what it accepts (each item's, for a list), `flag`
    names it on the command line when that is not `--name-with-dashes`, `why` says why a default
    differs from its base's, and `spaced` makes a list's flag take its items as separate words
    (`--src-weights 1 0.5`) instead of comma-separated."""
    meta = {k: v for k, v in dict(help=help, minimum=minimum, maximum=maximum, above=above, choices=choices,
                                  check=check, flag=flag, metavar=metavar, why=why, spaced=spaced).items()
            if v is not None}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def redefault(cls: type, name: str, default: Any, why: str, **changes: Any) -> Any:
    """The option `name` of the dataclass `cls` with another default, and the reason for it."""
    meta = dict(next(f for f in fields(cls) if f.name == name).metadata)
    meta.update(changes, why=why)
    return option(default, **meta)


def is_option(f: Field) -> bool:
    return "help" in f.metadata


def option_fields(cls: Any) -> list[Field]:
    return [f for f in fields(cls) if is_option(f)]


def flag_of(f: Field) -> str:
    return "--" + f.metadata.get("flag", f.name.replace("_", "-"))


def kind_of(f: Field) -> str:
    """int, float, str or bool; list[int] and list[str] for comma-separated lists."""
    return str(f.type).replace(" | None", "")


def optional(f: Field) -> bool:
    return "None" in str(f.type)


def default_of(f: Field) -> Any:
    return f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc,operator]


def _scalar(text: str, kind: str) -> Any:
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise OptionError(f"'{text}' is not a whole number") from None
    if kind == "float":
        try:
            value = float(text)
        except ValueError:
            raise OptionError(f"'{text}' is not a number") from None
        if not math.isfinite(value):  # a nan weight or radius silently poisons every result
            raise OptionError(f"must be a finite number, not {text}")
        return value
    return text


def convert(f: Field, text: str) -> Any:
    """The typed value of option `f` written as `text` (a flag's argument, a form field); the
    bounds are checked apart (`problem`), so the CLI and the web form refuse with one message."""
    kind = kind_of(f)
    if kind.startswith("list["):
        return [_scalar(part.strip(), kind[5:-1]) for part in text.split(",") if part.strip()]
    return _scalar(text, kind)


def convert_item(f: Field, text: str) -> Any:
    """One item of the list option `f` (a `spaced` flag's word)."""
    return _scalar(text, kind_of(f)[5:-1])


def _value_problem(meta: Mapping[str, Any], value: Any) -> str | None:
    low, high, above = meta.get("minimum"), meta.get("maximum"), meta.get("above")
    if low is not None and high is not None and not low <= value <= high:
        return f"must be between {low} and {high}, not {value}"
    if low is not None and value < low:
        return f"must be at least {low}, not {value}"
    if high is not None and value > high:
        return f"must be at most {high}, not {value}"
    if above is not None and not value > above:
        return f"must be more than {above}, not {value}"
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        return f"must be one of {', '.join(map(str, choices))}, not {value}"
    check = meta.get("check")
    return check(value) if check is not None else None


def problem(f: Field, value: Any) -> str | None:
    """Why `value` is not a valid setting of option `f` ("--flag must be ..."), or None."""
    if value is None and optional(f):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{flag_of(f)} must be a finite number, not {value}"
    values = value if isinstance(value, list) else [value]
    for v in values:
        reason = _value_problem(f.metadata, v)
        if reason is not None:
            return f"{flag_of(f)} {reason}"
    return None


def problems(opts: Any, names: set[str] | None = None) -> str | None:
    """The first option of the dataclass instance `opts` (of `names`, if given) whose value its
    declaration refuses, as a message; None when every one is valid."""
    for f in option_fields(opts):
        if names is None or f.name in names:
            reason = problem(f, getattr(opts, f.name))
            if reason is not None:
                return reason
    return None


def check_options(opts: Any) -> None:
    """OptionError unless every option of `opts` is valid."""
    reason = problems(opts)
    if reason is not None:
        raise OptionError(reason)


@dataclass(kw_only=True)
class ComputeOptions:
    """What every command that computes shares. A setting of the same kind (a numeric precision,
    say) is one more field here: every such command's flags, `run`, `study` and the web app's
    job get it from this declaration."""

    device: str = option("auto", "auto (CUDA if available, else CPU), cpu, cuda or cuda:N",
                         check=lambda v: None if _DEVICE.fullmatch(v) else f"must be auto, cpu, cuda or cuda:N, not {v}")
    threads: int | None = option(None, "CPU threads for torch (default: torch's choice); 1-2 on a shared machine",
                                 minimum=1, metavar="N")
    seed: int = option(0, "random seed")
    progress: bool = option(True, "no progress bars", flag="quiet")
    precision: str = option("auto", "the networks' arithmetic: auto (bf16 where this machine runs it faster: a GPU "
                                    "with bf16, a CPU with AMX or AVX-512 BF16 units; fp32 elsewhere), fp32 or bf16",
                            choices=("auto", "fp32", "bf16"))


def apply_threads(opts: Any) -> None:
    """Give torch the CPU threads `opts.threads` asks for (None: torch's choice)."""
    if getattr(opts, "threads", None):
        import torch  # only where it is used: `--help` loads no torch

        torch.set_num_threads(opts.threads)
