"""Direction fitting (gan/directions.py): the math, and the method end to end on real faces.

A trained GAN does not fit in a test's time budget, so the end-to-end test uses a renderer
whose latent space we know: a W vector sets warp amounts (mouth open, smile, yaw) through a
fixed random linear map, the warp renders a real d14 face, and the real extraction code
measures the result. The fitting code must find directions that, on held-out latents,
move each measured attribute the right way.
"""

from __future__ import annotations

import numpy as np
import pytest

from synthswap.gan.directions import fit_directions, load_directions, save_directions
from synthswap.gan.face_meter import measure_renders
from synthswap.faces.measure import ATTRIBUTE_NAMES


def test_fit_recovers_linear_planes_and_conditions_them(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(600, 16))
    true = rng.normal(size=(8, 16))
    true[1] = true[0] + 0.3 * rng.normal(size=16)  # two strongly correlated attributes
    attrs = w @ true.T + 0.05 * rng.normal(size=(600, 8))
    attrs[::37, 2] = np.nan  # unmeasurable samples are dropped, not fitted
    d = fit_directions(w, attrs)
    assert d.r2.min() > 0.95
    cos = (d.unit * (true / np.linalg.norm(true, axis=1, keepdims=True))).sum(1)
    assert cos.min() > 0.98
    # Conditioned direction k changes attribute k and (to first order) no other.
    effect = d.coef @ d.conditioned.T  # [j, k]: change of attribute j per step along conditioned k
    off = effect - np.diag(np.diag(effect))
    # (within 10%: the small ridge that tames the nearly collinear pair leaves a little leak)
    assert (np.abs(off) <= 0.1 * np.abs(np.diag(effect))[None, :]).all()
    assert (np.diag(effect) > 0).all()
    # A joint edit hits every requested change at once (within the linear model).
    delta = rng.normal(size=8) * 0.1
    assert np.abs(d.coef @ d.edit(delta) - delta).max() < 0.1 * np.abs(delta).max()
    path = save_directions(d, tmp_path / "dirs.safetensors")
    back = load_directions(path)
    assert np.allclose(back.coef, d.coef, atol=1e-5) and back.names == list(ATTRIBUTE_NAMES)
    assert (tmp_path / "dirs.json").is_file()


def test_fit_refuses_too_few_measured_samples():
    from synthswap.gan.directions import DirectionsError

    with pytest.raises(DirectionsError, match="measured"):
        fit_directions(np.zeros((30, 4)), np.full((30, 8), np.nan))


CONTROLLED = {"mouth_open": 0, "smile": 2, "yaw": 6}  # warp amount -> attribute index


def _warp_renderer(image, landmarks, mixing):
    from synthswap.synth.warp import WarpEdit, warp_face

    scale = {"mouth_open": 0.22, "smile": 0.04, "yaw": 9.0}

    def render(ws):
        out = []
        for w in ws:
            amounts = np.tanh(mixing @ w)  # nonlinear on purpose: a linear fit is an approximation
            edit = WarpEdit(**{k: float(a * scale[k] + (0.22 if k == "mouth_open" else 0))
                               for k, a in zip(CONTROLLED, amounts)})
            out.append(warp_face(image, landmarks, edit)[0])
        return out

    return render


@pytest.mark.slow
def test_fitted_directions_move_measured_attributes_on_heldout_samples(extracted):
    from synthswap.faceset import Faceset

    fs = Faceset.open(extracted("videos/people/d14.mp4", size=128, max_frames=1, every_n=1))
    face = fs.faces[0]
    rng = np.random.default_rng(1)
    mixing = rng.normal(size=(3, 12)) / np.sqrt(12)
    render = _warp_renderer(fs.read_image(face), face.landmarks, mixing)
    w = rng.normal(size=(140, 12))
    attrs, counts = measure_renders(render, w)
    assert counts["found"] + counts["fallback_box"] >= 130
    d = fit_directions(w, attrs, holdout=0.25)
    for name, k in CONTROLLED.items():
        assert d.r2[k] > 0.5, f"{name}: held-out R2 {d.r2[k]:.2f}"
    # Held-out latents, stepped along each conditioned direction: the measured attribute moves
    # the right way on nearly every one.
    test = np.array(d.info["test_index"])[:10]
    cond = d.conditioned
    for name, k in CONTROLLED.items():
        step = 0.8 * cond[k]
        lo, _ = measure_renders(render, w[test] - step)
        hi, _ = measure_renders(render, w[test] + step)
        diff = hi[:, k] - lo[:, k]
        assert np.nanmean(diff > 0) >= 0.8, f"{name}: moved the right way on {np.nanmean(diff > 0):.0%}"
        assert np.nanmedian(diff) > 0
