"""The study's report: tables, the gap-recovery ratio R, plots and frame grids (Markdown + HTML)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import cv2
import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402

from synthswap import atomic  # noqa: E402
from synthswap.media import iter_video_frames, probe_video, write_png  # noqa: E402
from synthswap.report import Block, Figure, Heading, Paragraph, Table, frame_grid, write_report  # noqa: E402
from synthswap.study.analysis import cell_results, condition_bands, markdown  # noqa: E402

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


# ---------------------------------------------------------------------------------------------
# The study across people: the ledger's summary, its plots, and a frame grid per (pair, seed).

# (ledger column, axis label, file name suffix, caption)
LEDGER_PLOTS = (("dlib_distance_to_subject", "dlib distance to the subject", "dlib_vs_k",
                 "dlib's mean distance of the swapped faces to the subject's held-out frames against k (lower is "
                 "better; below 0.6 dlib calls them one person)"),
                ("expression_error", "expression error", "expression_vs_k",
                 "expression error of the swapped faces against the destination's against k (lower is better)"))
GRID_CONDITIONS = ("real", "real+warp", "real+gan", "real+gan+warp")


def _save_figure(fig, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic.write_bytes(path, buffer.getvalue())  # a reader of the docs never sees half a picture


def plot_bands(bands: dict[str, list[tuple[int, float, float, float]]], ylabel: str, units: int, path: Path) -> None:
    """A measure against k, one line per condition with its 95% bootstrap band, all-real as a level."""
    fig, ax = plt.subplots(figsize=(6, 3.8), dpi=100)
    ks = sorted({k for points in bands.values() for k, *_ in points if k > 0})
    for cond, points in bands.items():
        if cond == "all-real":
            _, mean, lo, hi = points[0]
            ax.axhline(mean, color="k", linestyle="--", label="all real frames")
            if lo == lo:  # NaN: one unit, no interval
                ax.axhspan(lo, hi, color="k", alpha=0.07)
            continue
        x = [p[0] for p in points]
        line, = ax.plot(x, [p[1] for p in points], marker="o", label=f"{cond.replace('real', 'real-k', 1)}")
        lows = np.array([p[2] for p in points], np.float64)
        if np.isfinite(lows).any():
            ax.fill_between(x, lows, [p[3] for p in points], color=line.get_color(), alpha=0.15, linewidth=0)
    ax.set_xticks(ks)
    ax.set_xlabel("k (real photos of the subject)")
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(f"mean over {units} (pair, seed) unit{'s' if units != 1 else ''}; bands: 95% bootstrap", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save_figure(fig, path)


def write_ledger_report(rows: list[dict[str, str]], base_steps: int, summary: Path) -> list[Path]:
    """The ledger's summary (Markdown) and, beside it, its plots for the base budget: dlib distance and
    expression error against k per condition, with bands. Returns the files written."""
    results = cell_results(rows, base_steps)
    units = len({unit for (unit, _, _) in results})
    figures, written = [], []
    for metric, ylabel, suffix, caption in LEDGER_PLOTS if results else ():
        path = summary.with_name(f"{summary.stem.removesuffix('_summary')}_{suffix}.png")
        plot_bands(condition_bands(results, metric), ylabel, units, path)
        figures.append((path.name, f"{caption}; {base_steps} swap steps per cell, all-real as the dashed level."))
        written.append(path)
    atomic.write_text(summary, markdown(rows, base_steps, tuple(figures)))
    return [*written, summary]


def output_video(folder: Path, k: int, condition: str) -> Path:
    """Where a (pair, seed) study folder keeps a cell's converted clip."""
    name = "all-real" if condition == "all-real" else f"real-{k}{condition.removeprefix('real')}"
    return folder / "outputs" / f"{name.replace('+', '_')}.mp4"


def conditions_grid(folder: Path, ks: list[int], done: set[tuple[int, str]], height: int = 128) -> np.ndarray | None:
    """One frame (the middle of the evaluation clip) per condition: a row per k, columns the destination,
    all-real and the four conditions. Only the cells in `done` ((k, condition), all-real at k 0) are shown:
    the folder may hold clips of an older recipe; the others are left grey. None before the clip is cut."""
    eval_clip = folder / "data" / "dest_eval.mp4"
    if not eval_clip.is_file():
        return None
    index = max((probe_video(eval_clip).frame_count or 1) // 2, 0)
    shown = {output_video(folder, k, condition) for k, condition in done}

    def frame(path: Path) -> np.ndarray | None:
        if not path.is_file() or (path != eval_clip and path not in shown):
            return None
        picked = [f.bgr for f in iter_video_frames(path, max_frames=index + 1) if f.index == index]
        return picked[0] if picked else None

    dest, all_real = frame(eval_clip), frame(output_video(folder, 0, "all-real"))
    if dest is None:
        return None
    width = round(dest.shape[1] * height / dest.shape[0])

    def tile(bgr: np.ndarray | None, label: str) -> np.ndarray:
        out = (np.full((height, width, 3), 200, np.uint8) if bgr is None
               else cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA))
        cv2.putText(out, label, (3, height - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, label, (3, height - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
        return out

    rows = [np.hstack([tile(dest, "destination"), tile(all_real, "all real"),
                       *[tile(frame(output_video(folder, k, c)), f"k={k} {c}") for c in GRID_CONDITIONS]])
            for k in ks]
    return np.vstack(rows)
