"""Atomic file writes: write beside the target under a temporary name, then rename.

A reader, or a run killed mid-write, never finds half a file under the final name:
it finds the previous version or the new one. Temporary names are unique per process
and call, so two writers never write into each other's temporary file.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from typing import Any


_TEMP_NAME = re.compile(r"^\..*\.\d+-[0-9a-f]{8}\.tmp(\.\w+)?$")


def temp_path(path: str | os.PathLike) -> Path:
    """A unique hidden name beside `path`, keeping its extension (encoders choose the format by it)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")


def remove_leftovers(folder: str | os.PathLike) -> None:
    """Delete the temporary files that writers killed mid-write (kill -9, power cut) left in `folder`.

    Only names made by `temp_path` are touched; call it while holding the folder's lock
    (`synthswap.locking`), when no other writer can be half-way through one.
    """
    for path in Path(folder).iterdir():
        if _TEMP_NAME.match(path.name) and path.is_file():
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of `path` whose writer is gone (kill -9, power cut), and return them.

    Where no lock guards the folder (a video written beside the user's files), a temporary file is
    known to be dead by its name: `temp_path` puts the writer's pid in it. Only names `temp_path`
    makes for this very `path` are touched, never another file of the user's.
    """
    path = Path(path)
    own = re.compile(rf"^\.{re.escape(path.stem)}\.(\d+)-[0-9a-f]{{8}}\.tmp{re.escape(path.suffix)}$")
    removed: list[Path] = []
    if not path.parent.is_dir():
        return removed
    for candidate in path.parent.iterdir():
        match = own.match(candidate.name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))) \
                and candidate.is_file() and not candidate.is_symlink():
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = False) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    fh = open(tmp, "xb")  # "x": never follow or reuse whatever is already at that name
    try:
        with fh:
            fh.write(data)
            if fsync:  # for files that must survive a power cut too, such as a faceset's info file
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:  # Ctrl-C included: leave no temporary file behind
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str, fsync: bool = False) -> None:
    write_bytes(path, text.encode("utf-8"), fsync)


def write_json(path: str | os.PathLike, data: Any, indent: int = 2) -> None:
    write_text(path, json.dumps(data, indent=indent) + "\n")
