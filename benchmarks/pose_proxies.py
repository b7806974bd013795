"""Do the swap's pose proxies follow FaceMesh's head pose on real faces? (not a test)

`swap/losses.head_pose` reads roll, yaw and pitch proxies off 2-D landmarks; the pose term of
identity training compares them between a swap and the face it replaces. This computes them from
each face's stored FaceMesh points and prints their correlation with the stored 3-D pose.

    .venv/bin/python benchmarks/pose_proxies.py FACESET [FACESET ...]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from synthswap.faces.landmark_net import SUBSET
from synthswap.faceset import Faceset
from synthswap.swap.losses import head_pose


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("facesets", nargs="+")
    args = p.parse_args()
    for path in args.facesets:
        fs = Faceset.open(path)
        points = torch.from_numpy(np.stack([f.landmarks_array()[SUBSET, :2] / fs.size for f in fs.faces]))
        proxies = head_pose(points).numpy()
        pose = np.array([[f.pose["roll"], f.pose["yaw"], f.pose["pitch"]] for f in fs.faces])
        corr = [np.corrcoef(proxies[:, i], pose[:, i])[0, 1] for i in range(3)]
        print(f"{path}: {len(fs.faces)} faces; correlation with FaceMesh roll {corr[0]:+.3f}, yaw {corr[1]:+.3f}, "
              f"pitch {corr[2]:+.3f} (pose std {', '.join(f'{s:.1f}' for s in pose.std(0))} degrees)")


if __name__ == "__main__":
    main()
