"""Swap engine pieces that need no real data: networks, losses, colour transfer, smoothing, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthswap.cli import main
from synthswap.swap.color import histogram_match, reinhard_lab
from synthswap.swap.losses import dssim, swap_loss
from synthswap.swap.networks import SwapConfig, SwapModel
from synthswap.swap.smoothing import OneEuroFilter


@pytest.mark.parametrize("arch", ["df", "liae"])
def test_networks_shapes_and_swap_path(arch):
    torch.manual_seed(0)
    model = SwapModel(SwapConfig(arch=arch, resolution=64, e_dims=4, ae_dims=16, d_dims=4, d_mask_dims=4))
    a, b = torch.rand(2, 3, 64, 64), torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        ia, ma, ib, mb = model(a, b)
    assert ia.shape == (2, 3, 64, 64) and ma.shape == (2, 1, 64, 64)
    assert ib.shape == (3, 3, 64, 64) and mb.shape == (3, 1, 64, 64)
    assert float(ia.min()) >= 0 and float(ia.max()) <= 1
    # B->A must decode as A, not as B: it differs from B->B on the same input.
    swapped = model.swap(b)[0]
    assert not torch.allclose(swapped, model.reconstruct(b, "B")[0])
    torch.testing.assert_close(model.reconstruct(a, "A")[0], ia)


@pytest.mark.parametrize("bad", [dict(resolution=72), dict(resolution=512), dict(arch="sae"), dict(e_dims=0)])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        SwapModel(SwapConfig(**bad))


def test_dssim_zero_for_identical_and_grows_with_noise():
    x = torch.rand(2, 3, 64, 64)
    assert float(dssim(x, x)) < 1e-6
    small = float(dssim(x, (x + 0.05 * torch.randn_like(x)).clamp(0, 1)))
    large = float(dssim(x, (x + 0.3 * torch.randn_like(x)).clamp(0, 1)))
    assert 0 < small < large


def test_swap_loss_ignores_pixels_outside_mask_except_mask_term():
    target = torch.rand(1, 3, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    region = torch.zeros_like(mask)
    pred = target.clone()
    pred[..., :4, :4] = 1 - pred[..., :4, :4]  # damage only a corner far outside the mask
    loss, parts = swap_loss(pred, mask, target, mask, region)
    assert parts["pixel"] < 1e-6 and parts["mask"] < 1e-6 and float(loss) < 1e-3


def test_reinhard_matches_masked_lab_statistics():
    import cv2

    rng = np.random.default_rng(0)
    src = np.clip(rng.normal(0.3, 0.05, (64, 64, 3)), 0, 1).astype(np.float32)
    ref = np.clip(rng.normal(0.6, 0.1, (64, 64, 3)) * [0.8, 1.0, 1.2], 0, 1).astype(np.float32)
    mask = np.ones((64, 64), np.float32)
    out = reinhard_lab(src, ref, mask)
    lab_out = cv2.cvtColor(out, cv2.COLOR_BGR2LAB).reshape(-1, 3)
    lab_ref = cv2.cvtColor(ref, cv2.COLOR_BGR2LAB).reshape(-1, 3)
    np.testing.assert_allclose(lab_out.mean(0), lab_ref.mean(0), atol=1.0)
    np.testing.assert_allclose(lab_out.std(0), lab_ref.std(0), rtol=0.1, atol=0.5)


def test_histogram_match_moves_distribution_to_reference():
    rng = np.random.default_rng(1)
    src = rng.uniform(0.0, 0.4, (64, 64, 3)).astype(np.float32)
    ref = rng.uniform(0.5, 1.0, (64, 64, 3)).astype(np.float32)
    out = histogram_match(src, ref, np.ones((64, 64), np.float32))
    for q in (10, 50, 90):
        assert abs(np.percentile(out, q) - np.percentile(ref, q)) < 0.03


def test_one_euro_filter_removes_jitter_and_follows_motion():
    rng = np.random.default_rng(0)
    t = np.arange(100) / 25.0
    noisy = 100 + rng.normal(0, 1.5, (100, 5, 2))
    f = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    smooth = np.stack([f(x, ti) for x, ti in zip(noisy, t)])
    assert np.abs(np.diff(smooth[20:], axis=0)).mean() < 0.4 * np.abs(np.diff(noisy[20:], axis=0)).mean()
    # A fast move is followed: after a 50-px jump the filter is within 5 px in 5 frames.
    f.reset()
    for ti in t[:10]:
        f(np.zeros((5, 2)), ti)
    for ti in t[10:15]:
        out = f(np.full((5, 2), 50.0), ti)
    assert np.abs(out - 50).max() < 5


def test_cli_help_and_missing_inputs(capsys, tmp_path):
    for argv in (["swap", "--help"], ["swap", "train", "--help"], ["swap", "convert", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--resume" in out and "--color" in out and "seamless" in out
    assert main(["swap", "train", "--out", str(tmp_path / "m"), "--steps", "1"]) == 2
    assert "--src" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
    # Converting with a folder that is no model: a clear error, no output.
    import cv2

    (tmp_path / "imgs").mkdir()
    cv2.imwrite(str(tmp_path / "imgs" / "0.png"), np.zeros((32, 32, 3), np.uint8))
    assert main(["swap", "convert", "--model", str(tmp_path), "--images", str(tmp_path / "imgs"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "model" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
