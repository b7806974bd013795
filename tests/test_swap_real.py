"""The swap engine on real faces from ../shared/data: training, resume, signals, convert, DDP.

Small on purpose (64 px, tiny widths, tens of steps) so the file runs in a few minutes
on 2 CPU cores; the point is the machinery on real data, not the quality of the swap.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from synthswap.cli import main
from synthswap.swap.data import (
    Augment,
    FaceSource,
    augment_batch,
    draw_augment,
    step_rng,
)
from synthswap.swap import train as swap_train

TINY_MODEL = ["--resolution", "64", "--e-dims", "8", "--ae-dims", "32", "--d-dims", "8", "--d-mask-dims", "4",
              "--batch-size", "4"]
# The machinery, without the identity and pose losses (each training with them first fits a landmark
# regressor, ~20 s): the resume test keeps them on, tests/test_swap_identity.py tests them.
TINY = [*TINY_MODEL, "--id-weight", "0", "--threads", "2", "--quiet", "--device", "cpu"]
GRID_CLIP = "videos/grid/bbaf2n.mpg"


def _log(model_dir: Path) -> list[dict]:
    with open(model_dir / "log.csv", newline="") as fh:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(fh)]


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="2")
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture(scope="module")
def facesets(extracted):
    a = extracted("videos/people/d6.mp4", size=64, max_frames=16, every_n=30)
    b = extracted("videos/people/d9.mp4", size=64, max_frames=16, every_n=18)
    return a, b


@pytest.fixture(scope="module")
def trained(facesets, tmp_path_factory):
    """A tiny df model trained 40 steps on two people's real faces (A = d6, B = d9)."""
    a, b = facesets
    out = tmp_path_factory.mktemp("swap") / "model"
    rc = main(["swap", "train", "--src", str(a), "--dst", str(b), "--out", str(out), "--steps", "40",
               "--lr", "1e-3", "--log-every", "1", "--save-every", "20", "--preview-every", "20", *TINY])
    assert rc == 0
    return out


def test_augmentation_is_a_function_of_step_and_moves_faces_and_masks_alike(facesets):
    source = FaceSource([facesets[0]], 64)
    a = source.batch(step_rng(5, 7), 6, Augment())
    b = source.batch(step_rng(5, 7), 6, Augment())
    c = source.batch(step_rng(5, 8), 6, Augment())
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert not torch.equal(a[1], c[1])
    warped, target, mask, region = a
    assert warped.shape == target.shape == (6, 3, 64, 64) and mask.shape == region.shape == (6, 1, 64, 64)
    assert float(target.min()) >= 0 and float(target.max()) <= 1
    assert float((warped - target).abs().mean()) > 0.01  # the warp moves the input only
    nowarp = source.batch(step_rng(5, 7), 6, Augment(warp=False))
    torch.testing.assert_close(nowarp[0], nowarp[1], rtol=0, atol=0)

    images, masks, regions = (x[:6] for x in source.on_device("cpu"))
    # No movement, no colour: the faces come back as they are.
    still = draw_augment(step_rng(0, 0), 6, 64, Augment(rotation_deg=0, scale=0, shift=0, flip=False,
                                                      warp=False, colour=False))
    _, target, mask, _ = augment_batch(images, masks, regions, still)
    torch.testing.assert_close(target, images.float() / 255, rtol=0, atol=1e-5)
    torch.testing.assert_close(mask, masks.float() / 255, rtol=0, atol=1e-5)
    # A flip alone mirrors the face.
    still.flip[:] = True
    torch.testing.assert_close(augment_batch(images, masks, regions, still)[1], images.float().flip(3) / 255,
                               rtol=0, atol=1e-5)
    # A random similarity transform moves the face mask exactly as it moves the face: faces whose
    # pixels are their own mask come out as the moved mask.
    edge_free = masks.clone()
    edge_free[..., :2, :], edge_free[..., -2:, :], edge_free[..., :2], edge_free[..., -2:] = 0, 0, 0, 0
    moved = draw_augment(step_rng(3, 1), 6, 64, Augment(colour=False, warp=False))
    assert np.abs(moved.angle).max() > 1
    _, target, mask, _ = augment_batch(edge_free.expand(-1, 3, -1, -1), edge_free, regions, moved)
    torch.testing.assert_close(target[:, :1], mask, rtol=0, atol=1e-5)
    assert float((mask - edge_free.float() / 255).abs().mean()) > 0.01


