"""What the ledger says: per-condition means, the gap recovered R, and paired differences with 95%
bootstrap intervals over the (pair, seed) units, as Markdown.

Q is dlib's (the judge no model trains against) mean distance to the subject's held-out frames:
lower is better, and unlike the share of frames nearer the subject it does not saturate at 100%.
R = (Q(k + synthetic) - Q(k)) / (Q(all real) - Q(k)) per unit, only where the gap is at least
MIN_GAP; a paired difference is taken within one pair, seed and k, so the people's own difficulty
cancels; its interval resamples whole units.
"""

from __future__ import annotations

import numpy as np

from synthswap.study.ledger import DONE, FAILED

Q = "dlib_distance_to_subject"
SHOWN = (("dlib_distance_to_subject", "dlib distance"), ("dlib_subject_closer_rate", "dlib nearer"),
         ("identity_to_subject", "SFace"), ("sharpness_ratio", "sharpness"), ("sharpness_ratio_half", "2x down"),
         ("expression_error", "expression"), ("pose_error_deg", "pose"))
COMPARISONS = (("real+gan", "real"), ("real+warp", "real"), ("real+gan", "real+warp"), ("real+gan+warp", "real+warp"))
MIN_GAP = 0.01  # dlib distance: a smaller gap between real-k and all-real is noise, R is not taken over it
BOOTSTRAP = 4000

Unit = tuple[str, int]  # (pair, seed)


def cell_results(rows: list[dict[str, str]], steps: int) -> dict[tuple[Unit, int, str], dict[str, float]]:
    """(unit, k, condition) -> its measures, for the finished cells of one step budget."""
    out = {}
    for r in rows:
        if r["status"] == DONE and int(r["swap_steps"]) == steps:
            out[(r["pair"], int(r["seed"])), int(r["k"]), r["condition"]] = {
                name: float(r[name]) for name, _ in SHOWN if r.get(name) not in (None, "")}
    return out


def bootstrap_interval(values: list[float], seed: int = 0) -> tuple[float, float, float]:
    """The mean and its 95% percentile-bootstrap interval (resampling the values, one per unit)."""
    data = np.asarray(values, np.float64)
    if len(data) == 1:
        return float(data[0]), float("nan"), float("nan")
    means = np.random.default_rng(seed).choice(data, size=(BOOTSTRAP, len(data))).mean(axis=1)
    return float(data.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def paired_differences(results: dict, k: int, a: str, b: str, metric: str = Q) -> list[float]:
    """metric(a) - metric(b) in every unit that has both at this k."""
    units = {u for (u, kk, _) in results if kk == k}
    return [results[u, k, a][metric] - results[u, k, b][metric] for u in sorted(units)
            if (u, k, a) in results and (u, k, b) in results and metric in results[u, k, a]
            and metric in results[u, k, b]]


def gap_recovered(results: dict, k: int, condition: str) -> list[float]:
    """R of `condition` at k in every unit where the gap to all-real is clear."""
    out = []
    for (unit, kk, cond), m in results.items():
        if kk != k or cond != condition:
            continue
        base, full = results.get((unit, k, "real")), results.get((unit, 0, "all-real"))
        if base is None or full is None or abs(full[Q] - base[Q]) < MIN_GAP:
            continue
        out.append((m[Q] - base[Q]) / (full[Q] - base[Q]))
    return out


def condition_bands(results: dict, metric: str = Q) -> dict[str, list[tuple[int, float, float, float]]]:
    """Per condition, (k, mean, 95% low, 95% high) of `metric` over the units that have the cell: what the
    report's plots draw (all-real at k = 0). Unpaired: each condition's own spread across people and seeds."""
    bands: dict[str, list[tuple[int, float, float, float]]] = {}
    for cond in sorted({c for (_, _, c) in results}):
        for k in sorted({kk for (_, kk, c) in results if c == cond}):
            values = [m[metric] for (_, kk, c), m in results.items() if kk == k and c == cond and metric in m]
            if values:
                bands.setdefault(cond, []).append((k, *bootstrap_interval(values)))
    return bands


# What the reading section compares, in words: (a, b, what a - b says).
READING = ((("real+gan", "real"), "the GAN's images added to k photos, against the k photos alone"),
           (("real+warp", "real"), "the warp's images added, against the k photos alone"),
           (("real+gan", "real+warp"), "the GAN against the warp, each added to the same k photos"))


def _verdict(diffs: list[float], if_negative: str, if_positive: str) -> str:
    """A paired difference in words: its mean, interval and what its sign says where the interval
    settles it."""
    mean, lo, hi = bootstrap_interval(diffs)
    if lo != lo:
        return f"{mean:+.3f} in the one unit measured (no interval yet)"
    said = if_negative if hi < 0 else if_positive if lo > 0 else "no difference shown: the interval includes 0"
    return f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}] over {len(diffs)} units: {said}"


