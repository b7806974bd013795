"""The study across people: the grid of `study.grid` over several subject -> destination pairs and
seeds, one cell at a time, each recorded in the ledger (`study.ledger`) the moment it ends.

Cells: for every pair and seed, all-real, and for every k the conditions real-k, real-k+warp,
real-k+gan and real-k+gan+warp, all at one step budget; then the longer budget: the first pair's
first seed at `long_ks` with `long_factor` times the steps. A cell that fails is recorded as failed
and the next one runs; `--resume` runs whatever the ledger lacks (failed cells included). Each
(pair, seed) has its own study folder, whose cached stages (extraction, the k photos, synthetic
faces) its cells share; a longer budget gets its own folder, so its models never replace the
base budget's.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from synthswap import __version__
from synthswap.cache import PIPELINE_VERSION
from synthswap.estimate import (CONVERT_S_PER_FRAME, DIRECTIONS_S_PER_SAMPLE, EVALUATE_S_PER_FRAME,
                                INVERT_S_PER_PHOTO_STEP, SWAP_SET_UP_S, SYNTHESIS_S_PER_IMAGE, swap_steps_per_s)
from synthswap.faceset import Faceset
from synthswap.locking import locked_output
from synthswap.media import write_png
from synthswap.options import option
from synthswap.study.grid import Study, StudyOptions
from synthswap.study.ledger import DONE, FAILED, METRICS, Cell, finished, read_ledger, record
from synthswap.study.report import conditions_grid, write_ledger_report
from synthswap.swap.loading import read_model_json

CONDITIONS = ("real", "real+warp", "real+gan", "real+gan+warp")
GRID_NAME = "conditions.png"  # in each study folder: frames of ../shared's people stay out of the repository


@dataclass(kw_only=True)
class PeopleOptions:
    """What the study across people adds to the grid's options."""

    seeds: list[int] = option([0, 1], "seeds, comma separated: each chooses the k photos (seed 0 evenly spaced, "
                                      "others at random) and the training noise", minimum=0)
    long_ks: list[int] = option([1, 5], "the longer budget's k (the first pair and seed only)", minimum=1,
                                flag="long-k")
    long_factor: int = option(5, "the longer budget: this many times --swap-steps (0: no longer budget)", minimum=0)


@dataclass(frozen=True)
class Pair:
    subject: str
    dest: str

    @property
    def name(self) -> str:
        return f"{Path(self.subject).stem}->{Path(self.dest).stem}"


def plan(pairs: list[Pair], grid: StudyOptions, people: PeopleOptions) -> list[Cell]:
    """Every cell of the study, in the order they run: a (pair, seed) unit's cells together (they share its
    data), every pair at the first seed before any at the next (a partial ledger spans people first)."""
    cells = []
    for seed in people.seeds:
        for pair in pairs:
            cells.append(Cell(pair.name, seed, 0, "all-real", grid.swap_steps))
            cells += [Cell(pair.name, seed, k, c, grid.swap_steps) for k in grid.ks for c in CONDITIONS]
    if people.long_factor:
        steps = grid.swap_steps * people.long_factor
        cells.append(Cell(pairs[0].name, people.seeds[0], 0, "all-real", steps))
        cells += [Cell(pairs[0].name, people.seeds[0], k, c, steps) for k in people.long_ks for c in CONDITIONS]
    return cells


def cell_seconds(cell: Cell, grid: StudyOptions, synthesizes: set[str]) -> float:
    """The reference machine's seconds for a cell (`synthswap.estimate`'s rates): its swap training,
    converting and judging the evaluation clip, and the synthetic faces of `synthesizes` (the engines
    whose faces for its k this cell is the first to need)."""
    steps_per_s = swap_steps_per_s(grid.swap_resolution, grid.batch_size, grid.swap_gan_power)
    seconds = SWAP_SET_UP_S + cell.swap_steps / steps_per_s
    seconds += grid.eval_max_frames * (CONVERT_S_PER_FRAME + EVALUATE_S_PER_FRAME)
    if "gan" in synthesizes:
        seconds += (INVERT_S_PER_PHOTO_STEP * cell.k * (grid.invert_steps + grid.pti_steps)
                    + DIRECTIONS_S_PER_SAMPLE * grid.directions_n + SYNTHESIS_S_PER_IMAGE["gan"] * grid.synthetic)
    if "warp" in synthesizes:
        seconds += SYNTHESIS_S_PER_IMAGE["warp"] * grid.synthetic
    return seconds


def remaining_seconds(cells: list[Cell], grid: StudyOptions, speed: float) -> float:
    """The cells' estimated seconds on this machine (`speed`: measured over modelled, so far); each
    k's synthetic faces are counted once, for the first of these cells that needs them."""
    made: set[tuple] = set()
    total = 0.0
    for cell in cells:
        needs = {(cell.pair, cell.seed, cell.k, cell.swap_steps, engine) for engine in cell.synthetic}
        total += cell_seconds(cell, grid, {data[-1] for data in needs - made})
        made |= needs
    return total * speed


