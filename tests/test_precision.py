"""Precision chosen by the machine (synthswap.precision), and bf16 against fp32 on real faces:
the same checkpoint gives nearly the same faces, and a short bf16 training learns as fp32 does."""

from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from synthswap.precision import Precision, cpu_bf16_units, cpu_calibration, resolve_precision
from synthswap.pretrained import shipped_model
from synthswap.swap.loading import load_model
from synthswap.swap.networks import SwapConfig, SwapModel, resized_state
from synthswap.swap.train import SwapTrainOptions, train

CPU = torch.device("cpu")
TINY = SwapConfig(resolution=64, e_dims=8, ae_dims=32, d_dims=8, d_mask_dims=4)


def test_precision_names_and_reasons():
    assert resolve_precision("fp32", CPU) == Precision("fp32", "cpu", "asked for")
    forced = resolve_precision("bf16", CPU)
    assert forced.bf16 and forced.reason.startswith("asked for")
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        resolve_precision("fp16", CPU)
    auto = resolve_precision("auto", CPU)
    if not cpu_bf16_units():
        assert auto.name == "fp32" and "no bf16 matrix units" in auto.reason
    else:  # the calibration decides, and says what it measured
        assert auto.name in ("fp32", "bf16") and "bf16 ran" in auto.reason
    with torch.no_grad():  # the calibration's backward pass works under no_grad too (convert calls it there)
        assert cpu_calibration.__wrapped__(rounds=1) > 0
    # The context really switches autocast on and off.
    with forced.autocast():
        assert torch.is_autocast_enabled("cpu")
    with resolve_precision("fp32", CPU).autocast():
        assert not torch.is_autocast_enabled("cpu")


def _faces(extracted, clip: str, size: int) -> torch.Tensor:
    from synthswap.faceset import Faceset

    fs = Faceset.open(extracted(f"videos/people/{clip}.mp4", size=128, max_frames=8, every_n=40))
    images = np.stack([fs.read_image(f) for f in fs.faces]).transpose(0, 3, 1, 2)
    x = torch.from_numpy(np.ascontiguousarray(images)).float() / 255
    return F.interpolate(x, size=size, mode="area")


def test_bf16_and_fp32_outputs_of_one_checkpoint_agree(extracted):
    """The shipped model's swaps of real faces in bf16 differ from fp32 by well under one grey level
    on average: mean |difference| < 0.01 (2.6 levels of 255), and no face's mean over 0.02."""
    model, _ = load_model(shipped_model("swap"))
    x = _faces(extracted, "d9", 64)
    with torch.no_grad():
        ref, ref_mask = model.swap(x)
        with Precision("bf16", "cpu", "test").autocast():
            low, low_mask = model.swap(x)
    per_face = (low.float() - ref).abs().mean(dim=(1, 2, 3))
    assert float(per_face.mean()) < 0.01 and float(per_face.max()) < 0.02, per_face
    assert float((low_mask.float() - ref_mask).abs().mean()) < 0.01


def _losses(model_dir) -> list[float]:
    with open(model_dir / "log.csv", newline="") as fh:
        return [float(row["loss"]) for row in csv.DictReader(fh)]


@pytest.mark.slow
def test_short_bf16_training_learns_like_fp32(extracted, tmp_path):
    """60 steps of the same seed and data: both precisions bring the loss down by a similar amount,
    and end within 10% of each other."""
    a = extracted("videos/people/d6.mp4", size=64, max_frames=16, every_n=30)
    b = extracted("videos/people/d9.mp4", size=64, max_frames=16, every_n=18)
    ends = {}
    for name in ("fp32", "bf16"):
        out = tmp_path / name
        summary = train(SwapTrainOptions(src=[str(a)], dst=[str(b)], out=str(out), config=replace(TINY), batch_size=4,
                                         lr=1e-3, steps=60, log_every=5, save_every=0, preview_every=0, progress=False,
                                         device="cpu", precision=name))
        assert summary["precision"].startswith(name)
        losses = _losses(out)
        first, last = np.mean(losses[:2]), np.mean(losses[-3:])
        assert last < 0.85 * first, (name, losses)
        ends[name] = last
    assert abs(ends["bf16"] - ends["fp32"]) < 0.1 * ends["fp32"], ends


def test_a_smaller_model_grows_to_a_larger_resolution(extracted):
    """The shipped 64 px model grown to 128 px (networks.resized_state) reconstructs real faces far
    better than random weights at 128 px: a warm start for a 128 px fine-tune."""
    small, _ = load_model(shipped_model("swap"))
    big_config = replace(small.config, resolution=128)
    grown = SwapModel(big_config)
    grown.load_state_dict(resized_state(small.state_dict(), small.config, big_config))
    torch.manual_seed(0)
    random = SwapModel(big_config)
    x = _faces(extracted, "d9", 128)
    with torch.no_grad():
        err_grown = float((grown.eval().reconstruct(x, "A")[0] - x).abs().mean())
        err_random = float((random.eval().reconstruct(x, "A")[0] - x).abs().mean())
    assert err_grown < 0.8 * err_random, (err_grown, err_random)
    with pytest.raises(ValueError, match="only the resolution may differ"):
        resized_state(small.state_dict(), small.config, replace(big_config, ae_dims=64))
    with pytest.raises(ValueError, match="not a whole multiple"):
        resized_state(small.state_dict(), small.config, replace(small.config, resolution=96))
