"""How often does the provenance test's small clip keep its run id through each edit? (not a test)

`tests/test_provenance.py` converts the 360x288 GRID clip with a 2-step swap model and checks what
`verify` reads after each edit of `provenance.edits.EDITS`. The converted pixels depend on the swap
model, so on another machine (other float rounding) the same test reads another clip. This repeats
the test's conversion for --models swap models (seeds 0, 1, ...) x the run ids below, applies every
edit and prints, per edit, how many of the conversions gave back the run id (and the marker's z).

    .venv/bin/python benchmarks/watermark_test_clip.py --models 4 --out /tmp/wm_clip
"""

from __future__ import annotations

import argparse
from pathlib import Path
from unittest import mock

from synthswap.cli import main as cli
from synthswap.extract import extract
from synthswap.provenance.edits import EDITS, apply_edit
from synthswap.provenance.verify import verify_file

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CLIP = "videos/grid/bbaf2n.mpg"
RUN_IDS = ("5a17c3", "0b9e41", "c3d2e1")
TINY = ["--resolution", "64", "--e-dims", "8", "--ae-dims", "32", "--d-dims", "8", "--d-mask-dims", "4",
        "--batch-size", "4", "--threads", "1", "--quiet", "--device", "cpu"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=int, default=4, help="swap models (seeds) to convert with")
    p.add_argument("--out", type=Path, required=True, help="folder for the models, conversions and edits")
    args = p.parse_args()
    a, b = args.out / "faces_d6", args.out / "faces_grid"  # what the test's fixtures extract
    if not a.exists():
        extract([DATA / "videos/people/d6.mp4"], a, size=64, max_frames=4, every_n=60, progress=False)
        extract([DATA / CLIP], b, size=64, max_frames=4, every_n=15, progress=False)
    read: dict[str, list[str]] = {e.name: [] for e in EDITS}
    for seed in range(args.models):
        model = args.out / f"model{seed}"
        if not model.exists():
            assert cli(["swap", "train", "--src", str(a), "--dst", str(b), "--out", str(model), "--steps", "2",
                        "--seed", str(seed), *TINY]) == 0
        for run_id in RUN_IDS:
            converted = args.out / f"converted_{seed}_{run_id}.mp4"
            if not converted.exists():
                with mock.patch("synthswap.swap.convert.new_run_id", lambda r=run_id: bytes.fromhex(r)):
                    assert cli(["swap", "convert", "--model", str(model), "--video", str(DATA / CLIP), "--out",
                                str(converted), "--threads", "1", "--quiet", "--device", "cpu"]) == 0
            for i, edit in enumerate(EDITS):
                w = verify_file(apply_edit(edit, converted, args.out / f"edit_{seed}_{run_id}_{i}.mp4")).watermark
                mark = "ok" if w.run_id == run_id else ("WRONG ID" if w.run_id else ("no id" if w.found else "lost"))
                read[edit.name].append(f"{mark} z {w.z:.1f}")
                print(f"model {seed}, run id {run_id}, {edit.name}: {mark}, z {w.z:.1f}, scale {w.scale}", flush=True)
    print("\n| edit | run id read | marker z |\n| --- | --- | --- |")
    for name, rows in read.items():
        zs = [float(r.split("z ")[1]) for r in rows]
        print(f"| {name} | {sum(r.startswith('ok') for r in rows)} of {len(rows)} | {min(zs):.1f}-{max(zs):.1f} |")


if __name__ == "__main__":
    main()
