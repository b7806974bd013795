"""Fine-tuning from a pretrained swap model against training from scratch, same steps, same seed.

For each start (scratch, and --init with each --parts choice) the swap model trains on the
subject's real frames against the destination's, and at every step count of --steps it
swaps the destination's held-out faces and asks dlib's ResNet (a judge no model here is
trained against) how far each swapped face is from the subject's held-out frames (mean
descriptor) and whether it is closer to the subject than to the destination face it
replaced. Splits are by time, as in the study: the subject's first 80% trains, its last 20%
is the identity reference; the destination's first 70% trains, faces after it are swapped.

    python benchmarks/pretrain_speedup.py --subject pair/d9_all --dest pair/d6_all \
        --init src/synthswap/weights/swap_df64 --steps 100,200,400,800 --out speedup
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from synthswap.faces.dlib_identity import DlibIdentityModel
from synthswap.faceset import Faceset, write_subset
from synthswap.stages import fresh
from synthswap.study.grid import split_by_time
from synthswap.swap.loading import load_model
from synthswap.swap.train import SwapTrainOptions, train

JUDGE_SIZE = 128  # swapped faces are enlarged to this before dlib (its chips are 150 px)


def split(faceset: Path, fraction: float, out: Path, names: tuple[str, str], limit: int | None = None) -> list[Path]:
    fs = Faceset.open(faceset)
    paths = []
    for name, part in zip(names, split_by_time(fs, fraction)):
        path = out / name
        if not (path / "faceset.json").exists():
            write_subset(fs, part[:limit] if limit else part, path)
        paths.append(path)
    return paths


def descriptor(judge: DlibIdentityModel, bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    scale = JUDGE_SIZE / bgr.shape[0]
    big = cv2.resize(bgr, (JUDGE_SIZE, JUDGE_SIZE), interpolation=cv2.INTER_CUBIC)
    return judge.embed(big, landmarks * scale)


@torch.no_grad()
def judge_model(model_dir: Path, eval_faces: Faceset, subject_mean: np.ndarray, dest_desc: list[np.ndarray],
                judge: DlibIdentityModel) -> dict:
    model, meta = load_model(model_dir)
    res = model.config.resolution
    dist_subject, closer = [], []
    for face, d_dest in zip(eval_faces.faces, dest_desc):
        img = cv2.resize(eval_faces.read_image(face), (res, res), interpolation=cv2.INTER_AREA)
        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].float() / 255
        swapped = (model.swap(x)[0][0].clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        d = descriptor(judge, swapped, face.landmarks_array() * res / eval_faces.size)
        dist_subject.append(float(np.linalg.norm(d - subject_mean)))
        closer.append(dist_subject[-1] < float(np.linalg.norm(d - d_dest)))
    return {"steps": meta["steps"], "dlib_distance_to_subject": round(float(np.mean(dist_subject)), 4),
            "dlib_subject_closer_rate": round(float(np.mean(closer)), 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subject", required=True, help="faceset of the subject's whole video")
    p.add_argument("--dest", required=True, help="faceset of the destination's whole video")
    p.add_argument("--init", required=True, help="pretrained swap model folder")
    p.add_argument("--parts", default="all", help="--init-parts choices to compare, ';'-separated ('all' = every part)")
    p.add_argument("--steps", default="100,200,400,800", help="step counts at which to judge")
    p.add_argument("--eval-faces", type=int, default=60, help="held-out destination faces swapped and judged")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    data = out / "data"
    subject_train, subject_holdout = split(Path(args.subject), 0.8, data, ("subject_train", "subject_holdout"))
    dest_train, dest_eval = split(Path(args.dest), 0.7, data, ("dest_train", "dest_eval"), None)
    eval_faces = Faceset.open(dest_eval)
    eval_faces.faces = eval_faces.faces[:: max(1, len(eval_faces.faces) // args.eval_faces)][: args.eval_faces]

    judge = DlibIdentityModel()
    holdout = Faceset.open(subject_holdout)
    subject_mean = np.mean([judge.embed(holdout.read_image(f), f.landmarks_array()) for f in holdout.faces], 0)
    dest_desc = [judge.embed(eval_faces.read_image(f), f.landmarks_array()) for f in eval_faces.faces]

    steps = [int(s) for s in args.steps.split(",")]
    starts = [("scratch", None)] + [(f"init:{parts}", None if parts == "all" else tuple(parts.split(",")))
                                    for parts in args.parts.split(";")]
    rows = []
    for name, parts in starts:
        model_dir = out / "models" / name.replace(":", "_").replace(",", "+")
        fresh(model_dir)
        for i, n in enumerate(steps):
            train(SwapTrainOptions(src=[str(subject_train)], dst=[str(dest_train)], out=str(model_dir), steps=n,
                                   batch_size=args.batch_size, seed=args.seed, resume=i > 0,
                                   init=None if name == "scratch" else args.init, init_parts=parts,
                                   save_every=0, preview_every=0, progress=False))
            row = {"start": name, **judge_model(model_dir, eval_faces, subject_mean, dest_desc, judge)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            with open(out / "speedup.csv", "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)


if __name__ == "__main__":
    main()
