"""Expression-and-pose coverage (metrics/coverage.py)."""

from __future__ import annotations

import numpy as np
import pytest

from synthswap.metrics.coverage import SCALES, coverage, coverage_arrays, nearest_distances

DEST = ("videos/people/d6.mp4", 128, 40, 12)


def test_coverage_counts_destination_rows_with_a_neighbour_within_eps():
    centre = np.zeros(8)
    train = np.zeros((1, 8))
    dest = np.zeros((4, 8))
    dest[1, 0] = 1.0 * SCALES[0]  # 1 unit away
    dest[2, 6] = 2.0 * SCALES[6]  # 2 units of yaw away
    dest[3, :2] = 1.2 * SCALES[:2]  # sqrt(2) * 1.2 = 1.70 units away
    r = coverage_arrays(dest, train, centre, centre, eps=1.5)
    assert r.coverage == pytest.approx(0.5)
    assert r.per_attribute["yaw"] == pytest.approx(0.75)
    assert coverage_arrays(dest, train, centre, centre, eps=2.5).coverage == 1.0
    # Centring: a destination whose neutral face differs by a constant is fully covered.
    shifted = dest + 5 * SCALES
    assert coverage_arrays(shifted, train, centre + 5 * SCALES, centre, eps=1.5).coverage == pytest.approx(0.5)
    with pytest.raises(ValueError):
        coverage_arrays(dest, train, centre, centre, eps=0)


def test_nearest_distances_matches_brute_force(monkeypatch):
    from synthswap.metrics import coverage as module

    rng = np.random.default_rng(0)
    q, p = rng.normal(size=(50, 8)), rng.normal(size=(70, 8))
    brute = np.sqrt(((q[:, None] - p[None]) ** 2).sum(-1)).min(1)
    assert np.allclose(nearest_distances(q, p), brute)
    monkeypatch.setattr(module, "BLOCK_ELEMENTS", 7 * 70)  # blocks of 7 query rows: the last one short
    assert np.allclose(nearest_distances(q, p), brute)


def test_coverage_on_real_facesets(extracted):
    from synthswap.faceset import Faceset

    dest = Faceset.open(extracted(*DEST))
    assert coverage(dest, dest).coverage == 1.0
    few = Faceset(dest.root, dest.info, dest.faces[:5])
    part = coverage(dest, few)
    assert 0 < part.coverage < 1
    assert part.n_training == 5 and part.n_destination == len(dest)


def test_coverage_cli(extracted, tmp_path, capsys):
    from synthswap.cli import main

    dest = str(extracted(*DEST))
    assert main(["coverage", "--dest", dest, "--train", dest]) == 0
    assert "coverage 100.0%" in capsys.readouterr().out
    assert main(["coverage", "--dest", dest, "--train", str(tmp_path / "missing")]) == 2
