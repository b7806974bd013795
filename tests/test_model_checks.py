"""Models are checked when loaded and trainers never save a diverged model (issue 28): NaN weights
and a model.json of another architecture are refused in one line, a NaN loss stops training with
the last good checkpoint kept, a checkpoint is read back after writing and a broken one falls back
to the one before it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from media_helpers import GRID_CLIP, make_video
from synthswap.cli import main
from synthswap.training import CheckpointError, load_checkpoint, load_tensors, previous_version, save_checkpoint

TINY = ["--resolution", "64", "--e-dims", "8", "--ae-dims", "32", "--d-dims", "8", "--d-mask-dims", "4",
        "--batch-size", "2", "--threads", "1", "--quiet", "--device", "cpu", "--id-weight", "0"]


@pytest.fixture
def model_copy(tmp_path) -> Path:
    from synthswap.pretrained import shipped_model

    folder = tmp_path / "model"
    shutil.copytree(shipped_model("swap"), folder, ignore=shutil.ignore_patterns("MODEL_CARD.md"))
    return folder


@pytest.fixture
def clip(shared_data, tmp_path) -> Path:
    video = tmp_path / "dest.mp4"
    make_video(shared_data / GRID_CLIP, video, 3)
    return video


def _convert_error(model: Path, clip: Path, out: Path, capsys) -> str:
    assert main(["swap", "convert", "--model", str(model), "--video", str(clip), "--out", str(out), "--quiet"]) != 0
    err = capsys.readouterr().err.strip()
    assert not out.exists() and not list(out.parent.glob(f".{out.stem}.*"))
    assert err.startswith("error: ") and "\n" not in err and len(err) < 400, err
    return err


def test_a_model_with_nan_weights_is_refused_in_one_line(model_copy, clip, tmp_path, capsys):
    path = model_copy / "model.safetensors"
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as st:  # keep the file's metadata: only the weights go bad
        metadata = st.metadata()
    tensors = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in tensors.items()}
    save_file(tensors, str(path), metadata=metadata)
    err = _convert_error(model_copy, clip, tmp_path / "out.mp4", capsys)
    assert "NaN or infinite values" in err


def test_a_model_json_naming_another_architecture_is_refused_in_one_line(model_copy, clip, tmp_path, capsys):
    meta = json.loads((model_copy / "model.json").read_text())
    meta["config"]["arch"] = "liae"
    (model_copy / "model.json").write_text(json.dumps(meta))
    err = _convert_error(model_copy, clip, tmp_path / "out.mp4", capsys)
    assert "do not fit this architecture" in err and "tensors missing" in err


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(extracted, tmp_path, capsys, monkeypatch):
    import synthswap.swap.train as swap_train

    a = extracted("videos/people/d6.mp4", size=64, max_frames=4, every_n=50)
    b = extracted("videos/people/d9.mp4", size=64, max_frames=4, every_n=50)
    real_loss, calls = swap_train.swap_loss, {"n": 0}

    def loss_going_nan(*args, **kwargs):  # the 4th step's losses (two per step) are NaN
        loss, parts = real_loss(*args, **kwargs)
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] > 6 else loss), parts

    monkeypatch.setattr(swap_train, "swap_loss", loss_going_nan)
    out = tmp_path / "model"
    rc = main(["swap", "train", "--src", str(a), "--dst", str(b), "--out", str(out), "--steps", "6",
               "--save-every", "2", "--preview-every", "0", *TINY])
    assert rc != 0
    err = capsys.readouterr().err
    assert "training diverged at step 4" in err and "last good checkpoint" in err
    tensors, meta = load_tensors(out / "model.safetensors")
    assert meta["state"]["step"] == 2 and all(torch.isfinite(v).all() for v in tensors.values())


def test_diverged_weights_are_never_saved(tmp_path):
    net = torch.nn.Linear(3, 2)
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, {"net": net}, state={"step": 1})
    before = path.read_bytes()
    with torch.no_grad():
        net.weight[0, 0] = float("inf")
    with pytest.raises(CheckpointError, match="training diverged, NaN or infinite values in 1 of 2"):
        save_checkpoint(path, {"net": net}, state={"step": 2})
    assert path.read_bytes() == before and not list(tmp_path.glob(".*tmp*"))


def test_a_broken_checkpoint_falls_back_to_the_one_before_when_resuming(tmp_path, capsys):
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(net.parameters())
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, {"net": net}, {"adam": opt}, {"step": 1})
    save_checkpoint(path, {"net": net}, {"adam": opt}, {"step": 2})
    assert load_checkpoint(previous_version(path), {"net": net})["step"] == 1
    path.write_bytes(path.read_bytes()[:100])  # what a full disk or a crash mid-copy leaves
    assert load_checkpoint(path, {"net": net}, {"adam": opt}) == {"step": 1}  # a trainer resumes from the one before
    assert "resuming from the checkpoint before it" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path, {"net": net})  # a model loaded for use never swaps in another file
