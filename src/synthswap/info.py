"""Reading the small JSON file that describes an output folder (faceset.json, gan.json, model.json, ...).

Every stage's output carries one; a missing, unreadable or malformed one must become the
stage's own error with a hint saying which command makes it, never a traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def read_info_json(path: str | os.PathLike, error: type[Exception], missing_hint: str) -> dict[str, Any]:
    """The JSON object in `path`, or `error(...)`: '<folder>: <missing_hint>' when the file is not
    there, '<path>: corrupt (...)' when it is not a readable JSON object."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path.parent}: {missing_hint}")
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:  # unreadable, binary, not JSON
        raise error(f"{path}: corrupt ({exc})") from exc
    if not isinstance(data, dict):
        raise error(f"{path}: corrupt (a JSON {type(data).__name__}, not an object)")
    return data
