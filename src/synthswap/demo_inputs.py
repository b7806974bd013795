"""Public-domain portraits that ship inside installed packages: demo inputs that need no download."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def astronaut_bgr() -> np.ndarray:
    """NASA portrait of Eileen Collins (public domain), shipped by scikit-image."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


def grace_hopper_bgr() -> np.ndarray:
    """US Navy portrait of Grace Hopper (public domain), shipped by matplotlib."""
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        buf = np.frombuffer(fh.read(), np.uint8)
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def animate_portrait(bgr: np.ndarray, out: str | Path, frames: int = 50, fps: int = 25, size: int = 320) -> Path:
    """A short talking-head clip made from one portrait by landmark-driven warping.

    The face is cut out square (about 2.5 face widths), then each frame opens and closes
    the mouth, smiles, blinks and turns the head a little with the same warp engine the
    `synthesize --engine warp` control uses. The demo needs a destination video, and this
    makes one from a public-domain photo without shipping any video.
    """
    from synthswap.faces.align import transform_points
    from synthswap.faces.pipeline import FaceAnalyzer
    from synthswap.media import VideoWriter
    from synthswap.synth.warp import WarpEdit, warp_face

    analyzer = FaceAnalyzer(size=size, with_identity=False)
    try:
        face = analyzer.analyze(bgr)
    finally:
        analyzer.close()
    if face is None:
        raise ValueError("no face found in the portrait to animate")
    # The aligned crop puts the face in the middle; zoom out so the clip shows head and shoulders.
    zoom = np.array([[0.6, 0, size * 0.2], [0, 0.6, size * 0.2]])
    affine = zoom @ np.vstack([face.affine, [0, 0, 1]])
    still = cv2.warpAffine(bgr, affine, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    landmarks = transform_points(face.landmarks_frame, affine)
    with VideoWriter(out, size, size, fps) as writer:
        for i in range(frames):
            t = i / fps
            edit = WarpEdit(mouth_open=0.22 * max(0.0, np.sin(2 * np.pi * 1.3 * t)),
                            smile=0.05 * np.sin(2 * np.pi * 0.4 * t),
                            eye_open_left=-0.2 * (i % 30 in (14, 15, 16)),
                            eye_open_right=-0.2 * (i % 30 in (14, 15, 16)),
                            yaw=8.0 * np.sin(2 * np.pi * 0.3 * t))
            frame, _ = warp_face(still, landmarks, edit)
            writer.write(frame)
    return Path(out)