def reading(results: dict, ks: list[int], steps: int) -> list[str]:
    """The plain reading of one budget's cells, generated from them so that it stays true as the ledger
    grows: each comparison by dlib (the judge), the cost in sharpness and expression, and R against
    the claim that a reduced synthetic set gives a near-realistic swap."""
    units = len({u for (u, _, _) in results})
    lines = ["**What the numbers show** (generated from the cells above; intervals are 95% bootstrap over "
             f"the {units} (pair, seed) unit{'s' if units != 1 else ''} in so far):", ""]
    for (a, b), words in READING:
        said = [f"k = {k}: {_verdict(d, 'nearer the subject', 'further from the subject')}"
                for k in ks if (d := paired_differences(results, k, a, b))]
        if said:
            lines.append(f"- dlib distance, {words} ({a} − {b}): " + "; ".join(said) + ".")
    for metric, name, if_negative, if_positive in (
            ("sharpness_ratio", "sharpness (of the destination face's)", "softer", "sharper"),
            ("expression_error", "expression error", "lower", "higher")):
        said = [f"k = {k}: {_verdict(d, if_negative, if_positive)}"
                for k in ks if (d := paired_differences(results, k, "real+gan", "real", metric))]
        if said:
            lines.append(f"- {name}, real+gan − real: " + "; ".join(said) + ".")
    r_said = []
    for k in ks:
        values = gap_recovered(results, k, "real+gan")
        if values:
            mean, lo, hi = bootstrap_interval(values)
            r_said.append(f"k = {k}: R = {mean:+.2f}" + ("" if lo != lo else f" [{lo:+.2f}, {hi:+.2f}]")
                          + f" ({len(values)} unit{'s' if len(values) != 1 else ''})")
    if r_said:
        lines += ["", "**Against the paper's claim** that a reduced synthetic set gives a near-realistic deepfake: "
                  "R near 1 would say the GAN's images close the gap between k photos and every real frame, near 0 "
                  "that they add nothing the k photos lack. Here, for real+gan: " + "; ".join(r_said) + "."]
    lines += ["", f"**What they do not show**: what models trained longer than {steps} steps per cell would give "
              "(a user's `run` trains for minutes more; the study's longer budget, where it is in, tests whether "
              "the answer changes); realism beyond sharpness (no FID in the ledger); people outside these pairs; "
              "and, until every unit is in, a reliable interval.", ""]
    return lines


def _fmt(value: float, digits: int = 3) -> str:
    return "–" if value != value else f"{value:.{digits}f}"  # NaN: one unit, no interval


def markdown(rows: list[dict[str, str]], base_steps: int, figures: tuple[tuple[str, str], ...] = ()) -> str:
    """The report of the ledger's rows: the base budget's tables, then any longer budget's, then
    `figures` ((file name beside the summary, caption), ...)."""
    done = [r for r in rows if r["status"] == DONE]
    failed = [r for r in rows if r["status"] == FAILED]
    units = sorted({(r["pair"], int(r["seed"])) for r in done})
    lines = ["# How few photos? The study across people (ledger summary)", "",
             f"Written by `synthswap study --pair ...` from its ledger: {len(done)} cells finished, {len(failed)} "
             f"failed, over {len({u[0] for u in units})} pairs and {len({u[1] for u in units})} seeds. Q is dlib's "
             f"mean distance to the subject's held-out frames (lower is better; below 0.6 is dlib's same person). "
             f"Differences are paired within a pair, seed and k; intervals are 95% bootstrap over the (pair, seed) "
             f"units ({BOOTSTRAP} resamples); '–' where only one unit has the cell.", ""]
    for steps in sorted({int(r["swap_steps"]) for r in done}, key=lambda s: (s != base_steps, s)):
        results = cell_results(rows, steps)
        ks = sorted({k for (_, k, _) in results if k > 0})
        lines += [f"## {steps} swap steps per cell" + ("" if steps == base_steps else " (the longer budget)"), "",
                  "| k | condition | units | " + " | ".join(label for _, label in SHOWN) + " |",
                  "| ---: | --- | ---: | " + " | ".join("---:" for _ in SHOWN) + " |"]
        for k in [0, *ks]:
            for cond in sorted({c for (_, kk, c) in results if kk == k}):
                measured = [m for (_, kk, c), m in results.items() if kk == k and c == cond]
                means = [np.mean([m[name] for m in measured if name in m]) if any(name in m for m in measured)
                         else float("nan") for name, _ in SHOWN]
                lines.append(f"| {k or 'all'} | {cond} | {len(measured)} | " + " | ".join(_fmt(float(m)) for m in means) + " |")
        lines += ["", "Paired differences of Q (negative: the first is nearer the subject):", "",
                  "| k | difference | units | mean | 95% interval | includes 0 |", "| ---: | --- | ---: | ---: | --- | --- |"]
        for k in ks:
            for a, b in COMPARISONS:
                diffs = paired_differences(results, k, a, b)
                if diffs:
                    mean, lo, hi = bootstrap_interval(diffs)
                    zero = "–" if lo != lo else ("yes" if lo <= 0 <= hi else "no")
                    lines.append(f"| {k} | {a} − {b} | {len(diffs)} | {mean:+.3f} | [{_fmt(lo)}, {_fmt(hi)}] | {zero} |")
        lines += ["", f"Gap recovered R (units whose real-k to all-real gap is at least {MIN_GAP}):", "",
                  "| k | condition | units | mean R | 95% interval |", "| ---: | --- | ---: | ---: | --- |"]
        for k in ks:
            for cond in ("real+warp", "real+gan", "real+gan+warp"):
                values = gap_recovered(results, k, cond)
                if values:
                    mean, lo, hi = bootstrap_interval(values)
                    lines.append(f"| {k} | {cond} | {len(values)} | {mean:+.2f} | [{_fmt(lo, 2)}, {_fmt(hi, 2)}] |")
        lines += ["", *reading(results, ks, steps)]
    if figures:
        lines += ["## Figures", ""] + [f"![{caption}]({name})\n\n{caption}\n" for name, caption in figures]
    if failed:
        lines += ["## Failed cells (run again by `--resume`)", ""]
        lines += [f"- {r['pair']} seed {r['seed']} k {r['k']} {r['condition']}: {r['error']}" for r in failed]
        lines.append("")
    return "\n".join(lines)



