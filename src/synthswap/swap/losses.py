"""The swap model's reconstruction losses: DSSIM, a masked pixel loss (L1 or MSE), extra
weight on eyes and mouth, and the learned mask's loss, combined in `swap_loss`.
Images are NCHW in 0..1.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from kornia.losses import ssim_loss
from torch.nn import functional as F

from synthswap.faces.landmark_net import SUBSET

PIXEL_LOSSES = ("l1", "mse")


def jittered(faces: torch.Tensor, rng: np.random.Generator, shift: float = 0.04, scale: float = 0.05) -> torch.Tensor:
    """Each face mirrored (half of them, by chance), shifted by up to `shift` of its size, scaled by up
    to `scale` and its colour drained by a random amount, differentiably. An identity network asked
    about one exact pixel grid rewards patterns tuned to that grid (streaks, a colour split down the
    nose); asked about a face that moves a little and may be mirrored, it can only reward what
    survives that: the face itself."""
    n = faces.shape[0]
    zoom = 1 + rng.uniform(-scale, scale, n)
    mirror = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    theta = np.zeros((n, 2, 3), np.float32)
    theta[:, 0, 0], theta[:, 1, 1] = zoom * mirror, zoom
    theta[:, :, 2] = rng.uniform(-2 * shift, 2 * shift, (n, 2))  # affine_grid's units span the face twice
    grid = F.affine_grid(torch.from_numpy(theta).to(faces.device), list(faces.shape), align_corners=False)
    moved = F.grid_sample(faces.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    # and its colour drained by a random amount (to grey at worst), so no hue pattern pays either
    saturation = torch.from_numpy(rng.uniform(0, 1, (n, 1, 1, 1)).astype(np.float32)).to(faces.device)
    grey = moved.mean(1, keepdim=True)
    return grey + saturation * (moved - grey)


def identity_loss(embed, swapped: torch.Tensor, centroid: torch.Tensor, reconstructed: torch.Tensor,
                  target: torch.Tensor, autocast=contextlib.nullcontext,
                  jitter: np.random.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """1 - cosine, through the identity network `embed`: the B->A swaps against the subject's
    centroid (their real photos), and the A->A reconstructions against their own photo. With a
    `jitter` generator the swaps are embedded `jittered`. The network runs in `autocast` (see
    synthswap.precision); the cosines are fp32."""
    if jitter is not None:
        swapped = jittered(swapped, jitter)
    with autocast():
        e_swap = embed(swapped.float())
        e_rec = embed(reconstructed.float())
        with torch.no_grad():
            e_target = embed(target.float())
    e_swap, e_rec, e_target = e_swap.float(), e_rec.float(), e_target.float()
    id_swap = 1 - (e_swap @ centroid).mean()
    id_rec = 1 - (e_rec * e_target).sum(1).mean()
    return id_swap + id_rec, {"id_swap": float(id_swap.detach()), "id_rec": float(id_rec.detach())}


def shading_loss(swapped: torch.Tensor, destination: torch.Tensor, mask: torch.Tensor, cells: int = 4) -> torch.Tensor:
    """How far the B->A swaps' coarse shading departs from the B faces': each face's masked mean colour
    over a `cells` x `cells` grid, less its mean over the whole face, compared by L1 (weighted by how
    much of each cell the mask covers). A face's light falls on it as it falls on the face it replaces;
    at a quarter of the face per cell this says where it is brighter or warmer (the side lit, the colour
    split an identity network may reward), not what the face looks like, and the overall skin tone,
    part of who someone is, is left free."""
    size = swapped.shape[-1] // cells
    m = mask.float()
    covered = F.avg_pool2d(m, size)  # the share of each cell the mask covers
    area = covered.clamp_min(1e-3)
    total = m.sum((2, 3), keepdim=True).clamp_min(1.0)

    def pattern(x: torch.Tensor) -> torch.Tensor:
        x = x.float() * m
        return F.avg_pool2d(x, size) / area - x.sum((2, 3), keepdim=True) / total

    return ((pattern(swapped) - pattern(destination)).abs() * covered).sum() / (covered.sum() * 3).clamp_min(1e-3)


# FaceMesh points that give the head's pose, as positions in the landmark regressor's output.
_EYE_OUTER = (SUBSET.index(33), SUBSET.index(263))
_NOSE_TIP = SUBSET.index(1)
_MOUTH_CORNERS = (SUBSET.index(61), SUBSET.index(291))


def head_pose(points: torch.Tensor) -> torch.Tensor:
    """(N, 3) pose proxies from 2-D landmarks (N, len(SUBSET), 2), as free of face shape as 2-D
    allows: roll = the eye line's angle (radians); yaw = the nose tip's offset along the eye line
    over the eye distance; pitch = where the nose tip sits between the eye line and the mouth line."""
    left, right = points[:, _EYE_OUTER[0]], points[:, _EYE_OUTER[1]]
    mid = (left + right) / 2
    along = right - left
    distance = along.norm(dim=-1).clamp_min(1e-3)
    u = along / distance[:, None]
    v = torch.stack([-u[:, 1], u[:, 0]], dim=-1)  # perpendicular: down the face
    nose = points[:, _NOSE_TIP] - mid
    mouth = (points[:, _MOUTH_CORNERS[0]] + points[:, _MOUTH_CORNERS[1]]) / 2 - mid
    roll = torch.atan2(along[:, 1], along[:, 0])
    yaw = (nose * u).sum(-1) / distance
    pitch = (nose * v).sum(-1) / (mouth * v).sum(-1).clamp_min(1e-3)
    return torch.stack([roll, yaw, pitch], dim=-1)


def pose_loss(landmarks, swapped: torch.Tensor, destination: torch.Tensor,
              autocast=contextlib.nullcontext) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean absolute difference of the head-pose proxies (`head_pose`) between the B->A swaps and
    the B faces they replace, through the landmark regressor `landmarks`. The identity loss alone
    turns swaps towards the subject's usual pose (pose error +51-61% in docs/swap.md); holding
    every landmark instead also held B's face shape and gave back most of the identity gain."""
    size = landmarks.resolution  # the regressor's own input size (swap.train.LANDMARK_RESOLUTION)
    if swapped.shape[-1] != size:
        swapped = F.interpolate(swapped.float(), size=size, mode="area")
        destination = F.interpolate(destination.float(), size=size, mode="area")
    with autocast():
        with torch.no_grad():
            ref_points = landmarks(destination.float() * 2 - 1)
        points = landmarks(swapped.float() * 2 - 1)
    ref = head_pose(ref_points.float())
    drift = (head_pose(points.float()) - ref).abs().mean()
    return drift, {"pose_swap": float(drift.detach())}


