"""Face enhancers judged where they work: on a trained swap model's converted video, by `evaluate`.

`enhance_judge.py` judges an enhancer on real faces brought down to 64 px; this judges it on what
convert actually hands it: one swap model of a study unit (the folders `synthswap study` writes:
UNIT/models/swap_CONDITION, UNIT/data/dest_eval.mp4, UNIT/data/subject_holdout), its destination
clip converted once per enhancer and evaluated against the subject's held-out faces, as the study
does. Enhancers: 'none' (bicubic), 'shipped', any enhancer folder, and, with --tune, each of those
fine-tuned on the swap model's own renderings of the subject's training photos
(`enhance.swap_pairs`; `run --enhance-minutes` fine-tunes on the photos themselves instead).

    python benchmarks/enhance_on_swap.py --unit runs/people/d9_to_d6/seed0 --condition all-real \
        --enhancer shipped --enhancer none --tune 2 --out enhance_on_swap.md
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from synthswap import atomic
from synthswap.enhance import finetune_enhancer, load_enhancer
from synthswap.enhance.model import CHECKPOINT, MODEL_JSON
from synthswap.enhance.swap_pairs import swap_pairs
from synthswap.metrics.evaluate import evaluate
from synthswap.swap.convert import ConvertOptions, convert_video
from synthswap.swap.loading import face_renderer
from synthswap.training import save_checkpoint

MEASURES = [("dlib_distance_to_subject", "dlib to subject"), ("dlib_subject_closer_rate", "dlib nearer"),
            ("identity_to_subject", "SFace"), ("sharpness_ratio", "sharpness"),
            ("sharpness_ratio_half", "after 2x down"), ("expression_error", "expression"),
            ("pose_error_deg", "pose (deg)"), ("fid", "FID")]


def save_enhancer(net, folder: Path) -> str:
    """A fine-tuned enhancer as a folder convert can load (its checkpoint and model.json, as
    `enhance train` writes them, without optimiser state)."""
    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(folder / CHECKPOINT, {"net": net}, state={"step": net.steps})
    atomic.write_json(folder / MODEL_JSON, {"config": net.config.to_dict(), "steps": net.steps})
    return str(folder)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--unit", required=True, help="a study unit folder (models/, data/)")
    ap.add_argument("--condition", default="all-real", help="whose swap model: UNIT/models/swap_CONDITION")
    ap.add_argument("--enhancer", action="append", default=[], help="'none', 'shipped' or a folder (repeat)")
    ap.add_argument("--tune", type=float, default=0.0, help="also fine-tune each enhancer for this many minutes "
                                                            "on the swap model's renderings of the subject")
    ap.add_argument("--generic-share", type=float, default=0.5, help="share of generic degradations while tuning")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True, help="Markdown table")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    unit = Path(args.unit)
    model = unit / "models" / f"swap_{args.condition}"
    clip, holdout = unit / "data" / "dest_eval.mp4", unit / "data" / "subject_holdout"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        variants: list[tuple[str, str | None, float]] = []
        pairs = None
        for name in args.enhancer or ["shipped"]:
            variants.append((name, None if name == "none" else name, 0.0))
            if args.tune and name != "none":
                if pairs is None:
                    started = time.monotonic()
                    pairs = swap_pairs(*face_renderer(model), [unit / "data" / "subject_train"])
                    print(f"{len(pairs)} pairs in {time.monotonic() - started:.1f} s", flush=True)
                started = time.monotonic()
                tuned = finetune_enhancer(load_enhancer(name), pairs=pairs, minutes=args.tune,
                                          generic_share=args.generic_share)
                folder = save_enhancer(tuned, Path(tmp) / f"tuned_{len(variants)}")
                variants.append((f"{Path(name).name} + {args.tune:g} min on the swap's renderings", folder,
                                 time.monotonic() - started))
        for label, enhancer, tune_s in variants:
            video = Path(tmp) / f"out_{len(rows)}.mp4"
            started = time.monotonic()
            convert_video(model, clip, video, ConvertOptions(enhancer=enhancer, progress=False))
            convert_s = time.monotonic() - started
            summary = evaluate(video, clip, holdout, progress=False).summary()
            rows.append((label, summary, tune_s, convert_s))
            print(label, {k: round(summary[k], 3) for k, _ in MEASURES if summary.get(k) is not None}, flush=True)
    lines = [f"Swap model `{model.name}` of `{unit.name}`; destination clip `{clip.name}`; held-out subject faces "
             f"`{holdout.name}`. `python benchmarks/enhance_on_swap.py --unit {args.unit} --condition {args.condition} "
             + " ".join(f"--enhancer {e}" for e in args.enhancer) + (f" --tune {args.tune:g}" if args.tune else "")
             + "`", "",
             "| enhancer | " + " | ".join(label for _, label in MEASURES) + " | tune s | convert s |",
             "| --- |" + " ---: |" * (len(MEASURES) + 2)]
    for label, s, tune_s, convert_s in rows:
        cells = [f"{s[k]:.3f}" if s.get(k) is not None else "-" for k, _ in MEASURES]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {tune_s:.0f} | {convert_s:.0f} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(json.dumps({"out": args.out}))


if __name__ == "__main__":
    main()