class PeopleStudy:
    def __init__(self, pairs: list[Pair], grid: StudyOptions, people: PeopleOptions, ledger: Path, work: Path,
                 log: Callable[[str], None] = print):
        self.pairs = {p.name: p for p in pairs}
        self.grid, self.people = grid, people
        self.ledger, self.work, self.log = Path(ledger), Path(work), log
        self.cells = plan(pairs, grid, people)

    def missing(self) -> list[Cell]:
        done = finished(read_ledger(self.ledger))
        return [c for c in self.cells if c not in done]

    def summary_path(self) -> Path:
        return self.ledger.with_name(self.ledger.stem + "_summary.md")

    def run(self) -> int:
        """Run every missing cell; the number that failed."""
        with locked_output(self.work, "study folder"):
            todo = self.missing()
            modelled = measured = 0.0
            failures = 0
            self.log(f"[study] {len(self.cells) - len(todo)} of {len(self.cells)} cells in {self.ledger}; "
                     f"{len(todo)} to run, about {_duration(remaining_seconds(todo, self.grid, 1.0))} at the "
                     f"reference machine's rates")
            for i, cell in enumerate(todo):
                speed = measured / modelled if modelled else 1.0
                self.log(f"[study] cell {i + 1} of {len(todo)}: {cell.label()}; {len(todo) - i} remain, about "
                         f"{_duration(remaining_seconds(todo[i:], self.grid, speed))} left")
                start = time.monotonic()
                row = {**asdict(cell), "subject": self.pairs[cell.pair].subject, "dest": self.pairs[cell.pair].dest,
                       "synthswap_version": __version__, "pipeline_version": PIPELINE_VERSION,
                       "options": self._options_text()}
                try:
                    metrics, synthetic, precision = self._run_cell(cell)
                    row.update(status=DONE, synthetic_faces=synthetic, **{m: metrics.get(m) for m in METRICS})
                    # what `--precision auto` chose on this machine (bf16 or fp32): cells of one ledger may
                    # come from machines of either kind
                    row["options"] += f" swap_precision_used={precision}"
                except Exception as exc:  # noqa: BLE001 - a failed cell is recorded and the study goes on
                    failures += 1
                    row.update(status=FAILED, error=f"{type(exc).__name__}: {exc}"[:300])
                    self.log(f"[study] {cell.label()} failed: {row['error']}")
                seconds = time.monotonic() - start
                row.update(seconds=round(seconds, 1), finished=datetime.now(timezone.utc).isoformat(timespec="seconds"))
                record(self.ledger, row)
                self.write_report([self.folder(cell)])
                if row["status"] == DONE:
                    measured += seconds
                    modelled += remaining_seconds([cell], self.grid, 1.0)
            return failures

    def write_report(self, folders: list[Path] | None = None) -> list[Path]:
        """The ledger's summary and plots beside it, and the frame grid (`conditions.png`) of each study
        folder in `folders` (default: every one the study has); the files written."""
        rows = read_ledger(self.ledger)
        written = write_ledger_report(rows, self.grid.swap_steps, self.summary_path())
        done = finished(rows)
        for folder in folders if folders is not None else sorted({self.folder(c) for c in self.cells}):
            ks = sorted({c.k for c in self.cells if c.k and self.folder(c) == folder})
            grid = conditions_grid(folder, ks, {(c.k, c.condition) for c in done if self.folder(c) == folder})
            if grid is not None:
                write_png(folder / GRID_NAME, grid)
                written.append(folder / GRID_NAME)
        return written

    def folder(self, cell: Cell) -> Path:
        """The study folder of a cell's (pair, seed), its longer budget apart."""
        folder = self.work / cell.pair.replace("->", "_to_") / f"seed{cell.seed}"
        if cell.swap_steps != self.grid.swap_steps:
            folder = folder.with_name(f"{folder.name}_steps{cell.swap_steps}")
        return folder

    def _options_text(self) -> str:
        g = self.grid
        return (f"swap_resolution={g.swap_resolution} swap_init={g.swap_init} batch_size={g.batch_size} "
                f"synthetic={g.synthetic} engines={','.join(g.engines)} size={g.size} "
                f"eval_max_frames={g.eval_max_frames} precision={g.precision} swap_gan_power={g.swap_gan_power} "
                f"swap_warp_off_last={g.swap_warp_off_last}")

    def _run_cell(self, cell: Cell) -> tuple[dict, int, str]:
        """The cell's measures, how many synthetic faces it trained on (none passed a filter: 0) and the
        precision its swap model trained in."""
        pair = self.pairs[cell.pair]
        opts = replace(self.grid, subject_video=pair.subject, dest_video=pair.dest, out=str(self.folder(cell)),
                       seed=cell.seed, ks=[cell.k or min(self.grid.ks)], swap_steps=cell.swap_steps)
        study = Study(opts, self.log)
        study.prepare_data()
        condition = study.condition(cell.k or None, cell.synthetic)
        return (study.train_and_evaluate(condition), sum(len(Faceset.open(s)) for s in condition.sources[1:]),
                trained_precision(study.model_dir(condition)))


def trained_precision(model_dir: Path) -> str:
    """The precision each session of a swap model's training ran in ("fp32", "bf16"; "fp32+bf16" when
    it was resumed on another kind of machine), from its model.json."""
    history = read_model_json(model_dir).get("history", [])
    used = [str(h.get("precision", "?")).split(" ")[0] for h in history]
    return "+".join(dict.fromkeys(used)) or "?"


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
