"""Memory and time of opening a large faceset (issue 28): a 20,000-row manifest made by repeating
the rows of a real faceset (the crops are shared; only the manifest grows).

    .venv/bin/python benchmarks/bench_faceset_memory.py --faceset FACESET [--rows 20000]

Prints the rows, the seconds and the process's peak resident memory after `Faceset.open`, then after
reading the columns that readers scan as a whole (expressions, poses, identities: what `coverage` reads)
and after one pass over every row (what `swap train` does to gather landmarks).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--faceset", required=True, help="a real faceset (e.g. `synthswap extract d6.mp4 --size 64`)")
    p.add_argument("--rows", type=int, default=20000)
    args = p.parse_args()
    from synthswap.faceset import MANIFEST_FILE, Faceset

    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big"
        shutil.copytree(args.faceset, big, ignore=shutil.ignore_patterns(".synthswap.lock"))
        rows = [json.loads(line) for line in (big / MANIFEST_FILE).read_text().splitlines() if line.strip()]
        with open(big / MANIFEST_FILE, "w") as fh:
            for n in range(args.rows):
                row = dict(rows[n % len(rows)], id=f"{n:06d}", frame_index=n)
                fh.write(json.dumps(row, separators=(",", ":")) + "\n")
        del rows

        def peak_mb() -> int:
            return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3)

        result = {"peak_before_open_mb": peak_mb()}
        start = time.perf_counter()
        faceset = Faceset.open(big)
        result.update(rows=len(faceset), open_s=round(time.perf_counter() - start, 1), open_peak_mb=peak_mb())
        start = time.perf_counter()
        faceset.expressions(), faceset.poses(), faceset.identities()
        result.update(columns_s=round(time.perf_counter() - start, 1), columns_peak_mb=peak_mb())
        start = time.perf_counter()
        points = sum(len(face.landmarks) for face in faceset.faces)
        result.update(pass_s=round(time.perf_counter() - start, 1), pass_peak_mb=peak_mb(), landmarks=points)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
