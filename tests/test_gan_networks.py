"""StyleGAN2 networks: the API later stages rely on, and the maths of the modulated conv."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gan_helpers import one_thread  # noqa: F401 - fixture
from synthswap.gan.networks import Discriminator, GanConfig, Generator, make_config, modulated_conv2d

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    cfg = make_config(32, "tiny")
    return cfg, Generator(cfg), Discriminator(cfg)


def test_generator_api_shapes(nets):
    cfg, G, _ = nets
    assert cfg.num_ws == 2 * int(math.log2(32)) - 2 == G.num_ws
    z = torch.randn(3, cfg.z_dim)
    w = G.mapping(z)
    assert w.shape == (3, cfg.w_dim)
    ws = G.broadcast(w)
    assert ws.shape == (3, cfg.num_ws, cfg.w_dim)
    img = G.synthesis(ws, noise_mode="const")
    assert img.shape == (3, 3, 32, 32) and torch.isfinite(img).all()
    with pytest.raises(ValueError):
        G.synthesis(w)  # W, not W+
    # const noise is reproducible; random noise is not (once noise strengths are non-zero)
    for m in G.modules():
        if hasattr(m, "noise_strength"):
            m.noise_strength.data.fill_(0.5)
    assert torch.equal(G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="const"))
    assert not torch.equal(G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random"))


def test_w_avg_tracking_and_truncation(nets):
    cfg, G, _ = nets
    G.mapping.w_avg.zero_()
    z = torch.randn(64, cfg.z_dim)
    w = G.mapping(z, update_w_avg=True)
    assert torch.allclose(G.w_avg, w.mean(0) * (1 - G.mapping.w_avg_beta), atol=1e-6)
    assert torch.allclose(G.mapping(z, truncation_psi=0.0), G.w_avg.expand(64, -1))
    half = G.mapping(z, truncation_psi=0.5)
    assert torch.allclose(half, G.w_avg + 0.5 * (w - G.w_avg), atol=1e-6)


def test_forward_is_mapping_then_synthesis_and_every_w_is_used(nets):
    cfg, G, _ = nets
    z = torch.randn(2, cfg.z_dim)
    ws = G.broadcast(G.mapping(z))
    base = G.synthesis(ws, noise_mode="const")
    assert torch.allclose(G(z, noise_mode="const"), base)
    for i in range(cfg.num_ws):  # style mixing relies on each layer having its own w
        mixed = ws.clone()
        mixed[:, i] = G.mapping(torch.randn(2, cfg.z_dim))
        assert not torch.allclose(G.synthesis(mixed, noise_mode="const"), base), f"w {i} unused"


def test_modulated_conv_equals_per_sample_weights():
    """The fast path (scale inputs, shared conv, scale outputs) equals explicit per-sample demodulated weights."""
    torch.manual_seed(1)
    x, weight, styles = torch.randn(3, 5, 8, 8), torch.randn(4, 5, 3, 3), torch.randn(3, 5)
    out = modulated_conv2d(x, weight, styles, demodulate=True, padding=1)
    for i in range(3):
        w = weight * styles[i].reshape(1, 5, 1, 1)
        w = w / w.square().sum(dim=[1, 2, 3], keepdim=True).add(1e-8).sqrt()
        assert torch.allclose(out[i:i + 1], F.conv2d(x[i:i + 1], w, padding=1), atol=1e-5)


def test_discriminator_logits_and_features(nets):
    cfg, G, D = nets
    img = G(torch.randn(4, cfg.z_dim))
    assert D(img).shape == (4, 1)
    feats = D.features(img)
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4]
    # usable as a perceptual loss: differentiable with respect to the image
    target = torch.zeros_like(img)
    x = img.detach().requires_grad_(True)
    loss = sum(F.mse_loss(a, b) for a, b in zip(D.features(x), D.features(target)))
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_minibatch_std_sees_a_lack_of_variety(nets):
    cfg, _, D = nets
    same = torch.randn(1, 3, 32, 32).repeat(4, 1, 1, 1)
    varied = torch.randn(4, 3, 32, 32)
    std_same = D.mbstd(D.features(same)[-1])[:, -1]
    std_varied = D.mbstd(D.features(varied)[-1])[:, -1]
    assert std_same.abs().max() < 1e-3 < std_varied.abs().min()


def test_config_validation_and_roundtrip():
    with pytest.raises(ValueError):
        GanConfig(resolution=48)
    with pytest.raises(ValueError):
        make_config(64, "nonexistent")
    cfg = make_config(128, "cpu")
    assert GanConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.g_channels(128) == 8 and cfg.g_channels(4) == 128
