"""Where a swap's detail goes missing (not a test): the fine detail of a swap model's own renderings,
before the enhancer and placement, against the faces they render.

For each faceset the model is run on (at its resolution), the median Laplacian variance inside the
face's mask (`evaluate`'s measure, faces.measure.sharpness) of the input faces and of the renderings,
at the model's size and after a 2x downscale (real detail survives it):

- A -> A on the photos the model trained on: what the decoder learned of them (the most it can do);
- A -> A on held-out photos of the subject;
- B -> A on destination faces: what `convert` pastes, before the enhancer;
- B -> B on the same destination faces.

    .venv/bin/python benchmarks/render_sharpness.py --model M --train FACESET --holdout FACESET \
        --dest FACESET [--faces 12]

Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import cv2
import numpy as np
import torch

from synthswap.faces.measure import sharpness
from synthswap.faceset import Faceset
from synthswap.swap.loading import load_model


def faces(path: Path, size: int, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to `count` (BGR crop, mask) of a faceset, evenly spread over it, at `size` px."""
    faceset = Faceset.open(path)
    rows = list(faceset)
    picked = [rows[i] for i in np.linspace(0, len(rows) - 1, min(count, len(rows))).round().astype(int)]
    return [(cv2.resize(faceset.read_image(f), (size, size), interpolation=cv2.INTER_AREA),
             cv2.resize(faceset.read_mask(f), (size, size), interpolation=cv2.INTER_NEAREST)) for f in picked]


@torch.no_grad()
def render(model, crop: np.ndarray, side: str | None) -> np.ndarray:
    """The model's rendering of one BGR crop: reconstructed as `side`, or swapped to A (None)."""
    x = torch.from_numpy(crop).permute(2, 0, 1)[None].float().div(255)
    y = model.reconstruct(x, side)[0] if side else model.swap(x)[0]
    return (y[0].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="a swap model folder (swap train --out)")
    p.add_argument("--train", type=Path, required=True, help="the subject's faceset the model trained on")
    p.add_argument("--holdout", type=Path, required=True, help="the subject's held-out faces")
    p.add_argument("--dest", type=Path, required=True, help="destination faces")
    p.add_argument("--faces", type=int, default=12, help="faces per faceset, evenly spread")
    args = p.parse_args()
    torch.set_num_threads(1)
    model, meta = load_model(args.model)
    size = int(meta["config"]["resolution"])
    print(f"{args.model} ({size} px, {meta['steps']} steps)\n")
    print("| rendering | faces | input | rendered | ratio | input, 2x down | rendered, 2x down | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, folder, side in [("A -> A, trained-on photos", args.train, "A"),
                               ("A -> A, held-out photos", args.holdout, "A"),
                               ("B -> A, destination faces (what convert pastes)", args.dest, None),
                               ("B -> B, destination faces", args.dest, "B")]:
        crops = faces(folder, size, args.faces)
        rendered = [render(model, crop, side) for crop, _ in crops]
        cols = []
        for scale in (size, size // 2):
            given = statistics.median(sharpness(c, m, scale) for c, m in crops)
            made = statistics.median(sharpness(r, m, scale) for r, (_, m) in zip(rendered, crops))
            cols += [f"{given:.0f}", f"{made:.0f}", f"{made / given:.2f}"]
        print(f"| {name} | {len(crops)} | " + " | ".join(cols) + " |")


if __name__ == "__main__":
    main()
