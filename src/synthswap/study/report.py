"""The study's report: tables, the gap-recovery ratio R, plots and frame grids (Markdown + HTML)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402

from synthswap.media import probe_video, write_png  # noqa: E402
from synthswap.report import Block, Figure, Heading, Paragraph, Table, frame_grid, write_report  # noqa: E402

# Q in R = (Q(k + synthetic) - Q(k)) / (Q(all real) - Q(k)), by the judge no model is trained against:
# dlib's share of frames closer to the held-out subject than to the destination. Beside it the same R
# for dlib's mean distance (lower is better; R's sign still means help or harm) and for SFace's cosine,
# which flatters models trained with the identity loss.
QUALITY = "dlib_subject_closer_rate"
SECONDARY = ("dlib_distance_to_subject", "identity_to_subject")
# A gap smaller than this is noise: R is not reported over it.
MIN_GAP = 0.01


def gap_recovery(results: list[dict[str, Any]], key: str = QUALITY) -> list[dict[str, Any]]:
    """R for every (k, synthetic kind) pair."""
    by_name = {r["name"]: r["metrics"] for r in results}
    all_real = by_name.get("all-real", {}).get(key)
    rows = []
    for r in results:
        if r["synthetic"] is None or r["k"] is None:
            continue
        base = by_name.get(f"real-{r['k']}", {}).get(key)
        value = r["metrics"].get(key)
        gap = None if all_real is None or base is None else all_real - base
        ratio = (value - base) / gap if gap is not None and abs(gap) > MIN_GAP and value is not None else None
        rows.append({"k": r["k"], "synthetic": r["synthetic"], "q_k": base, "q_k_synthetic": value,
                     "q_all_real": all_real, "R": ratio,
                     "expression_error_k": by_name.get(f"real-{r['k']}", {}).get("expression_error"),
                     "expression_error_k_synthetic": r["metrics"].get("expression_error")})
    return rows


def _plot(results: list[dict[str, Any]], key: str, ylabel: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=100)
    series: dict[str, list[tuple[int, float]]] = {}
    for r in results:
        value = r["metrics"].get(key)
        if r["k"] is None or value is None:
            continue
        series.setdefault(r["synthetic"] or "real only", []).append((r["k"], value))
    for label, points in sorted(series.items()):
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=f"real-k + {label}"
                if label != "real only" else "real-k only")
    all_real = next((r["metrics"].get(key) for r in results if r["name"] == "all-real"), None)
    if all_real is not None:
        ax.axhline(all_real, color="k", linestyle="--", label="all real")
    ax.set_xscale("log")
    ax.set_xlabel("k (real photos of the subject)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_study_report(root: Path, summary: dict[str, Any]) -> tuple[Path, Path]:
    results = summary["conditions"]
    opts = summary["options"]
    _plot(results, QUALITY, "dlib: share of frames closer to the subject", root / "identity_vs_k.png")
    _plot(results, "dlib_distance_to_subject", "dlib distance to the subject (< 0.6: same)",
          root / "dlib_distance_vs_k.png")
    _plot(results, "expression_error", "expression error (L2)", root / "expression_vs_k.png")
    eval_clip = root / "data" / "dest_eval.mp4"
    videos: dict[str, str | os.PathLike] = {"destination": eval_clip}
    videos.update({r["name"]: root / "outputs" / f"{r['name'].replace('+', '_')}.mp4" for r in results})
    frames = probe_video(eval_clip).frame_count or 1
    picks = sorted({int(frames * f) for f in (0.1, 0.4, 0.7, 0.95)})
    write_png(root / "frames.png", frame_grid(videos, picks, height=96))

    columns = ["dlib_subject_closer_rate", "dlib_distance_to_subject", "dlib_subject_match_rate", "sharpness_ratio",
               "sharpness_ratio_half", "identity_to_subject", "subject_match_rate", "identity_to_destination",
               "expression_error", "pose_error_deg", "fid", "kid", "landmark_jitter_ratio", "swap_rate"]
    rows = []
    for r in results:
        syn = r.get("synthetic_report") or {}
        accepted = f"{syn.get('accepted')}/{syn.get('attempts')}" if syn else "-"
        cov = syn.get("coverage") or {}
        coverage = f"{cov['real']:.0%} -> {cov['real+synthetic']:.0%}" if "real+synthetic" in cov else None
        rows.append([r["name"], accepted, coverage, *[r["metrics"].get(c) for c in columns]])
    secondary = {key: {(g["k"], g["synthetic"]): g["R"] for g in gap_recovery(results, key)} for key in SECONDARY}
    r_rows = [[g["k"], g["synthetic"], g["q_k"], g["q_k_synthetic"], g["q_all_real"], g["R"],
               *[secondary[key][(g["k"], g["synthetic"])] for key in SECONDARY],
               g["expression_error_k"], g["expression_error_k_synthetic"]] for g in gap_recovery(results)]
    blocks: list[Block] = [
        Paragraph(f"Subject video {opts['subject_video']} (first {opts['subject_train_fraction']:.0%} of its time "
                  f"for training photos, the rest held out as the identity/FID reference); destination video "
                  f"{opts['dest_video']} (first {opts['dest_train_fraction']:.0%} trains the destination side, "
                  f"up to {opts['eval_max_frames']} frames after it are converted and evaluated). Every swap model: "
                  f"{opts['swap_resolution']} px, {opts['swap_steps']} steps, batch {opts['batch_size']}, "
                  f"seed {opts['seed']}. Synthetic images asked for per condition: {opts['synthetic']}."),
        Heading("Conditions"),
        Table(["condition", "synthetic kept/tried", "coverage of dest (real -> +synthetic)", *columns], rows),
        Heading("Gap recovery"),
        Paragraph(f"R = (Q(k + synthetic) - Q(k)) / (Q(all real) - Q(k)) with Q = {QUALITY}: the share of "
                  f"evaluated frames that dlib's ResNet (never a training signal) puts closer to the held-out "
                  f"subject than to the destination face they replaced. R = 1: the synthetic images recover the "
                  f"whole gap to training on every real frame; 0: they add nothing; negative: they hurt. Beside "
                  f"it R by dlib's mean distance to the held-out subject and by SFace's cosine (which flatters "
                  f"models trained with the identity loss). Not reported where all-real and real-k differ by less "
                  f"than {MIN_GAP}."),
        Table(["k", "synthetic", "Q(k)", "Q(k+syn)", "Q(all)", "R", "R dlib distance", "R SFace", "expr err k",
               "expr err k+syn"], r_rows),
        Figure("identity_vs_k.png", "Identity of the swapped faces against k, by dlib."),
        Figure("dlib_distance_vs_k.png", "dlib distance of the swapped faces to the held-out subject."),
        Figure("expression_vs_k.png", "Expression error against k (lower is better)."),
        Figure("frames.png", "Evaluation frames: the destination and each condition's output."),
    ]
    return write_report(root, "synthswap study: how few real images are enough?", blocks)
