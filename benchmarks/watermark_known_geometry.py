"""Did the edit remove the watermark, or did the search miss it? Not a test.

For the edits `benchmarks/watermark_edits.py` reports as lost, the marker's z at the edit's own
geometry, which this script knows from the edit and `watermark.detect` must find: the phases'
summed residuals are warped back by the edit's exact map (rotation, perspective, resize), folded and
correlated with the marker as `detect` does at its best guess. A z above `watermark.Z_FOUND` there
means the mark survived and only the search failed; below it, the edit (or the codec after it)
removed too much of the mark for these frames. Beside it `detect`'s own z and verdict.

    .venv/bin/python benchmarks/watermark_known_geometry.py                 # the lost edits, 75 frames
    .venv/bin/python benchmarks/watermark_known_geometry.py --frames 300 --only 0.33x --only 0.25x
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np

from synthswap.provenance import watermark
from synthswap.provenance.edits import Edit, apply_edit

from bench_watermark import read_planes  # benchmarks/ is on sys.path
from watermark_edits import CLIPS, DATA, EDITS, mark

LOST = ("0.33x downscale", "0.25x downscale", "H.264 CRF 38", "screen recording")


def edit_map(edit: Edit, width: int, height: int) -> np.ndarray:
    """3 x 3: a marked frame's pixel coordinates -> the edited frame's, for the edits that move pixels
    by rotation, perspective and resize (in `Edit.apply`'s order)."""
    if edit.flip or edit.box or edit.crop or edit.aspect or edit.canvas or (edit.rotate and edit.rotate % 90 == 0):
        raise ValueError(f"{edit.name}: only rotations, perspectives and resizes are mapped here")
    m = np.eye(3)
    w, h = width, height
    if edit.rotate:
        m = np.vstack([cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), edit.rotate, 1.0), [0, 0, 1]]) @ m
    if edit.perspective:
        d = edit.perspective * w
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        m = cv2.getPerspectiveTransform(src, np.float32([[d, 0], [w - d, 0], [w, h], [0, h]])) @ m
    if edit.scale != 1.0:
        sx, sy = round(w * edit.scale) / w, round(h * edit.scale) / h  # cv2.resize maps pixel centres
        m = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]]) @ m
    return m


def z_at(planes: list[np.ndarray], indices: list[int], to_edited: np.ndarray, width: int, height: int) -> float:
    """The marker's z with the frames brought back by `to_edited` (marked -> edited coordinates)."""
    sums, count = watermark._by_phase([watermark._highpass(p) for p in planes], indices)
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    phases = np.stack([np.zeros((watermark.TILE, watermark.TILE), np.float32) if r is None else
                       watermark._fold(cv2.warpPerspective(r, to_edited, (width, height), flags=flags))
                       for r in sums])
    if np.count_nonzero(count) > 1:  # less what stands still, as detection does
        phases -= count[:, None, None] * (phases.sum(axis=0) / count.sum())
    return float(watermark._best_orientation(phases, watermark.Geometry())[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clips", nargs="*", default=CLIPS, help="clips under ../shared/data/videos")
    p.add_argument("--frames", type=int, default=75, help="frames of each clip")
    p.add_argument("--only", action="append", default=[], help="only the edits whose name contains this "
                                                               "(repeat: any; default: the edits reported lost)")
    args = p.parse_args()
    cv2.setNumThreads(1)
    edits = [e for e in EDITS if any(part in e.name for part in (args.only or LOST))]
    print(f"{len(args.clips)} marked clips, {args.frames} frames each; threshold z {watermark.Z_FOUND}\n")
    print("| edit (then re-encoded) | clip | z at the edit's geometry | detect's z | detect found / run id |")
    print("| --- | --- | ---: | ---: | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for i, clip in enumerate(args.clips):
            marked = mark(DATA / clip, args.frames, work / f"marked_{i}.mp4")
            height, width = read_planes(marked, 1)[0][0].shape
            for edit in edits:
                planes, indices = read_planes(apply_edit(edit, marked, work / "edited.mp4"), args.frames)
                known = z_at(planes, indices, edit_map(edit, width, height), width, height)
                found = watermark.detect(planes, indices=indices)
                verdict = f"{'yes' if found.found else 'no'} / {found.run_id or '–'}"
                print(f"| {edit.name} | {Path(clip).stem} | {known:.2f} | {found.z:.2f} | {verdict} |", flush=True)


if __name__ == "__main__":
    main()
