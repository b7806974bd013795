"""The study across people (issue 23): one ledger row per cell, written the moment the cell ends;
`--resume` runs only what the ledger lacks (failed cells again); a failed cell is recorded and the
others go on; the summary's paired differences, intervals and gap recovered."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from synthswap.cache import PIPELINE_VERSION
from synthswap.cli import main
from synthswap.study.analysis import (bootstrap_interval, condition_bands, gap_recovered, markdown,
                                      paired_differences)
from synthswap.study.ledger import FIELDS, read_ledger, record

TINY = ["--k", "1", "--seeds", "0", "--long-factor", "0", "--subject-every-n", "25", "--dest-every-n", "8",
        "--eval-max-frames", "8", "--synthetic", "4", "--invert-steps", "2", "--pti-steps", "2",
        "--landmark-steps", "2", "--directions-n", "8", "--swap-resolution", "64", "--swap-steps", "4",
        "--batch-size", "4", "--swap-id-weight", "0", "--no-enhance", "--quiet"]
CONDITIONS = ["all-real", "real", "real+gan", "real+gan+warp", "real+warp"]


@pytest.mark.slow
def test_each_cell_is_a_ledger_row_and_resume_runs_only_what_is_missing(shared_data, tmp_path, capsys, monkeypatch):
    videos = shared_data / "videos/people"
    ledger, work = tmp_path / "docs" / "ledger.csv", tmp_path / "work"

    def study(ledger):
        return ["study", "--pair", str(videos / "d3.mp4"), str(videos / "d20.mp4"), "--out", str(work),
                "--ledger", str(ledger), *TINY]

    args = study(ledger)
    assert main(args) == 0
    out = capsys.readouterr().out  # the study's log
    assert "0 of 5 cells" in out and "cell 5 of 5" in out and "1 remain" in out
    rows = read_ledger(ledger)
    assert [r["condition"] for r in rows] == CONDITIONS and {r["status"] for r in rows} == {"done"}
    assert all(0 < float(r["dlib_distance_to_subject"]) < 1.5 and float(r["seconds"]) > 0 for r in rows)
    assert int(next(r for r in rows if r["condition"] == "real+warp")["synthetic_faces"]) > 0
    # what --precision auto chose on this machine, read from each cell's model (a ledger may mix machines)
    assert all(r["options"].endswith((" swap_precision_used=fp32", " swap_precision_used=bf16")) for r in rows), rows
    summary = (tmp_path / "docs" / "ledger_summary.md").read_text()
    assert "5 cells finished, 0 failed" in summary and "| 1 | real+gan − real | 1 |" in summary
    # The report's plots beside the summary, linked from it; the frame grid in the study folder (frames of
    # ../shared's people stay out of the docs): destination, all-real and the four conditions at k = 1.
    plots = [tmp_path / "docs" / f"ledger_{name}_vs_k.png" for name in ("dlib", "expression")]
    assert all(f"]({p.name})" in summary for p in plots)
    assert all(cv2.imread(str(p)).shape[:2] == (380, 600) for p in plots)
    grid_path = work / "d3_to_d20" / "seed0" / "conditions.png"
    grid = cv2.imread(str(grid_path))
    assert grid.shape[0] == 128 and grid.shape[1] > 5 * 128
    dest_tile, swapped_tile = grid[:100, : grid.shape[1] // 6], grid[:100, grid.shape[1] // 6 : grid.shape[1] // 3]
    assert np.abs(dest_tile.astype(int) - swapped_tile).mean() > 2  # a converted frame, not the destination again

    # --report-only rewrites the summary, plots and grid from the ledger and trains nothing.
    before = ledger.read_bytes()
    for path in (*plots, grid_path):
        path.unlink()
    assert main([*study(ledger), "--report-only"]) == 0
    assert "[study]" not in capsys.readouterr().out and ledger.read_bytes() == before
    assert all(path.is_file() for path in (*plots, grid_path))
    empty = tmp_path / "empty.csv"
    assert main([*study(empty), "--report-only"]) == 1 and "no finished cell" in capsys.readouterr().err
    assert not empty.exists() and not (tmp_path / "empty_summary.md").exists()

    # Without --resume a ledger that holds cells is refused, and left as it was.
    before = ledger.read_bytes()
    assert main(args) == 2
    assert "already holds 5 cells: add --resume" in capsys.readouterr().err and ledger.read_bytes() == before
    assert main([*args, "--resume"]) == 0 and "5 of 5 cells" in capsys.readouterr().out
    assert ledger.read_bytes() == before  # nothing was missing: nothing ran, nothing was rewritten
    # Cells of another pipeline version (older code) are not resumed with new ones: refused, left as they are.
    older = tmp_path / "older.csv"
    rows = read_ledger(ledger)
    for row in rows[:2]:
        row["pipeline_version"] = str(PIPELINE_VERSION - 1)
    with older.open("w", newline="") as f:
        csv.DictWriter(f, fieldnames=FIELDS).writeheader()
        csv.DictWriter(f, fieldnames=FIELDS).writerows(rows)
    kept = older.read_bytes()
    assert main([*study(older), "--resume"]) == 2 and older.read_bytes() == kept
    assert (f"--ledger {older}: 2 by version {PIPELINE_VERSION - 1} of synthswap's pipeline, and this synthswap is "
            f"version {PIPELINE_VERSION}") in capsys.readouterr().err

    # A failed cell is recorded and the others go on; --resume runs it again.
    from synthswap.study.grid import Study

    trained = Study.train_and_evaluate

    def failing(self, cond):
        if cond.name == "real-1+warp":
            raise RuntimeError("out of memory (a test's)")
        return trained(self, cond)

    monkeypatch.setattr(Study, "train_and_evaluate", failing)
    other = tmp_path / "other.csv"
    assert main(study(other)) == 1  # the same work folder: its cells' stages are cached
    assert "1 cells failed" in capsys.readouterr().out
    rows = {r["condition"]: r for r in read_ledger(other)}
    assert rows["real+warp"]["status"] == "failed" and "out of memory" in rows["real+warp"]["error"]
    assert all(rows[c]["status"] == "done" for c in CONDITIONS if c != "real+warp")
    assert "## Failed cells" in (tmp_path / "other_summary.md").read_text()
    monkeypatch.setattr(Study, "train_and_evaluate", trained)
    assert main([*study(other), "--resume"]) == 0
    assert "1 to run" in capsys.readouterr().out
    assert [r["status"] for r in read_ledger(other)] == ["done"] * 5


def _row(pair: str, seed: int, k: int, condition: str, distance: float) -> dict:
    return {"pair": pair, "subject": "s.mp4", "dest": "d.mp4", "seed": seed, "k": k, "condition": condition,
            "swap_steps": 100, "status": "done", "dlib_distance_to_subject": distance}


def test_paired_differences_intervals_and_gap_recovered_from_a_ledger(tmp_path):
    ledger = tmp_path / "ledger.csv"
    # three units; GAN nearer the subject than real-k by 0.02-0.04 in each, warp by nothing
    for unit, (pair, seed) in enumerate([("a->b", 0), ("a->b", 1), ("c->d", 0)]):
        record(ledger, _row(pair, seed, 0, "all-real", 0.40))
        record(ledger, _row(pair, seed, 1, "real", 0.50))
        record(ledger, _row(pair, seed, 1, "real+gan", 0.50 - 0.02 * (unit + 1)))
        record(ledger, _row(pair, seed, 1, "real+warp", 0.50))
    record(ledger, {**_row("c->d", 0, 1, "real+warp", 0.50), "status": "failed", "error": "x"})  # replaces its row
    rows = read_ledger(ledger)
    assert len(rows) == 12 and list(csv.DictReader(open(ledger))) == rows
    from synthswap.study.analysis import cell_results

    results = cell_results(rows, 100)
    diffs = paired_differences(results, 1, "real+gan", "real")
    assert diffs == pytest.approx([-0.02, -0.04, -0.06])
    mean, lo, hi = bootstrap_interval(diffs)
    assert mean == pytest.approx(-0.04) and -0.06 <= lo <= mean <= hi <= -0.02
    assert paired_differences(results, 1, "real+gan", "real+warp") == pytest.approx([-0.02, -0.04])  # one failed
    assert gap_recovered(results, 1, "real+gan") == pytest.approx([0.2, 0.4, 0.6])
    bands = condition_bands(results)  # what the plots draw: per condition and k, over the units that have it
    assert [(k, mean) for k, mean, *_ in bands["all-real"]] == [(0, pytest.approx(0.40))]
    (k, mean, lo, hi), = bands["real+gan"]
    assert k == 1 and mean == pytest.approx(0.46) and 0.44 <= lo <= mean <= hi <= 0.48
    assert bands["real+warp"][0][1] == pytest.approx(0.50)  # the failed unit's cell is left out
    text = markdown(rows, 100)
    assert "11 cells finished, 1 failed" in text and "| 1 | real+gan − real | 3 | -0.040 |" in text
    assert "| no |" in text  # that interval excludes zero
    # the plain reading, generated from the same cells: the sign where the interval settles it, R
    assert "(real+gan − real): k = 1: -0.040 [" in text and "over 3 units: nearer the subject" in text
    assert "(real+warp − real): k = 1: +0.000 [+0.000, +0.000] over 2 units: no difference shown" in text
    assert "for real+gan: k = 1: R = +0.40 [" in text
    (tmp_path / "foreign.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a study ledger"):
        read_ledger(tmp_path / "foreign.csv")
    assert set(FIELDS) >= {"synthswap_version", "pipeline_version", "options"}
