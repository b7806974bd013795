"""How dlib judges the subject's own photos warped to destination faces, against a swap model's renderings.

`swap convert --photo-detail` takes the swapped face's fine detail from the subject's photo warped to
each frame's face (synthswap.swap.photo_detail). This measures, on aligned crops of evenly spaced
destination faces (no enhancer, no colour transfer, no placing), dlib's distance to the mean descriptor
of the subject's real photos for:

- each real photo left out of that mean (how far the subject's own photos lie from it);
- the nearest photo warped a share of the way to each destination face's target (0: the photo as it
  is, 1: the paired target, with the destination face's expression);
- the swap model's rendering of the destination face, and that rendering with the detail above
  `--band` px from the warped photo (what `--photo-detail` pastes).

    python benchmarks/photo_detail_probe.py --subject work/subject --dest work/dest --model work/swap
"""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import torch

from swap_judge import descriptor
from synthswap.faces.dlib_identity import DlibIdentityModel
from synthswap.swap.data import FaceSource
from synthswap.swap.loading import load_model
from synthswap.swap.paired_targets import PhotoWarper, smooth_warp, smooth_warp_maps, target_landmarks
from synthswap.swap.photo_detail import PhotoDetail

WARP_SHARES = (0.0, 0.25, 0.5, 1.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subject", required=True, help="the subject's faceset (its real photos are warped)")
    p.add_argument("--dest", required=True, help="the destination's faceset")
    p.add_argument("--model", required=True, help="a swap model trained on them")
    p.add_argument("--faces", type=int, default=40, help="evenly spaced destination faces")
    p.add_argument("--band", type=int, default=8, help="--photo-detail's band, px")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model, _ = load_model(args.model)
    size = model.config.resolution
    judge = DlibIdentityModel()
    faces_a, faces_b = FaceSource([args.subject], size), FaceSource([args.dest], size)
    shape_b = faces_b.landmarks.astype(np.float64).mean(0)
    warper, detail = PhotoWarper(faces_a, shape_b), PhotoDetail(faces_a, shape_b, args.band)
    photos = np.array([descriptor(judge, image, lm) for image, lm in zip(warper.images, warper.landmarks)])
    mean_a = photos.mean(0)
    left_out = [np.linalg.norm(d - np.delete(photos, i, 0).mean(0)) for i, d in enumerate(photos)]
    distances: dict[str, list[float]] = {f"photo warped {s:g} of the way": [] for s in WARP_SHARES}
    distances.update({"model": [], f"model + photo detail above {args.band} px": []})
    for j in np.linspace(0, len(faces_b) - 1, min(args.faces, len(faces_b))).round().astype(int):
        target = target_landmarks(warper.shape_a, faces_b.landmarks[j].astype(np.float64), shape_b)
        _, _, _, chosen = warper.warp(faces_b.landmarks[j])
        i = int(np.flatnonzero(warper.real == chosen)[0])
        for share in WARP_SHARES:
            points = warper.landmarks[i] + share * (target - warper.landmarks[i])
            warped = smooth_warp(warper.images[i], smooth_warp_maps(warper.landmarks[i], points, size))
            distances[f"photo warped {share:g} of the way"].append(np.linalg.norm(descriptor(judge, warped, points) - mean_a))
        x = torch.from_numpy(np.ascontiguousarray(faces_b.images[j].transpose(2, 0, 1)))[None].float() / 255
        with torch.no_grad():
            rendered = model.swap(x)[0][0].float().clamp(0, 1).permute(1, 2, 0).numpy()
        detail.reset()  # each face on its own, as the warped photos above
        for name, image in (("model", rendered), (f"model + photo detail above {args.band} px",
                                                  detail(rendered, faces_b.landmarks[j]))):
            u8 = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
            distances[name].append(np.linalg.norm(descriptor(judge, u8, target) - mean_a))
    report = {"subject photos, each left out of the mean": round(float(np.mean(left_out)), 3),
              **{k: round(float(np.mean(v)), 3) for k, v in distances.items()}}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    cv2.setNumThreads(1)
    main()
