"""How much a synthetic faceset looks like the subject's photos, by SFace and by dlib (not a test).

For each face of each --synthetic faceset: SFace's cosine to the centroid of the subject's photos
(the embeddings extraction stored) and dlib's ResNet distance to the mean of the photos' dlib
descriptors (same person below 0.6). Prints mean, 10th percentile and share of same-person faces.

    .venv/bin/python benchmarks/synthetic_identity.py --subject real_5 --synthetic synthetic_gan_5 synthetic_warp_5
"""

from __future__ import annotations

import argparse

import numpy as np

from synthswap.faces.dlib_identity import SAME_PERSON_DISTANCE, DlibIdentityModel
from synthswap.faces.identity import SAME_PERSON_COSINE
from synthswap.faceset import Faceset


def dlib_descriptors(faceset: Faceset, judge: DlibIdentityModel) -> np.ndarray:
    return np.stack([judge.embed(faceset.read_image(face), face.landmarks_array()) for face in faceset.faces])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subject", required=True, help="faceset of the subject's real photos")
    p.add_argument("--synthetic", nargs="+", required=True, help="synthetic facesets to score")
    args = p.parse_args()
    judge = DlibIdentityModel()
    subject = Faceset.open(args.subject)
    centroid = subject.identities().mean(0)
    centroid /= np.linalg.norm(centroid)
    subject_dlib = dlib_descriptors(subject, judge).mean(0)
    for path in args.synthetic:
        faces = Faceset.open(path)
        cosine = faces.identities() @ centroid
        distance = np.linalg.norm(dlib_descriptors(faces, judge) - subject_dlib, axis=1)
        print(f"{path}: {len(faces)} faces; SFace cosine to the photos mean {cosine.mean():.3f} "
              f"(p10 {np.percentile(cosine, 10):.3f}, >= {SAME_PERSON_COSINE}: {np.mean(cosine >= SAME_PERSON_COSINE):.0%}); "
              f"dlib distance mean {distance.mean():.3f} (p90 {np.percentile(distance, 90):.3f}, "
              f"< {SAME_PERSON_DISTANCE}: {np.mean(distance < SAME_PERSON_DISTANCE):.0%})", flush=True)


if __name__ == "__main__":
    main()
