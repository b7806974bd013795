"""Full-size frames of a destination and of its swaps side by side, with the face cut at 1:1 (docs), not a test.

For each chosen frame: the frames of the source and of each output at full size in one row, and
under them the face of each at 1:1 (the square around the source's largest face, its detection box, same
pixels in every column): what a viewer sees, without the enlargement that hides blur or seams.

    .venv/bin/python benchmarks/side_by_side.py --source ../shared/data/videos/people/d10.mp4 \\
        --output "64 px"=r64.mp4 --output "128 px"=r128.mp4 --frames 100,300 --out d3_to_d10.png

Frames of ../shared's people may not be committed: the docs' committed panels are of the demo's
public-domain inputs; run this on the people videos to look at them locally.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from synthswap import atomic
from synthswap.faces.detect import FaceDetector
from synthswap.media import iter_video_frames

FACE_MARGIN = 1.0
LABEL_HEIGHT = 28


def frames_at(path: Path, indices: list[int]) -> dict[int, np.ndarray]:
    """The frames at `indices` (decode order, upright), read in one pass."""
    wanted, found = set(indices), {}
    for frame in iter_video_frames(path):
        if frame.index in wanted:
            found[frame.index] = frame.bgr
            if len(found) == len(wanted):
                break
    missing = sorted(wanted - found.keys())
    if missing:
        raise SystemExit(f"{path}: has no frame {missing[0]} (it holds fewer frames)")
    return found


def face_square(bgr: np.ndarray, detector: FaceDetector) -> tuple[int, int, int]:
    """(x, y, side) of the square around the largest face, inside the frame."""
    detections = detector.detect(bgr)
    if not detections:
        raise SystemExit("no face found in the source frame; choose other --frames")
    x, y, w, h = max(detections, key=lambda d: d.area).box
    side = int(min(max(w, h) * FACE_MARGIN, *bgr.shape[:2]))
    cx, cy = x + w / 2, y + h / 2
    left = int(np.clip(cx - side / 2, 0, bgr.shape[1] - side))
    top = int(np.clip(cy - side / 2, 0, bgr.shape[0] - side))
    return left, top, side


def labelled(image: np.ndarray, text: str) -> np.ndarray:
    band = np.full((LABEL_HEIGHT, image.shape[1], 3), 255, np.uint8)
    width = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1)[0][0]
    scale = 0.6 * min(1.0, (image.shape[1] - 12) / max(width, 1))  # a narrow face crop gets a smaller font
    cv2.putText(band, text, (6, LABEL_HEIGHT - 9), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([band, image])


def hstack_padded(images: list[np.ndarray], gap: int = 8) -> np.ndarray:
    height = max(i.shape[0] for i in images)
    padded = []
    for i, image in enumerate(images):
        image = np.pad(image, ((0, height - image.shape[0]), (0, 0), (0, 0)), constant_values=255)
        padded.append(image if i == 0 else np.hstack([np.full((height, gap, 3), 255, np.uint8), image]))
    return np.hstack(padded)


def vstack_padded(images: list[np.ndarray], gap: int = 8) -> np.ndarray:
    width = max(i.shape[1] for i in images)
    rows = []
    for i, image in enumerate(images):
        image = np.pad(image, ((0, 0), (0, width - image.shape[1]), (0, 0)), constant_values=255)
        rows.append(image if i == 0 else np.vstack([np.full((gap, width, 3), 255, np.uint8), image]))
    return np.vstack(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", required=True, type=Path, help="the destination video the outputs were made from")
    p.add_argument("--output", action="append", required=True, metavar="LABEL=VIDEO",
                   help="an output of the source, with its column label (repeatable)")
    p.add_argument("--frames", default="100", help="comma-separated frame indices")
    p.add_argument("--no-full", action="store_true", help="only the 1:1 faces, not the full frames")
    p.add_argument("--out", required=True, type=Path, help="PNG to write")
    args = p.parse_args()
    outputs = []
    for entry in args.output:
        label, sep, video = entry.partition("=")
        if not sep or not label or not video:
            raise SystemExit(f"--output {entry!r}: give LABEL=VIDEO")
        outputs.append((label, Path(video)))
    indices = [int(i) for i in args.frames.split(",")]
    columns = [("destination", args.source), *outputs]
    frames = {label: frames_at(path, indices) for label, path in columns}
    detector = FaceDetector()
    rows = []
    for index in indices:
        x, y, side = face_square(frames["destination"][index], detector)
        faces = [labelled(frames[label][index][y:y + side, x:x + side], f"{label}, 1:1") for label, _ in columns]
        if not args.no_full:
            rows.append(hstack_padded([labelled(frames[label][index], f"{label}, frame {index}")
                                       for label, _ in columns]))
        rows.append(hstack_padded(faces))
    image = vstack_padded(rows)
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise SystemExit("could not encode the PNG")
    atomic.write_bytes(args.out, png.tobytes())
    print(f"{args.out}: {image.shape[1]} x {image.shape[0]}")


if __name__ == "__main__":
    main()
