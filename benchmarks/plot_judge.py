"""Plot swap_judge.py's CSVs: dlib distance to the subject and sharpness ratio against steps, one line per variant.

    python benchmarks/plot_judge.py judge_a/speedup.csv judge_b/speedup.csv --out docs/swap/pretrained_start.png
"""

from __future__ import annotations

import argparse
import csv

import matplotlib

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("csv", nargs="+")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    series: dict[str, list[tuple[int, float, float]]] = {}
    for path in args.csv:
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                name = f"{row['start']}, id {float(row['id_weight']):g}"
                series.setdefault(name, []).append((int(row["steps"]), float(row["dlib_distance_to_subject"]),
                                                    float(row["sharpness_ratio"])))
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=100)
    for name, points in sorted(series.items()):
        points.sort()
        steps = [p[0] for p in points]
        left.plot(steps, [p[1] for p in points], marker="o", label=name)
        right.plot(steps, [p[2] for p in points], marker="o", label=name)
    left.axhline(0.6, color="k", linestyle="--", linewidth=1, label="same person (dlib 0.6)")
    left.set(xlabel="swap training steps", ylabel="dlib distance to held-out subject")
    right.set(xlabel="swap training steps", ylabel="sharpness / destination face's")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    left.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out)


if __name__ == "__main__":
    main()
