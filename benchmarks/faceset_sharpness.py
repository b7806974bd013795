"""How much fine detail a faceset's faces hold (not a test): the mean Laplacian variance of each
face's central part, as stored and after a 2x downscale (real detail survives the downscale; the
blur of a resampled face shows at full size). Compares the faces that train a swap model: the
subject's photos against the synthetic faces made from them.

    .venv/bin/python benchmarks/faceset_sharpness.py FACESET [FACESET ...] [--margin 0.1875]

Prints a Markdown table, one row per faceset.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from synthswap.faces.measure import sharpness


def detail(path: Path, margin: float) -> tuple[float, float]:
    """(Laplacian variance, the same after a 2x downscale) of the face's centre, by `evaluate`'s
    measure (faces.measure.sharpness): `margin` of the side cut on each edge, so that the
    background and the crop's border do not count."""
    face = cv2.imread(str(path))
    if face is None:
        raise SystemExit(f"{path}: not an image")
    cut = int(round(margin * face.shape[0]))
    centre = face[cut:face.shape[0] - cut, cut:face.shape[1] - cut]
    return sharpness(centre, size=centre.shape[0]), sharpness(centre, size=centre.shape[0] // 2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("facesets", nargs="+", type=Path, help="faceset folders (their faces/ are read)")
    p.add_argument("--margin", type=float, default=0.1875, help="share of the side cut on each edge (24 px of 128)")
    args = p.parse_args()
    print("| faceset | faces | Laplacian variance | after 2x down |\n| --- | ---: | ---: | ---: |")
    for folder in args.facesets:
        faces = sorted((folder / "faces").glob("*.png")) + sorted((folder / "faces").glob("*.jpg"))
        if not faces:
            raise SystemExit(f"{folder}: no faces/ images")
        values = np.array([detail(f, args.margin) for f in faces])
        print(f"| {folder} | {len(faces)} | {values[:, 0].mean():.0f} | {values[:, 1].mean():.0f} |")


if __name__ == "__main__":
    main()
