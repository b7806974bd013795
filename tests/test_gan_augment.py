"""DiffAugment + ADA: differentiable, applied alike to reals and fakes, p rises when D overfits."""

from __future__ import annotations

import pytest
import torch

from gan_helpers import one_thread, tiny_faceset, tiny_trainer_factory  # noqa: F401 - fixtures
from synthswap.gan.augment import AdaController, AugmentPipe

pytestmark = pytest.mark.usefixtures("one_thread")


def _seeded(pipe: AugmentPipe, seed: int = 0):
    def f(x):
        torch.manual_seed(seed)  # the same random transform at every call, as gradcheck needs
        return pipe(x)

    return f


def test_augmentation_is_differentiable():
    pipe = AugmentPipe("color,translation,cutout", p=1.0)
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64) * 2 - 1
    assert torch.autograd.gradcheck(_seeded(pipe), (x.requires_grad_(True),), eps=1e-6, atol=1e-5)
    # and with p < 1 the per-image choice of ops keeps it differentiable too
    pipe.p = 0.5
    assert torch.autograd.gradcheck(_seeded(pipe, 3), (x,), eps=1e-6, atol=1e-5)


def test_each_op_changes_images_and_p0_is_identity():
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    assert torch.equal(AugmentPipe(p=0.0)(x), x)
    for policy in ("color", "translation", "cutout"):
        torch.manual_seed(0)
        y = AugmentPipe(policy, p=1.0)(x)
        assert y.shape == x.shape and not torch.allclose(y, x), policy
    with pytest.raises(ValueError):
        AugmentPipe("colour")


def test_ada_controller_moves_p_with_the_overfitting_signal():
    pipe = AugmentPipe(p=0.0)
    ada = AdaController(pipe, target=0.6, interval=1, speed_kimg=0.1)  # p moves 32/100 per step
    for _ in range(2):
        ada.accumulate(torch.ones(32, 1))  # D says "real" to every real: overfitting
        ada.step(32)
    assert ada.rt == 1.0 and pipe.p == pytest.approx(0.64)
    for _ in range(3):
        ada.accumulate(-torch.ones(32, 1))
        ada.step(32)
    assert pipe.p == 0.0  # clipped at 0


def test_reals_and_fakes_go_through_the_same_pipe(tiny_trainer_factory):
    """In a D step with R1, the pipe sees the real batch and the fake batch with the same p."""
    trainer = tiny_trainer_factory(augment="fixed", aug_p=0.8)
    calls = []
    original = trainer.pipe.forward

    def spy(x):
        calls.append((x.requires_grad and x.grad_fn is None, trainer.pipe.p, tuple(x.shape)))
        return original(x)

    trainer.pipe.forward = spy
    stats = trainer.train_step()  # step 0: D step with R1, then G step
    assert len(calls) == 3  # D: fake, real (R1 needs requires_grad on the real leaf); G: fake
    assert [c[1] for c in calls] == [0.8, 0.8, 0.8]
    assert calls[1][0] is True and calls[0][0] is False  # the second call is the real (leaf) batch
    assert len({c[2] for c in calls}) == 1
    assert all(torch.isfinite(torch.as_tensor(v)) for k, v in stats.items() if k != "rt")


def test_ada_p_rises_when_d_overfits_a_tiny_set(tiny_trainer_factory):
    trainer = tiny_trainer_factory(max_images=4, ada_kimg=0.5, d_lr=0.01, mirror=False)
    ps = []
    for _ in range(40):
        trainer.train_step()
        ps.append(trainer.pipe.p)
    assert trainer.ada.rt > 0.6, f"D did not overfit 4 images (r_t {trainer.ada.rt})"
    assert max(ps) > 0.3 and ps[-1] > 0.2, ps
