"""SFace rebuilt in torch (faces/sface_torch.py): parity with cv2.FaceRecognizerSF on real faces,
the people ordering, and gradients."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from synthswap.faces.models import sface_path
from synthswap.faces.sface_torch import SFACE_SIZE, _dequantize, sface_identity
from synthswap.faceset import Faceset

CLIPS = ["d0", "d3", "d6", "d9", "d10", "d14", "d20"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def people(extracted):
    """Aligned 128 px crops (N,3,H,W BGR in [0, 1]) and stored SFace identities of the 7 people:
    36 frames each, 4 apart (d0 has 78 frames: 20), 236 faces in all."""
    out = {}
    for clip in CLIPS:
        fs = Faceset.open(extracted(f"videos/people/{clip}.mp4", size=128, max_frames=36, every_n=4))
        crops = np.stack([fs.read_image(f) for f in fs.faces]).transpose(0, 3, 1, 2)
        out[clip] = (torch.from_numpy(crops.astype(np.float32) / 255.0), fs.identities())
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_dequantize_blocks():
    # Two rows of 5 values, blocks of 2 along axis 1: the last block is short, as ONNX allows.
    q = np.array([[0, 1, 2, 3, 4], [10, 11, 12, 13, 14]], np.int8)
    scale = np.array([[1.0, 2.0, 4.0], [0.5, 0.5, 0.5]], np.float32)
    zero = np.array([[0, 1, 2], [10, 10, 10]], np.int8)
    expected = [[0, 1, 2, 4, 8], [0, 0.5, 1, 1.5, 2]]
    np.testing.assert_allclose(_dequantize(q, scale, zero, axis=1, block=2), expected)


@pytest.mark.slow
def test_parity_and_people_ordering(people):
    model = sface_identity()
    recogniser = cv2.FaceRecognizerSF.create(sface_path(), "")
    torch_emb, stored, vs_stored, vs_cv2 = {}, {}, [], []
    for clip, (crops, identities) in people.items():
        with torch.no_grad():
            faces112 = model.to_sface_layout(crops)
            emb = model.embed_sface_layout(faces112).numpy()
        # cv2's own network on the very 112 crop the torch path sees (rounded to uint8 as an image would be).
        images = (faces112.permute(0, 2, 3, 1).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
        reference = _unit(np.stack([recogniser.feature(im).reshape(-1) for im in images]))
        torch_emb[clip], stored[clip] = emb, identities
        vs_cv2.append((emb * reference).sum(1))
        vs_stored.append((emb * identities).sum(1))
    vs_cv2, vs_stored = np.concatenate(vs_cv2), np.concatenate(vs_stored)
    print(f"\n{len(vs_cv2)} faces: torch vs cv2 on the same 112 crop min {vs_cv2.min():.5f} mean {vs_cv2.mean():.5f}; "
          f"vs the faceset's identity (cv2, alignCrop on the frame) min {vs_stored.min():.4f} mean {vs_stored.mean():.4f}")
    assert len(vs_cv2) >= 200
    # The network itself: the same input gives the same embedding as OpenCV's.
    assert vs_cv2.min() >= 0.99
    # Through the template crop: measured min 0.953, mean 0.979. The crop lacks the top rows of
    # SFace's layout (forehead, about 0.02) and its alignment differs slightly from alignCrop's
    # fit on each face's own points (about 0.01); see SFaceIdentity.
    assert vs_stored.min() >= 0.93 and vs_stored.mean() >= 0.97

    def same_and_different(emb):
        same, different = [], []
        for a in CLIPS:
            for b in CLIPS:
                sims = emb[a] @ emb[b].T
                if a == b:
                    same.append(sims[np.triu_indices(len(sims), 1)].mean())
                else:
                    different.append(sims.mean())
        return np.array(same), np.array(different)

    for name, emb in (("torch", torch_emb), ("cv2", stored)):
        same, different = same_and_different(emb)
        print(f"{name}: same-person means min {same.min():.3f}, different-person means max {different.max():.3f}")
        assert same.min() > different.max(), name


def test_gradients_reach_the_input_and_move_identity(people):
    model = sface_identity()
    x = torch.cat([people[c][0][:2] for c in CLIPS[:4]]).clone().requires_grad_(True)  # 8 real faces
    emb = model(x)
    target = emb.detach().roll(1, 0)  # each face's neighbour, another person for even rows
    (emb * target).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad.abs().flatten(1).sum(1) > 0).all()
    assert not any(p.requires_grad for p in model.parameters())

    # Gradient ascent on the cosine from a d6 face to a d9 face's embedding: a few signed steps
    # of 1/255 per pixel must raise it well beyond noise.
    face = people["d6"][0][:1].clone()
    with torch.no_grad():
        goal = model(people["d9"][0][:1])
        start = float((model(face) * goal).sum())
    for _ in range(5):
        face.requires_grad_(True)
        cos = (model(face) * goal).sum()
        (grad,) = torch.autograd.grad(cos, face)
        face = (face.detach() + grad.sign() / 255.0).clamp(0, 1)
    with torch.no_grad():
        end = float((model(face) * goal).sum())
    print(f"\ncosine d6 -> d9 face: {start:.3f} -> {end:.3f} after 5 steps")
    assert end > start + 0.1


def test_cached_and_mode_free(people):
    model = sface_identity()
    assert sface_identity("cpu") is model
    crops = people["d20"][0][:4]
    with torch.no_grad():
        before = model(crops)
        model.train()  # BatchNorms are folded and Dropout dropped: train mode changes nothing
        after = model(crops)
        model.eval()
    torch.testing.assert_close(before, after)
    # Any crop size maps to the same 112 layout.
    with torch.no_grad():
        small = model(torch.nn.functional.interpolate(crops, size=96, mode="bilinear", antialias=True))
    assert small.shape == (4, 128)
    assert model.to_sface_layout(crops).shape[-2:] == (SFACE_SIZE, SFACE_SIZE)
    assert ((small * before).sum(1) > 0.9).all()
