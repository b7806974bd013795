"""A small differentiable landmark regressor, so inversion can have a landmark loss.

MediaPipe's FaceMesh gives the project its landmarks but cannot pass gradients. This CNN
learns to predict a subset of them (face outline, lips, eyes, brows, nose: 120 points)
from images at the GAN's resolution, prepared exactly as the GAN sees faces, with the
faceset's FaceMesh landmarks as labels. It trains in about a minute on CPU on a few
hundred faces; inversion then compares its predictions on the generated and the real
image, which penalises a reconstruction whose mouth or eyes are in the wrong place even
when the pixels nearly agree.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthswap.faces.landmarks import FACE_OVAL, LEFT_EYE_CONTOUR, LIPS_OUTER, RIGHT_EYE_CONTOUR

_LIPS_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95]
_BROWS = [70, 63, 105, 66, 107, 300, 293, 334, 296, 336]
_NOSE = [1, 4, 5, 6, 168, 197, 195, 98, 327, 2]
SUBSET = sorted(set(FACE_OVAL + LIPS_OUTER + _LIPS_INNER + LEFT_EYE_CONTOUR + RIGHT_EYE_CONTOUR + _BROWS + _NOSE
                    + [468, 473]))


class LandmarkNet(nn.Module):
    """(N, 3, R, R) in [-1, 1] -> (N, len(SUBSET), 2) in [0, 1] crop coordinates."""

    def __init__(self, resolution: int, width: int = 16, points: int = len(SUBSET)):
        super().__init__()
        layers, ch, res = [], 3, resolution
        for i in range(4):
            out = width * min(2 ** i, 4)
            layers += [nn.Conv2d(ch, out, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(out, out, 3, stride=2, padding=1),
                       nn.LeakyReLU(0.2)]
            ch, res = out, res // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(ch * res * res, points * 2)
        self.points = points
        self.resolution = resolution

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(self.features(x).flatten(1))
        return 0.5 + y.reshape(-1, self.points, 2)


def landmark_targets(landmarks_crop: list, crop_size: int) -> np.ndarray:
    """The SUBSET of a faceset row's landmarks, in [0, 1] units of the crop."""
    return np.asarray(landmarks_crop, np.float32)[SUBSET, :2] / crop_size


def train_landmark_net(images: torch.Tensor, targets: torch.Tensor, steps: int = 400, batch: int = 32,
                       lr: float = 2e-3, seed: int = 0, device: torch.device | str = "cpu",
                       shift_labels: bool = True, autocast=contextlib.nullcontext) -> tuple[LandmarkNet, float]:
    """Fit on uint8 images (N, 3, R, R) and targets (N, P, 2) ([0, 1] crop units for landmarks);
    returns the net and its final mean error (pixels of the R-px image for landmarks).

    With `shift_labels=False` the same net regresses quantities that do not move with the
    image (head pose): the shift augmentation then leaves the labels alone. `autocast` is the context
    the forward passes run in (see synthswap.precision); the loss is fp32."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    res = images.shape[-1]
    net = LandmarkNet(res, points=targets.shape[1]).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    x_all = images.float().div(127.5).sub(1).to(device)
    y_all = targets.to(device)
    for _ in range(steps):
        idx = torch.randint(0, len(x_all), (min(batch, len(x_all)),), generator=g)
        x, y = x_all[idx], y_all[idx]
        # Small shifts (labels shift with the image) and brightness changes: GAN outputs are
        # never exactly where or as bright as the training faces.
        shift = (torch.rand(len(x), 2, generator=g) - 0.5) * 0.08
        theta = torch.zeros(len(x), 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1
        theta[:, :, 2] = -shift * 2  # grid units are [-1, 1]
        grid = F.affine_grid(theta.to(device), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
        x = x * (1 + 0.2 * (torch.rand(len(x), 1, 1, 1, generator=g).to(device) - 0.5))
        if shift_labels:
            y = y + shift.to(device)[:, None, :]
        with autocast():
            pred = net(x)
        loss = F.smooth_l1_loss(pred.float(), y, beta=0.01)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    net.eval().requires_grad_(False)
    with torch.no_grad():
        err = float((net(x_all[:256]) - y_all[:256]).norm(dim=-1).mean()) * res
    return net, err
