"""Trained swap models judged side by side on the same destination faces, by dlib (which none trains against).

Where `swap_judge.py` trains its own variants, this judges model folders that exist already (a `run`'s
`work/swap`, `swap train` outputs): each swaps the same evenly spaced faces of a destination faceset,
and `swap_judge.judge_model` measures dlib's distance to the subject's mean descriptor and the share of
faces nearer the subject than the face they replaced, sharpness against the destination face (at the
model's size, placed, and after a 2x downscale), expression and pose error.

    python benchmarks/judge_models.py --dest work/dest --subject work/subject --faces 40 \\
        work/swap other_model ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from swap_judge import JUDGE_SIZE, judge_model, references
from synthswap.faces.dlib_identity import DlibIdentityModel
from synthswap.faces.pipeline import FaceAnalyzer
from synthswap.faceset import Faceset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", type=Path, help="swap model folders")
    p.add_argument("--dest", required=True, type=Path, help="destination faceset whose faces are swapped")
    p.add_argument("--subject", required=True, type=Path,
                   help="the subject's faceset that defines who they are (held-out frames where there are some)")
    p.add_argument("--faces", type=int, default=40, help="evenly spaced destination faces to swap")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dest = Faceset.open(args.dest)
    step = max(1, len(dest.faces) // args.faces)
    dest.faces = dest.faces[step // 2::step][: args.faces]
    judge = DlibIdentityModel()
    analyzer = FaceAnalyzer(JUDGE_SIZE, with_identity=False)
    subject_mean, dest_desc = references(judge, Faceset.open(args.subject), dest)
    for model in args.models:
        print(json.dumps({"model": str(model), **judge_model(model, dest, subject_mean, dest_desc, judge, analyzer)}),
              flush=True)


if __name__ == "__main__":
    main()
