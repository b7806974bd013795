"""Swap models judged by an identity network none of them is trained against, at several step counts.

Variants: the start (scratch; --init with every part; --init without the bottleneck, as
DeepFaceLab does) crossed with identity-loss weights (--id-weights; 0 = off) and the head-pose weights
that go with them (--pose-weights). Each trains on
the subject's real frames against the destination's, same steps and seed, and at every step
count of --steps swaps the destination's held-out faces and measures:

* dlib's ResNet distance of each swapped face to the subject's held-out frames (their mean
  descriptor; same person below 0.6) and the share of swapped faces dlib puts closer to the
  subject than to the destination face they replaced;
* sharpness of the swapped face over the destination face's (variance of the Laplacian in the
  same mask, median over faces; 1 = as sharp), since a blur can fool an identity network: at the
  model's size (`sharpness_ratio`), and with the swapped face enlarged to the destination faceset's
  size as convert places it, compared at 128 px (`sharpness_placed`) and after a 2x downscale
  (`sharpness_placed_half`, detail that grain cannot fake);
* expression error (L2 of the 6-D expression vector) and pose error (mean |yaw, pitch, roll|
  difference, degrees) of the swapped face against the destination face, by the extraction
  code: identity must not be bought with expression.

Splits are by time, as in the study: the subject's first 80% trains, its last 20% is the
identity reference; the destination's first 70% trains, faces after it are swapped.

    python benchmarks/swap_judge.py --subject pair/d9_all --dest pair/d6_all \
        --init src/synthswap/weights/swap_df64 --starts scratch,init --steps 100,200,400 --out judge
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from synthswap.faces.dlib_identity import DlibIdentityModel
from synthswap.faces.measure import EXPRESSION_NAMES, sharpness
from synthswap.faces.pipeline import FaceAnalyzer
from synthswap.faceset import Faceset, write_subset
from synthswap.cache import fresh
from synthswap.study.grid import split_by_time
from synthswap.swap.loading import load_model
from synthswap.swap.networks import SwapConfig
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


def references(judge: DlibIdentityModel, subject: Faceset, eval_faces: Faceset) -> tuple[np.ndarray, list[np.ndarray]]:
    """What `judge_model` measures against: the mean dlib descriptor of the subject's faces and the
    descriptor of each destination face to be swapped."""
    subject_mean = np.mean([judge.embed(subject.read_image(f), f.landmarks_array()) for f in subject.faces], 0)
    return subject_mean, [judge.embed(eval_faces.read_image(f), f.landmarks_array()) for f in eval_faces.faces]


@torch.no_grad()
def judge_model(model_dir: Path, eval_faces: Faceset, subject_mean: np.ndarray, dest_desc: list[np.ndarray],
                judge: DlibIdentityModel, analyzer: FaceAnalyzer) -> dict:
    model, meta = load_model(model_dir)
    res = model.config.resolution
    dist_subject, closer, expr_err, pose_err, sharp, placed_sharp, placed_half = [], [], [], [], [], [], []
    for face, d_dest in zip(eval_faces.faces, dest_desc):
        img = cv2.resize(eval_faces.read_image(face), (res, res), interpolation=cv2.INTER_AREA)
        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].float() / 255
        swapped = (model.swap(x)[0][0].clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        d = descriptor(judge, swapped, face.landmarks_array() * res / eval_faces.size)
        # A blur can fool an identity network: sharpness of the swapped face over the face it
        # replaced, same crop, same size, same mask.
        mask = cv2.resize(eval_faces.read_mask(face), (res, res), interpolation=cv2.INTER_AREA)
        sharp.append(sharpness(swapped, mask) / max(sharpness(img, mask), 1e-6))
        full, full_mask = eval_faces.read_image(face), eval_faces.read_mask(face)
        placed = cv2.resize(swapped, full.shape[:2][::-1], interpolation=cv2.INTER_CUBIC)
        for size, into in ((128, placed_sharp), (64, placed_half)):
            into.append(sharpness(placed, full_mask, size) / max(sharpness(full, full_mask, size), 1e-6))
        dist_subject.append(float(np.linalg.norm(d - subject_mean)))
        closer.append(dist_subject[-1] < float(np.linalg.norm(d - d_dest)))
        analysed = analyzer.analyze(cv2.resize(swapped, (JUDGE_SIZE, JUDGE_SIZE), interpolation=cv2.INTER_CUBIC))
        if analysed is not None:
            expr_err.append(float(np.linalg.norm([analysed.expression[k] - face.expression[k]
                                                  for k in EXPRESSION_NAMES])))
            pose_err.append(float(np.mean([abs(analysed.pose[k] - face.pose[k]) for k in ("yaw", "pitch", "roll")])))
    return {"steps": meta["steps"], "dlib_distance_to_subject": round(float(np.mean(dist_subject)), 4),
            "dlib_subject_closer_rate": round(float(np.mean(closer)), 4),
            "sharpness_ratio": round(float(np.median(sharp)), 3),
            "sharpness_placed": round(float(np.median(placed_sharp)), 3),
            "sharpness_placed_half": round(float(np.median(placed_half)), 3),
            "expression_error": round(float(np.mean(expr_err)), 4) if expr_err else None,
            "pose_error_deg": round(float(np.mean(pose_err)), 2) if pose_err else None,
            "analysed": len(expr_err)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subject", required=True, help="faceset of the subject's whole video")
    p.add_argument("--dest", required=True, help="faceset of the destination's whole video")
    p.add_argument("--init", help="pretrained swap model folder (for the init starts)")
    p.add_argument("--starts", default="scratch,init",
                   help="comma-separated, of: scratch, init (every part), init-no-inter (DeepFaceLab's choice)")
    p.add_argument("--id-weights", default="0", help="identity-loss weights to cross with the starts")
    p.add_argument("--id-every", type=int, default=4)
    p.add_argument("--pose-weights", default="0",
                   help="head-pose weights (swap train --pose-weight) to cross with the identity weights")
    p.add_argument("--steps", default="100,200,400,800", help="step counts at which to judge")
    p.add_argument("--resolutions", default="64", help="comma-separated model sizes to cross with the rest (an "
                   "--init of a smaller size is grown to each, see swap/networks.resized_state)")
    p.add_argument("--multiscale", default="0", help="comma-separated 0/1: DSSIM at one window or two")
    p.add_argument("--gan-powers", default="0", help="comma-separated GAN powers (swap train --gan-power) to cross "
                   "with the rest")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
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
    analyzer = FaceAnalyzer(JUDGE_SIZE, with_identity=False)
    subject_mean, dest_desc = references(judge, Faceset.open(subject_holdout), eval_faces)

    steps = [int(s) for s in args.steps.split(",")]
    no_inter = ("encoder", "decoder_a", "decoder_b")  # df's parts but the bottleneck
    parts_of = {"scratch": None, "init": None, "init-no-inter": no_inter}
    variants = [(start, float(w), float(pw), int(res), bool(int(ms)), float(gan)) for start in args.starts.split(",")
                for w in args.id_weights.split(",") for pw in args.pose_weights.split(",")
                for res in args.resolutions.split(",") for ms in args.multiscale.split(",")
                for gan in args.gan_powers.split(",")]
    rows = []
    for start, id_weight, pose_weight, res, multiscale, gan_power in variants:
        name = (f"{start}_id{id_weight:g}_pose{pose_weight:g}_{res}px" + ("_msdssim" if multiscale else "")
                + (f"_gan{gan_power:g}" if gan_power else ""))
        model_dir = out / "models" / name
        fresh(model_dir)
        train_seconds = 0.0
        for i, n in enumerate(steps):
            t0 = time.perf_counter()
            train(SwapTrainOptions(src=[str(subject_train)], dst=[str(dest_train)], out=str(model_dir), steps=n,
                                   batch_size=args.batch_size, seed=args.seed, resume=i > 0,
                                   init=None if start == "scratch" else args.init, init_parts=parts_of[start],
                                   id_weight=id_weight, id_every=args.id_every, pose_weight=pose_weight,
                                   config=SwapConfig(resolution=res), multiscale_dssim=multiscale,
                                   gan_power=gan_power, precision=args.precision, save_every=0, preview_every=0, progress=False))
            train_seconds += time.perf_counter() - t0
            row = {"start": start, "id_weight": id_weight, "pose_weight": pose_weight, "resolution": res,
                   "multiscale_dssim": multiscale, "gan_power": gan_power, "train_seconds": round(train_seconds, 1),
                   **judge_model(model_dir, eval_faces, subject_mean, dest_desc, judge, analyzer)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            with open(out / "speedup.csv", "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)


if __name__ == "__main__":
    main()
