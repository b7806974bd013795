"""A small CNN that reads yaw and pitch off faces at a GAN's resolution.

FaceMesh's depth, and with it the head pose, is unreliable on 64 px faces while its 2-D
expression landmarks are not (correlation 0.51 and 0.22 with full-resolution pose, see
docs/synthesis.md), so `gan directions` trains this on the GAN's real training faces,
labelled with their full-resolution FaceMesh poses, and measures renders' pose with it.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from synthswap.faceset import Faceset
from synthswap.gan.data import compose
from synthswap.faces.landmark_net import train_landmark_net

POSE_UNIT = 60.0  # degrees per regressor output unit


def train_pose_regressor(facesets: list[str], resolution: int, masked: bool = True, limit: int = 1000,
                         steps: int = 500, seed: int = 0) -> tuple[torch.nn.Module, dict]:
    """A small CNN predicting yaw and pitch from faces at the GAN's resolution, trained on real
    facesets (labels: their full-resolution FaceMesh poses). FaceMesh's depth, and with it the
    pose, is unreliable on 64 px faces while its 2-D expression landmarks are not. Returns the net
    and the correlation of its predictions with the labels on 20% held-out faces."""
    rows = [(fs, row) for fs in (Faceset.open(p) for p in facesets) for row in range(len(fs))]
    if len(rows) < 50:
        raise ValueError(f"only {len(rows)} real faces to train the pose regressor on; need 50")
    rng = np.random.default_rng(seed)
    items = [(fs, fs.faces[row]) for fs, row in (rows[i] for i in rng.permutation(len(rows))[:limit])]
    imgs = np.stack([compose(fs.read_image(f), fs.read_mask(f) if masked else None, resolution) for fs, f in items])
    y = np.array([[f.pose["yaw"], f.pose["pitch"]] for _, f in items], np.float32) / POSE_UNIT + 0.5
    n_test = len(items) // 5
    x_t = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()
    y_t = torch.from_numpy(y)[:, None, :]
    net, _ = train_landmark_net(x_t[n_test:], y_t[n_test:], steps=steps, seed=seed, shift_labels=False)
    with torch.no_grad():
        pred = net(x_t[:n_test].float() / 127.5 - 1)[:, 0].numpy()
    corr = {name: round(float(np.corrcoef(pred[:, i], y[:n_test, i])[0, 1]), 3)
            for i, name in enumerate(("yaw", "pitch"))}
    return net, {"heldout_corr": corr, "n_train": len(items) - n_test, "n_heldout": n_test}


def predict_pose(net, bgr: np.ndarray, resolution: int) -> tuple[float, float]:
    img = cv2.resize(bgr, (resolution, resolution), interpolation=cv2.INTER_AREA)[..., ::-1]
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        yaw, pitch = ((net(x)[0, 0] - 0.5) * POSE_UNIT).tolist()
    return yaw, pitch
