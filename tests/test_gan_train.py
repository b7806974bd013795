"""GAN training on real faces: finite losses, exact resume, bad checkpoints, CLI errors, sampling, DDP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import torch
from gan_helpers import one_thread, tiny_faceset, tiny_options, tiny_trainer_factory  # noqa: F401 - fixtures
from safetensors.torch import load_file

from synthswap.cli import main as cli_main
from synthswap.gan.loading import CHECKPOINT, load_discriminator, load_generator
from synthswap.gan.train import GanTrainer, GanTrainError, train
from synthswap.training import CheckpointError, load_tensors

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[1]


def _flat(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([t.detach().flatten().float() for t in module.state_dict().values()])


def test_tiny_gan_trains_on_real_faces(tiny_trainer_factory):
    trainer = tiny_trainer_factory()
    assert trainer.reals.shape[1:] == (3, 32, 32) and trainer.reals.shape[0] >= 16
    g0, d0, e0 = _flat(trainer.G), _flat(trainer.D), _flat(trainer.G_ema)
    for _ in range(4):
        stats = trainer.train_step()
        for key in ("loss_G", "loss_D", "D_real", "D_fake"):
            assert torch.isfinite(torch.as_tensor(stats[key])), (key, stats)
    assert "r1" not in stats  # R1 is lazy: only every 16 steps (it ran at step 0)
    assert not torch.equal(g0, _flat(trainer.G)) and not torch.equal(d0, _flat(trainer.D))
    assert not torch.equal(e0, _flat(trainer.G_ema))
    assert trainer.cur_nimg == 32 and trainer.step == 4
    assert trainer.G.w_avg.abs().sum() > 0  # w_avg tracked during G steps


def test_checkpoint_resume_continues_exactly(tiny_faceset, tmp_path):
    """2 steps + resume + 2 steps must equal 4 uninterrupted steps, bit for bit (weights, Adam, EMA, ADA p)."""
    full = train(tiny_options(tiny_faceset, tmp_path / "full", kimg=0.032))  # 4 steps of 8
    assert full["step"] == 4
    train(tiny_options(tiny_faceset, tmp_path / "split", kimg=0.016))
    resumed = train(tiny_options(tiny_faceset, tmp_path / "split", kimg=0.032, resume=True))
    assert resumed["step"] == 4 and resumed["kimg"] == pytest.approx(0.032)
    a = load_file(str(tmp_path / "full" / CHECKPOINT))
    b = load_file(str(tmp_path / "split" / CHECKPOINT))
    assert a.keys() == b.keys() and any(k.startswith("optim.D.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # outputs of a run: config JSON, logs, sample grids from fixed seeds
    meta = json.loads((tmp_path / "split" / "gan.json").read_text())
    assert meta["config"]["resolution"] == 32 and "torch" in meta["versions"]
    assert (tmp_path / "split" / "log.csv").read_text().count("\n") >= 2
    grids = sorted((tmp_path / "split" / "samples").glob("*.png"))
    assert grids and cv2.imread(str(grids[-1])).shape == (4 * 32, 8 * 32, 3)
    # the loaders later stages use
    G, cfg = load_generator(tmp_path / "split")
    D, _ = load_discriminator(tmp_path / "split")
    assert cfg.resolution == 32 and G(torch.randn(2, cfg.z_dim)).shape == (2, 3, 32, 32)
    assert D(G(torch.randn(2, cfg.z_dim))).shape == (2, 1)


def test_snapshots_keep_g_ema_for_fid_against_kimg(tiny_faceset, tmp_path):
    """--keep-snapshots writes G_ema in fp16 per --snap-kimg; loading one gives the EMA generator of then."""
    out = tmp_path / "gan"
    train(tiny_options(tiny_faceset, out, kimg=0.032, snap_kimg=0.016, keep_snapshots=True))  # snaps at 2, 4 steps
    snaps = sorted((out / "snapshots").glob("kimg*.safetensors"))
    assert [s.name for s in snaps] == ["kimg000000.016.safetensors", "kimg000000.032.safetensors"]
    tensors = load_file(str(snaps[-1]))
    assert all(t.dtype == torch.float16 for t in tensors.values() if t.is_floating_point())
    final, cfg = load_generator(out)
    last, _ = load_generator(out, snapshot=snaps[-1])
    first, _ = load_generator(out, snapshot=snaps[0])
    z = torch.randn(2, cfg.z_dim)
    with torch.no_grad():
        img_final, img_last, img_first = (g(z, noise_mode="const") for g in (final, last, first))
    assert (img_last - img_final).abs().max() < 0.02  # the last snapshot is the final G_ema, rounded to fp16
    assert (img_first - img_final).abs().max() > 0.02  # an earlier one is another generator
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(snaps[0].read_bytes()[:100])
    with pytest.raises(CheckpointError):  # a truncated snapshot is refused, not half-loaded
        load_generator(out, snapshot=bad)


def test_corrupt_or_missing_checkpoint_is_a_clear_error(tiny_faceset, tmp_path, capsys):
    out = tmp_path / "gan"
    train(tiny_options(tiny_faceset, out, kimg=0.008))
    ckpt = out / CHECKPOINT
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])  # truncated, as after a full disk
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_generator(out)
    # A resuming trainer falls back to the checkpoint before it (kept as .prev when the new one was
    # written), saying so; with none to fall back to, it stops with the clear error.
    GanTrainer(tiny_options(tiny_faceset, out, resume=True))
    assert "resuming from the checkpoint before it" in capsys.readouterr().err
    prev = ckpt.with_name(ckpt.name + ".prev")
    if prev.exists():
        prev.unlink()
    with pytest.raises(CheckpointError):
        GanTrainer(tiny_options(tiny_faceset, out, resume=True))
    assert cli_main(["gan", "sample", "--gan", str(out), "--n", "2", "--out", str(tmp_path / "s")]) == 2
    assert "corrupt or truncated" in capsys.readouterr().err
    ckpt.write_bytes(b"\x00" * 64)  # garbage
    assert cli_main(["gan", "fid", "--gan", str(out), "--data", str(tiny_faceset), "--n", "4"]) == 2
    # no checkpoint at all
    assert cli_main(["gan", "sample", "--gan", str(tmp_path / "nowhere"), "--out", str(tmp_path / "s")]) == 2
    assert "not a GAN folder" in capsys.readouterr().err
    # a second run into a folder that already holds a GAN must not overwrite it silently
    ckpt.write_bytes(data)
    with pytest.raises(FileExistsError):
        GanTrainer(tiny_options(tiny_faceset, out))


def test_cli_missing_faceset_fails_clearly(tmp_path, capsys):
    code = cli_main(["gan", "train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "g"),
                     "--kimg", "0.01", "--resolution", "32", "--config", "tiny", "--device", "cpu"])
    assert code == 2
    assert "not a faceset" in capsys.readouterr().err
    assert not (tmp_path / "g" / CHECKPOINT).exists()
    assert cli_main(["gan", "train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "g")]) == 2
    assert "budget" in capsys.readouterr().err  # neither --kimg nor --minutes


@pytest.mark.slow
def test_cli_train_then_sample(tiny_faceset, tmp_path, capsys):
    out = tmp_path / "gan"
    assert cli_main(["gan", "train", "--data", str(tiny_faceset), "--out", str(out), "--resolution", "32",
                     "--config", "tiny", "--batch", "8", "--kimg", "0.016", "--device", "cpu",
                     "--snap-kimg", "0.008", "--keep-snapshots"]) == 0
    samples = tmp_path / "samples"
    assert cli_main(["gan", "sample", "--gan", str(out), "--n", "5", "--out", str(samples), "--truncation", "0.7",
                     "--interp-rows", "2", "--interp-steps", "4", "--seed", "3"]) == 0
    pngs = sorted(samples.glob("sample_*.png"))
    assert len(pngs) == 5 and cv2.imread(str(pngs[0])).shape == (32, 32, 3)
    assert cv2.imread(str(samples / "interpolation.png")).shape == (2 * 32, 4 * 32, 3)
    first = cv2.imread(str(pngs[0]))
    assert cli_main(["gan", "sample", "--gan", str(out), "--n", "1", "--out", str(tmp_path / "again"),
                     "--truncation", "0.7", "--interp-rows", "0", "--seed", "3"]) == 0
    assert (cv2.imread(str(tmp_path / "again" / "sample_000000.png")) == first).all()  # seeds reproduce
    result_file = tmp_path / "fid.json"
    assert cli_main(["gan", "fid", "--gan", str(out), "--data", str(tiny_faceset), "--n", "4", "--max-ref", "4",
                     "--json", str(result_file)]) == 0
    result = json.loads(result_file.read_text())
    assert result["fid"] > 0 and result["n_fake"] == 4 and result["n_real"] == 4 and result["resolution"] == 32
    # FID against kimg from the kept snapshots, then the checkpoint
    assert cli_main(["gan", "fid", "--gan", str(out), "--data", str(tiny_faceset), "--n", "4", "--max-ref", "4",
                     "--snapshots"]) == 0
    rows = (out / "fid_snapshots.csv").read_text().splitlines()
    assert rows[0] == "kimg,fid,kid,n_fake,n_real" and [r.split(",")[0] for r in rows[1:]] == ["0.008", "0.016", "0.016"]
    assert float(rows[-1].split(",")[1]) == pytest.approx(result["fid"], abs=1e-3)  # same seed, same generator
    for snap in (out / "snapshots").iterdir():
        snap.unlink()
    assert cli_main(["gan", "fid", "--gan", str(out), "--data", str(tiny_faceset), "--n", "4", "--snapshots"]) == 2
    assert "no snapshots" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_gloo_processes_keep_replicas_identical(tiny_faceset, tmp_path):
    out = tmp_path / "ddp"
    out.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(ROOT / "tests" / "gan_ddp_worker.py"), str(tiny_faceset), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = load_file(str(out / "rank0.safetensors")), load_file(str(out / "rank1.safetensors"))
    assert not torch.equal(r0["seen_reals"], r1["seen_reals"])  # each replica trained on its own data
    for key in r0:
        if key != "seen_reals":
            assert torch.equal(r0[key], r1[key]), key


def test_a_nan_loss_stops_gan_training_and_keeps_the_last_good_checkpoint(tiny_faceset, tmp_path, monkeypatch):
    """The third step's real faces go NaN (as a diverging run's logits would): training stops there, in one
    message, before the NaN reaches a weight; the checkpoint on disk is the last good one (step 0's)."""
    real_batch, calls = GanTrainer._real_batch, {"n": 0}

    def going_nan(self):
        calls["n"] += 1
        batch = real_batch(self)
        return batch * float("nan") if calls["n"] >= 3 else batch

    monkeypatch.setattr(GanTrainer, "_real_batch", going_nan)
    with pytest.raises(GanTrainError, match=r"training diverged at step 3 \(the discriminator's loss is nan\); "
                                            r"the last good checkpoint in .* is kept"):
        train(tiny_options(tiny_faceset, tmp_path / "gan", kimg=0.032))
    tensors, meta = load_tensors(tmp_path / "gan" / CHECKPOINT)
    assert meta["state"]["step"] == 0 and all(torch.isfinite(v).all() for v in tensors.values())
