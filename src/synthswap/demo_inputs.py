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


def write_demo_photos(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "astronaut.png", folder / "grace_hopper.png"]
    cv2.imwrite(str(paths[0]), astronaut_bgr())
    cv2.imwrite(str(paths[1]), grace_hopper_bgr())
    return paths
