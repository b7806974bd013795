"""Shared pieces of the GAN tests: a tiny 32 px trainer on real faces (d0.mp4 frames)."""

from __future__ import annotations

import pytest

from synthswap.gan.train import GanTrainer, GanTrainOptions

FACES = ("videos/people/d0.mp4", 64, 24, 3)  # relpath, size, max_frames, every_n: 24 real faces


def tiny_options(faceset, out, **kw) -> GanTrainOptions:
    values = dict(data=[str(faceset)], out=str(out), resolution=32, preset="tiny", batch=8, kimg=0.016,
                  device="cpu", verbose=False, snap_kimg=1000.0, seed=0)
    values.update(kw)
    return GanTrainOptions(**values)


@pytest.fixture
def tiny_faceset(extracted):
    return extracted(*FACES)


@pytest.fixture
def tiny_trainer_factory(tiny_faceset, tmp_path):
    counter = iter(range(1000))

    def make(**kw) -> GanTrainer:
        return GanTrainer(tiny_options(tiny_faceset, tmp_path / f"gan{next(counter)}", **kw))

    return make


@pytest.fixture
def one_thread():
    """The CI box has 2 cores shared with other jobs: 2 torch threads there oversubscribe and run 10x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
