"""Measuring rendered faces (GAN samples) with the extraction code: expression + yaw/pitch.

What `gan directions` fits its directions on. Rendered faces are small (32-64 px) aligned
crops, so they are enlarged before analysis and, when the detector misses one, FaceMesh is
run once more on the box where the alignment template puts the face.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
import torch
from tqdm import tqdm

from synthswap.faces.measure import ATTRIBUTE_NAMES, attribute_vector
from synthswap.faces.pipeline import FaceAnalyzer
from synthswap.gan.data import to_bgr_images
from synthswap.gan.pose_net import predict_pose


class FaceMeter:
    """Expression + yaw/pitch of face images, by the extraction code (detector, FaceMesh, measure).

    GAN samples are aligned crops, so when the detector misses a small or odd face the
    landmarks are tried once more on the box where the alignment template puts the face.
    """

    def __init__(self, pose_net=None, resolution: int | None = None):
        self.analyzer = FaceAnalyzer(128, with_identity=False)
        self.pose_net = pose_net  # optional yaw/pitch regressor (see train_pose_regressor)
        self.resolution = resolution
        self.found = 0
        self.fallback = 0
        self.missed = 0

    def close(self) -> None:
        self.analyzer.close()

    def __call__(self, bgr: np.ndarray) -> np.ndarray:
        face = self.analyzer.analyze(bgr)
        if face is None:
            s = bgr.shape[0]
            box = np.array([0.18 * s, 0.2 * s, 0.64 * s, 0.72 * s])  # around the template's face
            lm = self.analyzer.landmarker(bgr, box)
            if lm is None:
                self.missed += 1
                return np.full(len(ATTRIBUTE_NAMES), np.nan)
            face = self.analyzer.from_landmarks(bgr, lm)
            self.fallback += 1
        else:
            self.found += 1
        pose = face.pose
        if self.pose_net is not None:
            yaw, pitch = predict_pose(self.pose_net, bgr, self.resolution)
            pose = {"yaw": yaw, "pitch": pitch}
        return attribute_vector(face.expression, pose)


def measure_renders(render: Callable[[np.ndarray], list[np.ndarray]], w: np.ndarray, batch: int = 32,
                    progress: bool = False, meter: FaceMeter | None = None) -> tuple[np.ndarray, dict]:
    """Render each row of `w` (via `render`, BGR uint8 images) and measure it: (N, 8), counts."""
    meter = meter or FaceMeter()
    out = []
    it = range(0, len(w), batch)
    if progress:
        it = tqdm(it, desc="render + measure", unit="batch")
    try:
        for start in it:
            out.extend(meter(img) for img in render(w[start:start + batch]))
    finally:
        meter.close()
    return np.array(out), {"found": meter.found, "fallback_box": meter.fallback, "missed": meter.missed}


def gan_renderer(G, device) -> Callable[[np.ndarray], list[np.ndarray]]:
    """W rows -> BGR images from generator G (same w for every layer, fixed noise)."""
    def render(w: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            ws = G.broadcast(torch.from_numpy(np.asarray(w, np.float32)).to(device))
            renders = to_bgr_images(G.synthesis(ws, noise_mode="const"))
        # Upscaled x2 for the landmark model: FaceMesh is surer on 128 px than 64 px faces.
        return [cv2.resize(bgr, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC) for bgr in renders]

    return render
