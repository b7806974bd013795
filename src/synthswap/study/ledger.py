"""The study's results ledger: one CSV row per finished (or failed) cell, kept in the repository.

A cell is one swap model trained and judged: a pair of people (subject -> destination), a seed, k
real photos, a condition (all-real, real-k, real-k+gan, real-k+warp, real-k+gan+warp) and a step
budget. The ledger is what `synthswap study --resume` reads to run only the cells it lacks, so a
study spreads over many sessions; each row carries the options and versions that made it. The
file is rewritten whole under a temporary name and renamed, so a crash never leaves half a row.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthswap import atomic

# What the judge and the other measures said (metrics.evaluate's summary keys).
METRICS = ("dlib_distance_to_subject", "dlib_subject_closer_rate", "identity_to_subject", "subject_closer_rate",
           "sharpness_ratio", "sharpness_ratio_half", "expression_error", "pose_error_deg")
FIELDS = ("pair", "subject", "dest", "seed", "k", "condition", "swap_steps", "status", "synthetic_faces", *METRICS,
          "seconds",
          "finished", "synthswap_version", "pipeline_version", "options", "error")
DONE, FAILED = "done", "failed"


@dataclass(frozen=True, order=True)
class Cell:
    pair: str  # "subject->dest", by the videos' stems
    seed: int
    k: int  # 0 for all-real
    condition: str  # "all-real", "real", "real+gan", "real+warp", "real+gan+warp"
    swap_steps: int

    @property
    def synthetic(self) -> tuple[str, ...]:
        """The synthetic sets the condition adds to the real photos ("real+gan+warp": gan, warp)."""
        return tuple(self.condition.split("+")[1:])

    def key(self) -> tuple[str, int, int, str, int]:
        return self.pair, self.seed, self.k, self.condition, self.swap_steps

    def label(self) -> str:
        name = "all-real" if self.condition == "all-real" else self.condition.replace("real", f"real-{self.k}", 1)
        return f"{self.pair} seed {self.seed} {name} ({self.swap_steps} steps)"


def cell_of(row: dict[str, str]) -> Cell:
    return Cell(row["pair"], int(row["seed"]), int(row["k"]), row["condition"], int(row["swap_steps"]))


def read_ledger(path: str | Path) -> list[dict[str, str]]:
    """The ledger's rows (none when the file does not exist yet); ValueError for a foreign CSV."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = set(FIELDS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: not a study ledger (no column {', '.join(sorted(missing))})")
        return list(reader)


def record(path: str | Path, row: dict[str, Any]) -> None:
    """Add `row` to the ledger, replacing an earlier row of the same cell (a failed cell run again)."""
    rows = [r for r in read_ledger(path) if cell_of(r) != cell_of({k: str(v) for k, v in row.items()})]
    rows.append({name: _text(row.get(name)) for name in FIELDS})
    rows.sort(key=lambda r: cell_of(r).key())
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(Path(path), buffer.getvalue())


def other_pipelines(rows: list[dict[str, str]], version: int) -> dict[str, int]:
    """Pipeline versions other than `version` among the ledger's rows -> how many cells each made. A
    new pipeline version changes what a stage makes (cache.PIPELINE_VERSION), so its cells would not
    compare with theirs."""
    made_by = Counter(r.get("pipeline_version") or "?" for r in rows)
    made_by.pop(str(version), None)
    return dict(made_by)


def finished(rows: list[dict[str, str]]) -> set[Cell]:
    """The cells with results: a failed one is run again by the next --resume."""
    return {cell_of(r) for r in rows if r["status"] == DONE}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
