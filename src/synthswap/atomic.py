"""Atomic file writes: write beside the target under a temporary name, then rename.

A reader, or a run killed mid-write, never finds half a file under the final name:
it finds the previous version or the new one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = False) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        if fsync:  # for files that must survive a power cut too, such as a faceset manifest
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_text(path: str | os.PathLike, text: str, fsync: bool = False) -> None:
    write_bytes(path, text.encode("utf-8"), fsync)


def write_json(path: str | os.PathLike, data: Any, indent: int = 2) -> None:
    write_text(path, json.dumps(data, indent=indent) + "\n")