def low_pass(x: torch.Tensor, factor: int) -> torch.Tensor:
    """`x` (NCHW) reduced to 1/`factor` of its resolution by means and brought back (float32); `x`
    itself for a factor of 1."""
    if factor <= 1:
        return x
    return F.interpolate(F.avg_pool2d(x.float(), factor), scale_factor=factor, mode="bilinear", align_corners=False)


def band_limited(x: torch.Tensor, which: torch.Tensor, factor: int) -> torch.Tensor:
    """`x` (NCHW) with the samples `which` (N bools) brought through `low_pass`: the detail they could
    not have. A synthetic face rendered by a 64 px GAN and enlarged teaches a 128 px model only blur
    above 64 px, so its loss is taken in this band."""
    if factor <= 1 or not bool(which.any()):
        return x
    return torch.where(which.to(x.device)[:, None, None, None], low_pass(x, factor), x.float())


def ssim_window(resolution: int) -> int:
    """DeepFaceLab's SSIM kernel size for a resolution (res / 11.6), odd and at least 3."""
    k = max(3, int(resolution / 11.6))
    return k if k % 2 else k + 1


def dssim(x: torch.Tensor, y: torch.Tensor, window: int | None = None) -> torch.Tensor:
    """Structural dissimilarity (1 - SSIM) / 2, averaged over pixels, channels and batch."""
    window = window or ssim_window(x.shape[-1])
    return ssim_loss(x.float(), y.float(), window_size=window, reduction="mean")


def multiscale_dssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """DSSIM averaged over two windows, DeepFaceLab SAEHD's at 128 px and up: its usual window
    (res / 11.6) for structure and one half as wide (res / 23.2) for fine detail."""
    res = x.shape[-1]
    return (dssim(x, y, ssim_window(res)) + dssim(x, y, ssim_window(res // 2))) / 2


def masked_pixel_loss(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Mean L1 or MSE where `weight` (N1HW, 0..1) is on, normalised by the weight's area."""
    diff = (x.float() - y.float()).abs() if kind == "l1" else (x.float() - y.float()) ** 2
    w = weight.float().expand_as(diff)
    return (diff * w).sum() / w.sum().clamp_min(1.0)


def blur_mask(mask: torch.Tensor, resolution: int) -> torch.Tensor:
    """Soften the mask edge so the loss fades out instead of cutting at the face oval."""
    k = max(3, resolution // 32) | 1
    return F.avg_pool2d(F.pad(mask, [k // 2] * 4, mode="replicate"), k, stride=1)


def swap_loss(pred, pred_mask, target, target_mask, eyes_mouth, pixel: str = "l1",
              eyes_mouth_weight: float = 1.0, mask_weight: float = 1.0,
              multiscale: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one identity's reconstruction, DeepFaceLab-style, on the masked face.

    DSSIM (at two windows with `multiscale`) and L1/MSE on the face (outside the mask counts only through the mask head),
    an extra pixel term on eyes and mouth, and a mask term that teaches the mask head
    the faceset's masks. Returns the total and its parts (floats) for the logs.
    """
    res = target.shape[-1]
    m = blur_mask(target_mask, res)
    pred_f, target_f = pred * m, target * m
    d = multiscale_dssim(pred_f, target_f) if multiscale else dssim(pred_f, target_f)
    p = masked_pixel_loss(pred, target, m, pixel)
    em = masked_pixel_loss(pred, target, eyes_mouth, pixel) if eyes_mouth_weight else pred.new_zeros(())
    mk = F.mse_loss(pred_mask.float(), target_mask.float())
    # em is averaged over the small eye/mouth area, so weight 1 already gives those pixels
    # about ten times the weight of other face pixels.
    total = 2.0 * d + p + eyes_mouth_weight * em + mask_weight * mk
    parts = {"dssim": d, "pixel": p, "eyes_mouth": em, "mask": mk}
    return total, {k: float(v.detach()) for k, v in parts.items()}