@pytest.mark.slow
def test_training_loss_falls_and_outputs_are_complete(trained):
    rows = _log(trained)
    assert [int(r["step"]) for r in rows] == list(range(1, 41))
    first = np.mean([r["loss"] for r in rows[:4]])
    last = np.mean([r["loss"] for r in rows[-4:]])
    assert last < 0.85 * first, (first, last)
    # Reconstruction (pixel) loss of both identities falls, not just the mask term.
    for who in "ab":
        assert np.mean([r[f"pixel_{who}"] for r in rows[-4:]]) < np.mean([r[f"pixel_{who}"] for r in rows[:4]])
    meta = json.loads((trained / "model.json").read_text())
    assert meta["steps"] == 40 and meta["config"]["arch"] == "df" and meta["config"]["resolution"] == 64
    assert meta["data"]["A"][0]["faces"] > 5 and meta["versions"]["torch"]
    grid = cv2.imread(str(trained / "preview.png"))
    assert grid.shape[1] == 5 * 64 and grid.shape[0] % 64 == 0  # A, A->A, B, B->B, B->A
    assert (trained / "previews" / "step_0000020.png").is_file()
    assert not list(trained.glob(".*.tmp*"))


@pytest.mark.slow
def test_resume_gives_the_same_next_step_as_an_uninterrupted_run(facesets, tmp_path, monkeypatch):
    a, b = facesets
    common = ["--src", str(a), "--dst", str(b), "--log-every", "1", "--seed", "7", "--preview-every", "0", *TINY,
              "--id-weight", "1"]  # with the identity and pose losses, as run trains
    assert main(["swap", "train", *common, "--out", str(tmp_path / "full"), "--steps", "4"]) == 0
    assert main(["swap", "train", *common, "--out", str(tmp_path / "split"), "--steps", "3"]) == 0
    # Starting over an existing model without --resume is refused (nothing is overwritten).
    before = (tmp_path / "split" / "model.safetensors").read_bytes()
    assert main(["swap", "train", *common, "--out", str(tmp_path / "split"), "--steps", "4"]) == 2
    assert (tmp_path / "split" / "model.safetensors").read_bytes() == before
    # The resume measures head pose with the landmark regressor the first session fitted and kept in the
    # model folder; it does not fit one again (30-45 s on 2 cores).
    assert (tmp_path / "split" / swap_train.LANDMARK_NET_FILE).is_file()

    def no_second_fit(*args, **kwargs):
        raise AssertionError("the landmark regressor was fitted again on resume")

    monkeypatch.setattr(swap_train, "train_landmark_net", no_second_fit)
    assert main(["swap", "train", "--out", str(tmp_path / "split"), "--resume", "--steps", "4", "--log-every", "1",
                 "--quiet", "--threads", "2", "--device", "cpu"]) == 0
    full, split = _log(tmp_path / "full"), _log(tmp_path / "split")
    assert [int(r["step"]) for r in split] == [1, 2, 3, 4]
    assert split[3]["loss"] == pytest.approx(full[3]["loss"], rel=1e-5, abs=1e-6)
    assert split[3]["loss"] != pytest.approx(full[2]["loss"], rel=1e-5)  # a real next step, not a repeat
    meta = json.loads((tmp_path / "split" / "model.json").read_text())
    assert meta["steps"] == 4 and [h["start_step"] for h in meta["history"]] == [0, 3]


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_130(facesets, tmp_path):
    a, b = facesets
    out = tmp_path / "m"
    proc = subprocess.Popen(
        [sys.executable, "-m", "synthswap", "swap", "train", "--src", str(a), "--dst", str(b), "--out", str(out),
         "--steps", "100000", "--log-every", "1", "--save-every", "0", "--preview-every", "0", *TINY],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (out / "log.csv").is_file():
            time.sleep(0.2)
        while time.monotonic() < deadline and len(_log(out)) < 2:
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    # Interrupted is not done: a checkpoint, the summary, and an exit code that says so.
    assert proc.returncode == 130, stderr.decode()[-2000:]
    assert "--resume" in stderr.decode()
    summary = json.loads(stdout.decode())
    assert summary["stopped_by_signal"] and summary["step"] >= 2
    meta = json.loads((out / "model.json").read_text())
    assert meta["steps"] == summary["step"]
    from synthswap.swap.loading import load_model

    load_model(out)  # the checkpoint written on SIGTERM loads


@pytest.mark.parametrize("damage", ["truncate", "garbage", "json"])
@pytest.mark.slow
def test_corrupt_checkpoint_gives_clear_error_and_no_output(trained, shared_data, tmp_path, capsys, damage):
    model = tmp_path / "model"
    shutil.copytree(trained, model)
    ckpt = model / "model.safetensors"
    if damage == "truncate":
        ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    elif damage == "garbage":
        ckpt.write_bytes(os.urandom(4096))
    else:
        (model / "model.json").write_text("{not json")
    out = tmp_path / "out.mp4"
    rc = main(["swap", "convert", "--model", str(model), "--video", str(shared_data / GRID_CLIP),
               "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert ("corrupt" in err or "truncated" in err) and str(model) in err
    assert not out.exists() and not list(tmp_path.glob(".out.mp4*"))
    # Without the checkpoint before it to fall back to (tests/test_model_checks.py), resuming training
    # from it fails just as clearly and leaves the damaged files as they were.
    (model / "model.safetensors.prev").unlink(missing_ok=True)
    damaged = {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()}
    assert main(["swap", "train", "--out", str(model), "--resume", "--steps", "50", "--quiet"]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()} == damaged


def _audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


@pytest.mark.slow
def test_convert_grid_clip_keeps_frames_fps_duration_and_audio_bits(trained, shared_data, tmp_path):
    from synthswap.media import iter_video_frames, probe_video

    src = shared_data / GRID_CLIP
    out = tmp_path / "swapped.mp4"
    assert main(["swap", "convert", "--model", str(trained), "--video", str(src), "--out", str(out),
                 "--quiet", "--threads", "2", "--blend", "seamless", "--color", "hist"]) == 0
    src_info, out_info = probe_video(src), probe_video(out)
    src_frames = list(iter_video_frames(src))
    out_frames = list(iter_video_frames(out))
    assert len(out_frames) == len(src_frames) == 75
    assert out_info.fps == src_info.fps
    assert (out_info.width, out_info.height) == (src_info.width, src_info.height)
    assert abs(out_info.duration_s - len(src_frames) / float(src_info.fps)) < 1e-6
    assert abs(out_info.duration_s - src_info.duration_s) <= 1.0 / float(src_info.fps)
    audio_src, audio_out = _audio_packets(src), _audio_packets(out)
    assert len(audio_src) > 50 and audio_out == audio_src
    # The face changed; the frame's corners (far from the face) stayed as they were, but for the
    # watermark's fine grain (2-3 grey levels on average, tests/test_provenance.py) and H.264.
    s, o = src_frames[40].bgr.astype(np.float32), out_frames[40].bgr.astype(np.float32)
    h, w = s.shape[:2]
    centre = (slice(h // 4, 3 * h // 4), slice(w // 3, 2 * w // 3))
    corner = np.abs(o[:30, :30] - s[:30, :30]).mean()
    assert corner < 5.0
    assert np.abs(o[centre] - s[centre]).mean() > corner + 3.0


@pytest.mark.slow
def test_video_without_faces_comes_back_unchanged(trained, tmp_path, capsys):
    from skimage import data as skdata

    from synthswap.media import VideoWriter, iter_video_frames

    coffee = cv2.cvtColor(skdata.coffee(), cv2.COLOR_RGB2BGR)  # a real photo with no face in it
    src = tmp_path / "noface.mp4"
    with VideoWriter(src, 192, 144, 25) as writer:
        for i in range(12):
            writer.write(np.ascontiguousarray(coffee[100 + 4 * i: 244 + 4 * i, 150 + 6 * i: 342 + 6 * i]))
    out = tmp_path / "out.mp4"
    # --no-watermark: the watermark changes every pixel on purpose (tests/test_provenance.py); here
    # the point is that the swap itself leaves a frame without a face alone.
    assert main(["swap", "convert", "--model", str(trained), "--video", str(src), "--out", str(out),
                 "--quiet", "--threads", "2", "--no-watermark"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 12 and summary["frames_without_face"] == 12 and summary["faces_swapped"] == 0
    # Passed through pixel for pixel: the output is what a plain re-encode of the decoded
    # frames with the same encoder settings gives (H.264 is lossy, so compare to that).
    control = tmp_path / "control.mp4"
    with VideoWriter(control, 192, 144, 25) as writer:
        for frame in iter_video_frames(src):
            writer.write(frame.bgr)
    after = [f.bgr.astype(np.float32) for f in iter_video_frames(out)]
    expected = [f.bgr.astype(np.float32) for f in iter_video_frames(control)]
    assert len(after) == len(expected) == 12
    assert max(np.abs(a - b).max() for a, b in zip(after, expected)) == 0


@pytest.mark.slow
def test_images_mode_swaps_faces_and_leaves_the_rest(trained, shared_data, tmp_path):
    from synthswap.media import iter_video_frames

    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    for frame in iter_video_frames(shared_data / GRID_CLIP, every_n=15, max_frames=4):
        cv2.imwrite(str(frames_dir / f"f{frame.index:04d}.png"), frame.bgr)
    out = tmp_path / "swapped"
    assert main(["swap", "convert", "--model", str(trained), "--images", str(frames_dir), "--out", str(out),
                 "--quiet", "--threads", "2", "--no-watermark"]) == 0  # the watermark changes every pixel
    names = sorted(p.name for p in frames_dir.iterdir())
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, "convert.json"])  # convert.json: ours
    for name in names:
        a, b = cv2.imread(str(frames_dir / name)), cv2.imread(str(out / name))
        assert a.shape == b.shape
        changed = np.any(a != b, axis=2)
        assert changed.sum() > 500  # the face region was replaced
        assert not changed[:20, :].any() and not changed[:, :20].any()  # borders untouched


@pytest.mark.slow
def test_ddp_two_cpu_processes_end_with_identical_weights(facesets, tmp_path):
    a, b = facesets
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "synthswap", "swap", "train", "--src", str(a), "--dst", str(b), "--out", str(out),
           "--steps", "3", "--preview-every", "0", "--log-every", "1", *TINY_MODEL, "--threads", "1", "--quiet",
           "--device", "cpu"]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, timeout=240)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    meta = json.loads((out / "model.json").read_text())
    last = meta["history"][-1]
    assert last["world_size"] == 2 and meta["steps"] == 3
    digests = last["replica_sha256"]
    assert len(digests) == 2 and digests[0] == digests[1]
    # The replicas did train (each on its own data): weights moved away from the seeded init.
    import torch

    from synthswap.swap.loading import load_model
    from synthswap.swap.networks import SwapConfig, SwapModel
    from synthswap.swap.train import weights_digest

    torch.manual_seed(0)
    init = SwapModel(SwapConfig.from_dict(meta["config"]))
    assert weights_digest(load_model(out)[0]) == digests[0] != weights_digest(init)


def test_runs_swap_stage_keeps_its_minutes_budget_across_an_interruption(facesets, tmp_path):
    """`run`'s swap stage resumed after an interruption trains only what is left of its budget: the
    seconds each session trained are in model.json's history; a spent budget trains no more. Previews
    come by the clock too."""
    from synthswap.cache import MARKER_SUFFIX
    from synthswap.stages import swap_train_stage
    from synthswap.swap.networks import SwapConfig
    from synthswap.swap.train import SwapTrainOptions, trained_seconds

    a, b = facesets
    out = tmp_path / "swap"
    opts = SwapTrainOptions(src=[str(a)], dst=[str(b)], out=str(out), steps=100_000, minutes=0.02, batch_size=4,
                            config=SwapConfig(resolution=64, e_dims=8, ae_dims=32, d_dims=8, d_mask_dims=4),
                            preview_every=0, preview_minutes=0.005, progress=False, device="cpu")
    lines: list[str] = []
    swap_train_stage("swap train", opts, lines.append)
    meta = json.loads((out / "model.json").read_text())
    steps, spent = meta["steps"], trained_seconds(out)
    assert 0 < steps < 100_000 and spent == meta["history"][0]["seconds"] >= 0.02 * 60
    # previews by time as well as by steps: every 0.3 s here, the first after 0.15 s
    assert len(list((out / "previews").glob("step_*.png"))) >= 2

    # As if the process had been killed after that checkpoint: the stage is pending, and resumes.
    marker = out.with_name(f".{out.name}{MARKER_SUFFIX}")
    state = json.loads(marker.read_text())
    marker.write_text(json.dumps({"pending": state["done"], "params": state["params"]}))
    swap_train_stage("swap train", opts, lines.append)
    assert "[swap train] its 0.02-minute budget was spent before the interruption: the checkpoint is the model" in lines
    assert json.loads((out / "model.json").read_text())["steps"] == steps  # not one step more
    assert json.loads(marker.read_text())["done"] == state["done"]


def test_a_faceset_too_large_to_hold_is_read_per_batch_into_the_same_batches(facesets):
    """Above PRELOAD_BYTES a FaceSource reads the faces a batch needs from their files (memory does
    not grow with the corpus); what training sees is bit for bit what the preloaded faces give."""
    from synthswap.swap.data import PRELOAD_BYTES

    a, b = facesets
    held, streamed = FaceSource([a, b], 64, preload=True), FaceSource([a, b], 64, preload=False)
    assert held.preloaded and not streamed.preloaded and not hasattr(streamed, "images")
    for step in range(3):
        for x, y in zip(held.batch(step_rng(0, step, 0), 4, Augment()), streamed.batch(step_rng(0, step, 0), 4, Augment())):
            assert torch.equal(x, y)
    idx = np.array([3, 0, len(held) - 1, 3])
    assert all(np.array_equal(x, y) for x, y in zip(held.faces(idx), streamed.faces(idx)))
    assert np.array_equal(held.real_images(), streamed.real_images())
    assert FaceSource([a], 64).preloaded and len(held) * 64 * 64 * 5 < PRELOAD_BYTES  # small sets stay in memory


def test_lr_anneal_lowers_the_rate_over_the_budgets_last_part(trained, tmp_path):
    """--lr-anneal F: the learning rate is --lr until the last F of the run's budget, then falls
    linearly to a tenth of it at the last step (here a resume of 10 steps, its last half annealed)."""
    model = tmp_path / "annealed"
    shutil.copytree(trained, model)
    assert main(["swap", "train", "--out", str(model), "--resume", "--steps", "50", "--lr-anneal", "0.5",
                 "--log-every", "1", "--preview-every", "0", "--quiet", "--threads", "2", "--device", "cpu"]) == 0
    rows = [r for r in _log(model) if r["step"] > 40]
    assert [r["step"] for r in rows] == list(range(41, 51))
    assert [r["lr"] for r in rows] == pytest.approx([1e-3] * 5 + [1e-3 * (1 - 0.9 * k / 5) for k in range(1, 6)])
    assert json.loads((model / "model.json").read_text())["history"][-1]["lr_anneal"] == 0.5


def test_warp_off_last_trains_the_budgets_last_part_without_the_random_warp(trained, tmp_path):
    """--warp-off-last F: the inputs are randomly warped until the last F of the run's budget and
    not after it (DeepFaceLab's random warp turned off once the face is learned); log.csv says which
    steps were warped and model.json's history records F (here a resume of 10 steps, its last 3)."""
    model = tmp_path / "unwarped"
    shutil.copytree(trained, model)
    assert main(["swap", "train", "--out", str(model), "--resume", "--steps", "50", "--warp-off-last", "0.3",
                 "--log-every", "1", "--preview-every", "0", "--quiet", "--threads", "2", "--device", "cpu"]) == 0
    rows = [r for r in _log(model) if r["step"] > 40]
    assert [(r["step"], r["warp"]) for r in rows] == [(s, 1 if s <= 47 else 0) for s in range(41, 51)]
    assert json.loads((model / "model.json").read_text())["history"][-1]["warp_off_last"] == 0.3
    # without it every step is warped, as before
    assert all(r["warp"] == 1 for r in _log(trained))


def test_gan_power_trains_a_discriminator_that_a_resume_restores_or_turns_on(trained, facesets, tmp_path):
    """--gan-power adds SAEHD's patch discriminator: its weights and optimiser are checkpointed and
    restored; a model trained without one may turn it on when resumed (it starts fresh); the loss
    that is logged includes its term."""
    from synthswap.training import load_tensors

    a, b = facesets
    out = tmp_path / "gan"
    assert main(["swap", "train", "--src", str(a), "--dst", str(b), "--out", str(out), "--steps", "2",
                 "--gan-power", "0.1", "--log-every", "1", "--preview-every", "0", *TINY]) == 0
    tensors, _ = load_tensors(out / "model.safetensors")
    disc = {k: v.clone() for k, v in tensors.items() if k.startswith("model.disc.")}
    assert disc and any(k.startswith("optim.disc_adamw.") for k in tensors)
    assert all(r["disc"] > 0 and "gan" in r for r in _log(out))
    assert main(["swap", "train", "--out", str(out), "--resume", "--steps", "3", "--quiet", "--threads", "2",
                 "--device", "cpu"]) == 0
    assert json.loads((out / "model.json").read_text())["training"]["gan_power"] == 0.1
    resumed, _ = load_tensors(out / "model.safetensors")
    assert any(not torch.equal(resumed[k], v) for k, v in disc.items())

    later = tmp_path / "later"
    shutil.copytree(trained, later)
    # Its log as a version before GAN power wrote it: no gan or disc column.
    with open(later / "log.csv", newline="") as fh:
        old_rows = [{k: v for k, v in row.items() if k not in ("gan", "disc")} for row in csv.DictReader(fh)]
    with open(later / "log.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(old_rows[0]))
        writer.writeheader()
        writer.writerows(old_rows)
    assert main(["swap", "train", "--out", str(later), "--resume", "--steps", "41", "--gan-power", "0.05",
                 "--log-every", "1", "--quiet", "--threads", "2", "--device", "cpu"]) == 0
    assert json.loads((later / "model.json").read_text())["training"]["gan_power"] == 0.05
    assert any(k.startswith("model.disc.") for k in load_tensors(later / "model.safetensors")[0])
    # The log widened its header once: the earlier rows are kept, the resumed ones carry the new terms.
    rows = _log(later)
    assert len(rows) == len(old_rows) + 1
    assert [r["step"] for r in rows[:-1]] == [float(r["step"]) for r in old_rows]
    assert "disc" not in rows[0] and rows[-1]["step"] == 41 and rows[-1]["disc"] > 0 and "gan" in rows[-1]


def test_photo_detail_puts_the_subjects_own_detail_into_the_converted_face(trained, shared_data, tmp_path, capsys):
    from synthswap.media import iter_video_frames

    src = shared_data / "videos/people/d9.mp4"  # the model's B
    args = ["swap", "convert", "--model", str(trained), "--video", str(src), "--max-frames", "6", "--quiet",
            "--threads", "2", "--no-watermark"]
    plain, detailed = tmp_path / "plain.mp4", tmp_path / "detailed.mp4"
    assert main([*args, "--out", str(plain)]) == 0
    assert main([*args, "--out", str(detailed), "--photo-detail", "16"]) == 0
    capsys.readouterr()

    def face_sharpness(video: Path) -> float:
        # Eyes, nose and mouth of d9's face (about 250 px wide in 512 x 480), brought down 2x: the detail of
        # a 64 px face placed that large lies below the frame's own pixel scale.
        faces = [cv2.cvtColor(f.bgr, cv2.COLOR_BGR2GRAY)[200:340, 170:340] for f in iter_video_frames(video)]
        half = [cv2.resize(g, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA) for g in faces]
        return float(np.mean([cv2.Laplacian(g, cv2.CV_32F).var() for g in half]))

    # The tiny 40-step model renders a smooth face; the subject's photos (d6's faces) bring detail back
    # (measured 7.0 -> 45.2).
    assert face_sharpness(detailed) > 3 * face_sharpness(plain)

    # A band that does not divide the model's 64 px, or a model whose facesets are gone: a clear error,
    # and no output.
    assert main([*args, "--out", str(tmp_path / "bad.mp4"), "--photo-detail", "24"]) != 0
    assert "must divide the model's face size (64 px)" in capsys.readouterr().err
    moved = tmp_path / "moved_model"
    shutil.copytree(trained, moved)
    meta = json.loads((moved / "model.json").read_text())
    for faceset in meta["data"]["A"]:
        faceset["path"] = str(tmp_path / "gone")
    (moved / "model.json").write_text(json.dumps(meta))
    assert main([*args, "--model", str(moved), "--out", str(tmp_path / "bad.mp4"), "--photo-detail", "16"]) != 0
    assert "--photo-detail needs the facesets the model was trained on" in capsys.readouterr().err
    assert not (tmp_path / "bad.mp4").exists()
