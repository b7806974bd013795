"""Identity supervision: the swap trained against SFace (in torch) makes B->A faces more like A."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthswap.faces.landmark_net import SUBSET
from synthswap.faces.sface_torch import sface_identity
from synthswap.faceset import Faceset
from synthswap.pretrained import shipped_model
from synthswap.swap.data import FaceSource
from synthswap.swap.loading import load_model
from synthswap.swap.losses import head_pose, jittered, shading_loss
from synthswap.swap.train import SwapTrainOptions, train


def _swap_identity(model_dir, faces_a: FaceSource, faces_b: FaceSource) -> float:
    """Mean SFace cosine of the B->A swaps of every B face to the centroid of A's real faces."""
    model, _ = load_model(model_dir)
    embed = sface_identity()
    with torch.no_grad():
        centroid = torch.nn.functional.normalize(embed(torch.from_numpy(faces_a.real_images())).mean(0), dim=0)
        b = torch.from_numpy(np.ascontiguousarray(faces_b.images.transpose(0, 3, 1, 2))).float() / 255
        return float((embed(model.swap(b)[0]) @ centroid).mean())


@pytest.mark.slow
def test_identity_loss_brings_the_swapped_faces_closer_to_the_subject(extracted, tmp_path):
    torch.set_num_threads(1)
    a = extracted("videos/people/d9.mp4", size=64, max_frames=8, every_n=25)  # the subject
    b = extracted("videos/people/d6.mp4", size=64, max_frames=8, every_n=40)  # the destination
    scores = {}
    for weight in (0.0, 4.0):
        out = tmp_path / f"id_{weight:g}"
        train(SwapTrainOptions(src=[str(a)], dst=[str(b)], out=str(out), init=str(shipped_model("swap")),
                               steps=12, batch_size=4, id_weight=weight, id_every=1, seed=0, save_every=0,
                               preview_every=0, progress=False))
        scores[weight] = _swap_identity(out, FaceSource([a], 64), FaceSource([b], 64))
    # Same seed, data and steps: only the identity loss (with its default pose term) differs.
    assert scores[4.0] > scores[0.0] + 0.1, scores


def test_head_pose_proxies_follow_facemesh_yaw_on_real_faces(extracted):
    """The pose term compares 2-D proxies; on real frames the yaw proxy must track FaceMesh's 3-D yaw.
    (Roll is aligned away in the crops, and pitch is the weakest of the three.)"""
    faceset = Faceset.open(extracted("videos/people/d9.mp4", size=128, max_frames=20, every_n=10))
    points = torch.from_numpy(np.stack([f.landmarks_array()[SUBSET, :2] / faceset.size for f in faceset.faces]))
    proxies = head_pose(points).numpy()
    yaw = np.array([f.pose["yaw"] for f in faceset.faces])
    assert np.isfinite(proxies).all()
    assert abs(np.corrcoef(proxies[:, 1], yaw)[0, 1]) > 0.8  # measured 0.975 on these frames


def _faces_and_masks(faceset_dir) -> tuple[torch.Tensor, torch.Tensor]:
    """A 128 px faceset's faces and masks as the swap trainer holds them (NCHW, 0..1)."""
    source = FaceSource([faceset_dir], 128)
    faces = np.ascontiguousarray(source.images.transpose(0, 3, 1, 2))
    return torch.from_numpy(faces).float() / 255, torch.from_numpy(source.masks[:, None]).float() / 255


def test_jittered_faces_keep_their_identity_and_vary_from_draw_to_draw(extracted):
    faces, _ = _faces_and_masks(extracted("videos/people/d9.mp4", size=128, max_frames=20, every_n=10))
    first = jittered(faces, np.random.default_rng(3))
    assert torch.equal(first, jittered(faces, np.random.default_rng(3)))  # a step's draw is reproducible (resume)
    assert not torch.allclose(first, jittered(faces, np.random.default_rng(4)))
    assert (first - faces).abs().mean() > 0.02  # moved, mirrored or greyed: not the same pixels
    embed = sface_identity()
    with torch.no_grad():
        cosine = (embed(first) * embed(faces)).sum(1)
    # still the same face to SFace: 0.82-0.98 measured on d10's faces
    assert float(cosine.min()) > 0.7, cosine


def test_shading_loss_sees_a_colour_split_but_not_the_skin_tone(extracted):
    faces, masks = _faces_and_masks(extracted("videos/people/d9.mp4", size=128, max_frames=20, every_n=10))
    assert float(shading_loss(faces, faces, masks)) == 0.0
    tinted = (faces * torch.tensor([0.8, 1.0, 1.1])[None, :, None, None]).clamp(0, 1)  # a warmer skin, all over
    split = faces.clone()
    split[..., :64] *= torch.tensor([0.8, 0.9, 1.15])[None, :, None, None]  # the same, on half of the face
    tint_cost = float(shading_loss(tinted, faces, masks))
    split_cost = float(shading_loss(split.clamp(0, 1), faces, masks))
    assert split_cost > 3 * tint_cost, (split_cost, tint_cost)  # measured on d10's faces: 0.039 against 0.007
