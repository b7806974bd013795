"""What the subcommands' parsers share: flags generated from an options dataclass (the shared
--device, --threads, --seed and --quiet come from `synthswap.options.ComputeOptions`), the check
of those flags' values, and the one way to report a refused request."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, Iterable

from synthswap.options import (  # noqa: F401 - re-exported for the command modules
    ComputeOptions,
    OptionError,
    apply_threads,
    convert,
    convert_item,
    default_of,
    flag_of,
    kind_of,
    option_fields,
    problem,
)

CHECKED = "_checked_options"  # on the parsed args: the generated flags whose values `check_flags` checks


def add_common(p: argparse.ArgumentParser, seed: bool = True, threads: bool = True, quiet: bool = True,
               device: bool = True, precision: bool = False) -> None:
    """The flags of ComputeOptions (device, threads, seed, quiet, precision), less those a command has
    no use for (`precision` only where the command's networks run under it)."""
    skip = {name for name, keep in (("seed", seed), ("threads", threads), ("progress", quiet), ("device", device),
                                    ("precision", precision)) if not keep}
    add_flags(p, ComputeOptions, skip=skip)


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


def _converter(f, item: bool = False) -> Any:
    def parse(text: str) -> Any:
        try:
            return convert_item(f, text) if item else convert(f, text)
        except OptionError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = kind_of(f)  # what argparse names in "invalid ... value"
    return parse


def add_flags(p: argparse.ArgumentParser, cls: type, skip: set[str] | frozenset[str] = frozenset(),
              defaults: dict[str, Any] | None = None, unset: str | None = None) -> None:
    """One flag per option of the dataclass `cls` (see `synthswap.options.option`), with its
    default (or this command's, from `defaults`), type, choices and help; the values are checked
    after parsing (`check_flags`), by the same declarations and with the same messages as the
    web form's. With `unset` (where an unset flag's value comes from, e.g. "--init's model"),
    every flag defaults to None, which the command replaces from there."""
    checked = list(p.get_default(CHECKED) or [])
    for f in option_fields(cls):
        if f.name in skip:
            continue
        meta = f.metadata
        default = defaults[f.name] if defaults and f.name in defaults else default_of(f)
        kwargs: dict[str, Any] = {"dest": f.name, "default": None if unset else default}
        if kind_of(f) == "bool":
            kwargs["action"] = "store_false" if default else "store_true"
        else:
            kwargs["type"] = _converter(f, item=bool(meta.get("spaced")))
            if meta.get("spaced"):
                kwargs["nargs"] = "+"
            if "metavar" in meta:
                kwargs["metavar"] = meta["metavar"]
            elif "choices" in meta:
                kwargs["metavar"] = "{" + ",".join(map(str, meta["choices"])) + "}"
        help_text = meta["help"]
        if default is not None and kind_of(f) != "bool":
            shown = ",".join(map(str, default)) if isinstance(default, list) else default
            why = meta.get("why") if not (defaults and f.name in defaults) else None
            shown = f"{unset}, else {shown}" if unset else shown
            help_text += f" (default: {shown}" + (f"; {why})" if why else ")")
        p.add_argument(flag_of(f), help=help_text, **kwargs)
        checked.append(f)
    p.set_defaults(**{CHECKED: checked})


def check_flags(args: argparse.Namespace) -> str | None:
    """The first generated flag whose value its declaration refuses, as a message, or None (an
    unset flag, None, is left to the command: see `add_flags`' `unset`)."""
    for f in getattr(args, CHECKED, ()):
        value = getattr(args, f.name)
        reason = problem(f, value) if value is not None else None
        if reason is not None:
            return reason
    return None


def from_args(cls: type, args: argparse.Namespace, **given: Any) -> Any:
    """The dataclass `cls` from parsed flags (fields `add_flags` made) and the `given` values."""
    values = {f.name: getattr(args, f.name) for f in fields(cls) if f.name not in given and hasattr(args, f.name)}
    return cls(**values, **given)
