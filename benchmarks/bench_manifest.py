"""Memory and bytes written by FacesetWriter as a faceset grows, this writer against an older one.

    .venv/bin/python benchmarks/bench_manifest.py [--faces 1000,5000,20000] [--old-rev 95797e2] [--old-max 5000]

Each (writer, size) runs in a fresh process that writes N synthetic rows of real size
(478 landmarks and a 128-D identity, rounded as extraction rounds them; 32 px crops) and
reports its wall time, its peak RSS growth over the RSS before the first row
(`resource.getrusage`), and the bytes it wrote from /proc/self/io: `wchar` (bytes passed to
write calls) and `write_bytes` (bytes sent to the disk). The old writer is the
`src/synthswap/faceset.py` of `--old-rev` (default: the last commit before the append-only
manifest), which rewrote the whole manifest every 50 faces; sizes above `--old-max` are
not run for it, and the table gives the manifest bytes it would write instead
(row bytes x 50 x k(k+1)/2 for k = N/50 rewrites).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FLUSH_EVERY = 50  # the old writer's rewrite interval


def _io() -> dict[str, int]:
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return {k: int(fields[k]) for k in ("wchar", "write_bytes")}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _row(rng: np.random.Generator, i: int) -> dict:
    """A row as extraction writes it: fresh lists per face, values rounded as `AnalyzedFace.record` rounds them."""
    identity = rng.normal(size=128)
    return {
        "source": "/data/videos/long.mp4", "frame_index": i, "time_s": round(i / 30, 4),
        "affine": np.round(rng.normal(size=(2, 3)), 6).tolist(),
        "landmarks": np.round(rng.uniform(0, 256, size=(478, 2)), 2).tolist(),
        "expression": {k: round(float(v), 5) for k, v in zip(
            ("mouth_open", "mouth_width", "smile", "eye_open_left", "eye_open_right", "brow_raise"), rng.random(6))},
        "pose": {k: round(float(v), 3) for k, v in zip(("yaw", "pitch", "roll"), rng.normal(0, 10, 3))},
        "sharpness": round(float(rng.uniform(50, 500)), 3),
        "identity": np.round(identity / np.linalg.norm(identity), 6).tolist(),
        "detection_score": round(float(rng.uniform(0.8, 1.0)), 4),
    }


def child(module_path: str, n: int, folder: str) -> None:
    """Write n rows with the FacesetWriter of `module_path` (empty: the installed one); print JSON figures."""
    if module_path:
        spec = importlib.util.spec_from_file_location("faceset_under_test", module_path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    else:
        from synthswap import faceset as module
    rng = np.random.default_rng(0)
    crop = np.zeros((32, 32, 3), np.uint8)
    mask = np.zeros((32, 32), np.uint8)
    rss0 = _rss_mb()
    io0 = _io()
    start = time.perf_counter()
    with module.FacesetWriter(Path(folder) / "fs", 32, {"name": "synthswap-5pt-v1"}) as writer:
        for i in range(n):
            writer.add(crop, mask, **_row(rng, i))
    seconds = time.perf_counter() - start
    io1 = _io()
    manifest = Path(folder) / "fs" / "faces.jsonl"
    print(json.dumps({
        "seconds": seconds,
        "rss_growth_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss0,
        "wchar_mb": (io1["wchar"] - io0["wchar"]) / 1e6,
        "write_bytes_mb": (io1["write_bytes"] - io0["write_bytes"]) / 1e6,
        "manifest_mb": manifest.stat().st_size / 1e6,
    }))


def run_one(module_path: str, n: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = subprocess.run([sys.executable, __file__, "--child", module_path, str(n), folder],
                             check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", default="1000,5000,20000", help="comma-separated numbers of rows")
    parser.add_argument("--old-rev", default="95797e2", help="git revision of the old writer ('' to skip it)")
    parser.add_argument("--old-max", type=int, default=5000, help="largest size to run the old writer on")
    parser.add_argument("--child", nargs=3, metavar=("MODULE", "N", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.child[2])
        return

    sizes = sorted(int(s) for s in args.faces.split(","))
    writers = [("append (this tree)", "")]
    with tempfile.TemporaryDirectory() as tmp:
        if args.old_rev:
            old = Path(tmp) / "faceset_old.py"
            old.write_bytes(subprocess.run(["git", "-C", str(REPO), "show", f"{args.old_rev}:src/synthswap/faceset.py"],
                                           check=True, capture_output=True).stdout)
            writers.append((f"rewrite every 50 ({args.old_rev})", str(old)))
        print("| writer | faces | seconds | peak RSS growth (MB) | written, write calls (MB) | written to disk (MB) "
              "| manifest (MB) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, module_path in writers:
            row_mb = None  # this writer's row size, from its last run
            for n in sizes:
                if module_path and n > args.old_max:
                    k = n // FLUSH_EVERY
                    predicted = row_mb and f"~{row_mb * FLUSH_EVERY * k * (k + 1) / 2:,.0f} (manifest rewrites alone)"
                    print(f"| {name} | {n:,} | not run | | {predicted or ''} | | |", flush=True)
                    continue
                r = run_one(module_path, n)
                row_mb = r["manifest_mb"] / n
                print(f"| {name} | {n:,} | {r['seconds']:.1f} | {r['rss_growth_mb']:.1f} | {r['wchar_mb']:,.1f} "
                      f"| {r['write_bytes_mb']:,.1f} | {r['manifest_mb']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
