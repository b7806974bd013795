"""How well swap models reconstruct faces no model trained on (the model cards' quality figure).

The masked L1 error (0-1 scale) of the first N of UTKFace's 1,000 held-out photos (the shipped split:
names sorted, shuffled with random.Random(0), the last 1,000), extracted at each model's size and
reconstructed through side A:

    .venv/bin/python benchmarks/heldout_reconstruction.py src/synthswap/weights/swap_df128 MODEL_DIR [--faces 60]

`tests/test_pretrained.py` checks the same on 12 photos.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from synthswap.extract import extract
from synthswap.pretrained import corpus_heldout
from synthswap.swap.data import FaceSource
from synthswap.swap.loading import load_model
from synthswap.swap.losses import masked_pixel_loss

UTKFACE = Path(__file__).resolve().parents[1] / "../shared/data/faces/utkface"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", help="swap model folders (all of one resolution)")
    p.add_argument("--faces", type=int, default=60)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    photos = corpus_heldout(UTKFACE, args.faces)
    models = [(path, *load_model(path)) for path in args.models]
    size = models[0][1].config.resolution
    with tempfile.TemporaryDirectory() as tmp:
        extract(photos, Path(tmp) / "faces", size=size, progress=False, log=lambda m: None)
        faces = FaceSource([Path(tmp) / "faces"], size)
    x = torch.from_numpy(np.ascontiguousarray(faces.images.transpose(0, 3, 1, 2))).float() / 255
    m = torch.from_numpy(faces.masks)[:, None].float() / 255
    for path, model, meta in models:
        if model.config.resolution != size:
            raise SystemExit(f"{path}: {model.config.resolution} px, not {size} px like the first model")
        with torch.no_grad():
            error = float(masked_pixel_loss(model.reconstruct(x, "A")[0], x, m))
        print(f"{path}: step {meta.get('steps')}, {len(x)} held-out faces, masked L1 {error:.4f}")


if __name__ == "__main__":
    main()
