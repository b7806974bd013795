"""The face enhancer: it adds detail to a real face degraded to 64 px without moving its identity,
the shipped copy loads and matches its sha256, and a bad command line gives one error line."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from synthswap.enhance import enhance_faces, finetune_enhancer, load_enhancer
from synthswap.enhance.degrade import to_64
from synthswap.faces.measure import sharpness
from synthswap.pretrained import SHIPPED, file_sha256, shipped_model

# dlib distances of the same face vary by about 0.01-0.02 with small pixel changes; an enhancer that
# moves the face by more than this against plain bicubic is changing who it is.
DLIB_TOLERANCE = 0.03


def test_the_shipped_enhancer_loads_and_matches_its_sha256():
    folder = shipped_model("enhance")
    for name, digest in SHIPPED["enhance"].sha256.items():
        assert file_sha256(folder / name) == digest
        assert (folder / name).stat().st_size <= 4 * 2**20
    net = load_enhancer("shipped")
    assert net.steps > 0 and all(torch.isfinite(p).all() for p in net.parameters())


@pytest.fixture(scope="module")
def faces_d9(extracted):
    """Frames of a person the enhancer never trained on (UTKFace is its corpus), 256 px crops."""
    from synthswap.faceset import Faceset

    fs = Faceset.open(extracted("videos/people/d9.mp4", size=256, max_frames=4, every_n=60))
    assert len(fs) >= 3
    return fs, fs.faces[:3]


def test_the_enhancer_raises_the_sharpness_of_a_real_face_at_64px_and_keeps_its_identity(faces_d9):
    from synthswap.faces.dlib_identity import DlibIdentityModel

    torch.set_num_threads(1)
    fs, faces = faces_d9
    net = load_enhancer("shipped")
    dlib = DlibIdentityModel()
    originals = [fs.read_image(f) for f in faces]
    small = [cv2.resize(o, (64, 64), interpolation=cv2.INTER_AREA) for o in originals]
    enhanced = enhance_faces(net, small, 256)
    assert enhanced.shape == (3, 256, 256, 3) and enhanced.dtype == np.uint8
    for face, original, out in zip(faces, originals, enhanced):
        mask, lm = fs.read_mask(face), face.landmarks_array()
        bicubic = to_64(original, 256)
        assert sharpness(out, mask) > 1.3 * sharpness(bicubic, mask)
        ref = dlib.embed(original, lm)
        before = np.linalg.norm(dlib.embed(bicubic, lm) - ref)
        after = np.linalg.norm(dlib.embed(out, lm) - ref)
        assert after <= before + DLIB_TOLERANCE, (before, after)


def test_fine_tuning_on_the_subject_changes_a_copy_and_leaves_the_generic_model(faces_d9, tmp_path):
    from synthswap.faceset import write_subset

    torch.set_num_threads(1)
    fs, faces = faces_d9
    subject = write_subset(fs, faces[:2], tmp_path / "subject")
    net = load_enhancer("shipped")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    tuned = finetune_enhancer(net, subject.root, steps=3, batch_size=2, patch=64)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert any(not torch.equal(v, tuned.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize("argv", [
    ["enhance", "apply", "no_such_faceset", "--out", "big"],
    ["enhance", "apply", "FACES", "--out", "big", "--size", "5000"],
    ["enhance", "apply", "FACES", "--out", "big", "--model", "no_such_model"],
    ["enhance", "train", "--data", "FACES", "--out", "enh", "--steps", "1", "--patch", "90"],
])
def test_a_bad_enhance_command_gives_one_error_line_and_writes_nothing(argv, faces_d9, tmp_path, capsys,
                                                                       monkeypatch):
    from synthswap.cli import main

    monkeypatch.chdir(tmp_path)
    argv = [str(faces_d9[0].root) if a == "FACES" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert not (tmp_path / "big").exists() and not (tmp_path / "enh").exists()


def test_faces_are_cut_again_from_their_video_at_their_native_size(extracted, tmp_path):
    """d9's 128 px crops come from about 360 px of a 512x480 frame: recrop cuts that many pixels
    again, and brought back down to 128 px they are the stored crop; a face whose video is gone is
    skipped, not guessed."""
    import dataclasses

    from synthswap.enhance.recrop import native_size, recrop
    from synthswap.faceset import Faceset

    fs = Faceset.open(extracted("videos/people/d9.mp4", size=128, max_frames=4, every_n=60))
    crops = list(recrop(fs.faces, fs.size))
    assert [f.id for f, _ in crops] == [f.id for f in fs.faces]
    for face, crop in crops:
        side = native_size(face, fs.size, 512)
        assert crop.shape == (side, side, 3) and 320 <= side <= 400
        small = cv2.resize(crop, (128, 128), interpolation=cv2.INTER_AREA).astype(np.float32)
        assert np.abs(small - fs.read_image(face)).mean() < 6  # the stored crop, resampled once more
        assert sharpness(crop, size=side) > sharpness(cv2.resize(small, (side, side)), size=side)
    gone = dataclasses.replace(fs.faces[0], source=str(tmp_path / "moved.mp4"))
    assert list(recrop([gone], fs.size)) == []


def test_swap_pairs_show_the_swap_models_softness_against_the_photo_at_full_size(extracted):
    from synthswap.enhance.swap_pairs import swap_pairs
    from synthswap.pretrained import shipped_model
    from synthswap.swap.loading import face_renderer

    torch.set_num_threads(1)
    subject = extracted("videos/people/d9.mp4", size=128, max_frames=4, every_n=60)
    pairs = swap_pairs(*face_renderer(shipped_model("swap128")), [subject], max_faces=3)
    assert len(pairs) == 3
    for soft, sharp in pairs:
        assert soft.shape == sharp.shape and soft.dtype == sharp.dtype == np.uint8 and soft.shape[0] >= 320
        side = soft.shape[0]
        assert sharpness(soft, size=side) < 0.5 * sharpness(sharp, size=side)


def test_an_adversarial_enhancer_training_saves_and_resumes_its_discriminator(faces_d9, tmp_path):
    """--adv-weight adds a patch discriminator: its weights and optimiser are in the checkpoint, a
    resumed run continues them, and the enhancer it trains still loads as any other."""
    from synthswap.enhance import EnhanceTrainOptions, train_enhancer
    from synthswap.training import load_tensors

    torch.set_num_threads(1)
    fs, _ = faces_d9
    out = tmp_path / "enh"
    opts = dict(data=[str(fs.root)], out=str(out), init="shipped", batch_size=2, patch=64, adv_weight=0.05, log_every=1,
                save_every=0, progress=False)
    train_enhancer(EnhanceTrainOptions(steps=3, **opts))
    tensors, _ = load_tensors(out / "checkpoint.safetensors")
    disc = {k: v.clone() for k, v in tensors.items() if k.startswith("model.disc.")}
    assert disc and any(k.startswith("optim.disc_opt.") for k in tensors)
    log = (out / "log.csv").read_text().splitlines()
    assert log[0].split(",")[4:6] == ["adv", "disc"] and len(log) == 4 and all(row.split(",")[5] for row in log[1:])
    summary = train_enhancer(EnhanceTrainOptions(steps=5, resume=True, **{**opts, "init": None}))
    assert summary["steps"] == 5
    resumed, _ = load_tensors(out / "checkpoint.safetensors")
    assert any(not torch.equal(resumed[k], v) for k, v in disc.items())
    assert load_enhancer(out).steps == 5
