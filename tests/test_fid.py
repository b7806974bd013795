"""FID/KID with the shipped Inception network: ~0 for a set against itself, clearly larger for a noisy copy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from gan_helpers import FACES, one_thread  # noqa: F401 - fixture

from synthswap.gan.data import load_faces
from synthswap.metrics import fid
from synthswap.metrics.fid import FidError, InceptionFeatures, fid_from_features, inception_path, kid_from_features

pytestmark = pytest.mark.usefixtures("one_thread")


def _fid_reference(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula with scipy's matrix square root."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(sa @ sb).real
    return float(np.square(mu_a - mu_b).sum() + np.trace(sa + sb - 2 * covmean))


@pytest.mark.parametrize("n", [6, 40])  # fewer samples than dimensions (SVD path) and more (eigenvalue path)
def test_fid_formula_matches_scipy(n):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(n, 12))
    b = rng.normal(loc=0.3, scale=1.5, size=(n + 3, 12))
    assert fid_from_features(a, b) == pytest.approx(_fid_reference(a, b), rel=1e-3, abs=1e-4)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    c = rng.normal(loc=0.5, size=(200, 16))
    assert abs(kid_from_features(a, b, num_subsets=20)) < 0.02 < kid_from_features(a, c, num_subsets=20)


@pytest.mark.slow
def test_fid_of_real_faces_against_themselves_and_a_noisy_copy(extracted, monkeypatch):
    faces = load_faces([extracted(*FACES)], 64, masked=True, limit=16)
    assert inception_path().name == "default_1.pt"
    net = InceptionFeatures("cpu", batch_size=8)
    feats = net(faces)
    assert feats.shape == (16, 2048) and np.isfinite(feats).all()
    gen = torch.Generator().manual_seed(0)
    noisy = (faces.float() + torch.randn(faces.shape, generator=gen) * 40).clamp(0, 255).to(torch.uint8)
    noisy_feats = net(noisy)
    self_fid = fid_from_features(feats, feats)
    noisy_fid = fid_from_features(feats, noisy_feats)
    assert self_fid < 1e-3
    assert noisy_fid > 20, noisy_fid
    kid = kid_from_features(feats, noisy_feats, num_subsets=10)
    assert kid > kid_from_features(feats, feats, num_subsets=10)
    # the kernel matrices computed whole once give what each subset's own products give
    monkeypatch.setattr(fid, "KID_GRAM_MAX_ENTRIES", 0)
    assert kid_from_features(feats, noisy_feats, num_subsets=10) == pytest.approx(kid, rel=1e-9)
    with pytest.raises(FidError):
        net(faces.float())  # floats are ambiguous (0..1? -1..1?): only uint8 is accepted
