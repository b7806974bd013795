"""The face enhancer judged on held-out real faces degraded to 64 px: detail and identity.

Each held-out face (an aligned crop of --size px, the original) is brought down to 64 px (area
average: what a 64 px swap model can hold at best) and back up to --size by four methods: plain
bicubic, the generic enhancer (--model), and, for a video subject, the enhancer fine-tuned on
--k of the subject's frames from the first part of the video (--finetune-minutes; the held-out
faces come from the part after it). Measured against the original, median over faces:

* sharpness: variance of the Laplacian in the face mask (faces/measure.py, on a 128 px copy), as a
  ratio to the original's;
* sharpness after a 2x downscale (the face at 64 px, area average): added grain averages away
  there, real detail does not;
* dlib distance to the original (same person below 0.6), before (bicubic) and after enhancement:
  an enhancer must not move the face away from who it is;
* PSNR in the mask.

    python benchmarks/enhance_judge.py --model src/synthswap/weights/enhance_utk \
        --video-subject d9_256 --video-subject d14_256 --faces utk_hold_256 --out judge.md
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from synthswap.enhance import enhance_faces, finetune_enhancer, load_enhancer
from synthswap.enhance.degrade import upscale
from synthswap.faces.dlib_identity import DlibIdentityModel
from synthswap.faces.measure import sharpness
from synthswap.faceset import Faceset, write_subset
from synthswap.swap.loading import load_model


def half_sharpness(crop: np.ndarray, mask: np.ndarray) -> float:
    """Variance of the Laplacian in the mask with the face at 64 px (a 2x downscale of the 128 px
    copy `sharpness` measures on)."""
    gray = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), (64, 64), interpolation=cv2.INTER_AREA)
    lap = cv2.Laplacian(gray, cv2.CV_32F)
    inside = cv2.resize(mask, (64, 64), interpolation=cv2.INTER_NEAREST) > 127
    return float(lap[inside].var())


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    inside = mask > 127
    mse = float(((a.astype(np.float32) - b.astype(np.float32))[inside] ** 2).mean())
    return 10 * np.log10(255**2 / max(mse, 1e-6))


def split_video(fs: Faceset, k: int, train_share: float = 0.6) -> tuple[list, list]:
    """k frames spread over the first `train_share` of the video (the subject's 'photos'), and every
    face after it (held out)."""
    faces = sorted(fs.faces, key=lambda f: f.frame_index)
    cut = int(len(faces) * train_share)
    picks = np.linspace(0, cut - 1, k).round().astype(int)
    return [faces[i] for i in picks], faces[cut:]


def swap_reconstruct(model, faces: list[np.ndarray]) -> list[np.ndarray]:
    """The 64 px swap model's reconstructions of 64 px faces (its own side A): the smooth, slightly
    shifted face a swap renders, for a person it never trained on."""
    x = torch.from_numpy(np.stack(faces)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        y = model.reconstruct(x, "A")[0]
    return list(y.clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).numpy())


def measure(dlib: DlibIdentityModel, fs: Faceset, faces: list, outputs: dict[str, np.ndarray]) -> dict[str, dict]:
    rows: dict[str, dict[str, list]] = {name: {"sharp": [], "half": [], "dlib": [], "psnr": []} for name in outputs}
    for i, face in enumerate(faces):
        original, mask, lm = fs.read_image(face), fs.read_mask(face), face.landmarks_array()
        ref = dlib.embed(original, lm)
        s0, h0 = sharpness(original, mask), half_sharpness(original, mask)
        for name, imgs in outputs.items():
            img = imgs[i]
            rows[name]["sharp"].append(sharpness(img, mask) / s0)
            rows[name]["half"].append(half_sharpness(img, mask) / h0)
            rows[name]["dlib"].append(float(np.linalg.norm(dlib.embed(img, lm) - ref)))
            rows[name]["psnr"].append(psnr(img, original, mask))
    return {name: {k: float(np.median(v)) for k, v in r.items()} | {"dlib_mean": float(np.mean(r["dlib"]))}
            for name, r in rows.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="shipped", help="the generic enhancer (folder or 'shipped')")
    ap.add_argument("--video-subject", action="append", default=[], metavar="FACESET",
                    help="faceset of one person's video frames: fine-tune on --k early frames, judge on later ones")
    ap.add_argument("--faces", action="append", default=[], metavar="FACESET",
                    help="held-out faces judged with the generic model only")
    ap.add_argument("--k", type=int, default=10, help="subject frames to fine-tune on (default 10, like 10 photos)")
    ap.add_argument("--finetune-minutes", type=float, default=1.5)
    ap.add_argument("--finetune-lr", type=float, default=1e-4)
    ap.add_argument("--max-faces", type=int, default=40, help="held-out faces judged per set")
    ap.add_argument("--swap-model", help="also judge on this 64 px swap model's reconstructions "
                                         "(e.g. src/synthswap/weights/swap_df64)")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                    help="the enhancer's arithmetic (synthswap.precision; auto: bf16 on CPUs with AMX)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--side-by-side", metavar="DIR", help="write original, bicubic, generic, fine-tuned side by side here "
                    "(faces of real people: keep them out of the repository)")
    ap.add_argument("--out", required=True, help="Markdown file to write")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    generic = load_enhancer(args.model)
    dlib = DlibIdentityModel()
    swap = load_model(args.swap_model)[0] if args.swap_model else None
    tables = []
    jobs = [(p, True) for p in args.video_subject] + [(p, False) for p in args.faces]
    for path, is_video in jobs:
        fs = Faceset.open(path)
        if is_video:
            train, held = split_video(fs, args.k)
        else:
            train, held = [], list(fs.faces)
        held = [held[i] for i in np.linspace(0, len(held) - 1, min(args.max_faces, len(held))).round().astype(int)]
        originals = [fs.read_image(f) for f in held]
        size = originals[0].shape[0]
        inputs = {"64 px": [cv2.resize(o, (64, 64), interpolation=cv2.INTER_AREA) for o in originals]}
        if swap is not None:
            inputs["swap 64 px"] = swap_reconstruct(swap, inputs["64 px"])
        tuned = None
        note = f"{len(held)} held-out faces of {size} px"
        if is_video:
            with tempfile.TemporaryDirectory() as tmp:
                subject = write_subset(fs, train, Path(tmp) / "subject")
                t = time.monotonic()
                tuned = finetune_enhancer(generic, subject.root, args.finetune_minutes, lr=args.finetune_lr,
                                          precision=args.precision)
                note += (f"; fine-tuned on {len(train)} frames of the first 60% of the video for "
                         f"{(time.monotonic() - t) / 60:.1f} min")
        outputs = {}
        for degraded, small in inputs.items():
            outputs[f"{degraded}, bicubic"] = np.stack([upscale(f, size) for f in small])
            t = time.monotonic()
            outputs[f"{degraded}, generic"] = enhance_faces(generic, small, size, precision=args.precision)
            per_face = (time.monotonic() - t) / len(small)
            if tuned is not None:
                outputs[f"{degraded}, fine-tuned"] = enhance_faces(tuned, small, size, precision=args.precision)
        note += f"; enhancement {per_face * 1000:.0f} ms per face"
        scores = measure(dlib, fs, held, outputs)
        lines = [f"### {Path(path).name}", "", note, "",
                 ("| method | sharpness / original | after 2x downscale / original | dlib to original (median) "
                  "| dlib (mean) | PSNR (dB) |"), "| --- | ---: | ---: | ---: | ---: | ---: |"]
        lines += [f"| {name} | {s['sharp']:.2f} | {s['half']:.2f} | {s['dlib']:.3f} | {s['dlib_mean']:.3f} | "
                  f"{s['psnr']:.2f} |" for name, s in scores.items()]
        tables.append("\n".join(lines))
        print(tables[-1], flush=True)
        if args.side_by_side:
            out = Path(args.side_by_side)
            out.mkdir(parents=True, exist_ok=True)
            # the middle face, one row per degradation: original | bicubic | generic (| fine-tuned)
            i = len(held) // 2
            rows = [np.hstack([originals[i]] + [outputs[n][i] for n in outputs if n.startswith(f"{d}, ")])
                    for d in inputs]
            cv2.imwrite(str(out / f"{Path(path).name}.png"), np.vstack(rows))
    header = (f"# Enhancer judge\n\nmodel: {args.model} ({generic.steps} steps, precision {args.precision}); "
              f"faces brought to 64 px (area; "
              f"'swap 64 px': then reconstructed by {args.swap_model}) and restored to their crop size; "
              f"medians over faces\n")
    Path(args.out).write_text(header + "\n" + "\n\n".join(tables) + "\n")


if __name__ == "__main__":
    main()
