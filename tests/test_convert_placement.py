"""convert composes the swapped face at the size it has in the frame (issue 21): checked on a real frame
of a people video with the shipped swap model and the shipped enhancer."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from synthswap.faces.align import warp_to_crop
from synthswap.faces.landmarks import LIPS_INNER
from synthswap.faces.measure import sharpness
from synthswap.media import iter_video_frames
from synthswap.pretrained import resolve_model
from synthswap.swap.convert import ConvertOptions, FaceSwapper


@pytest.fixture(scope="module")
def frame(shared_data) -> np.ndarray:
    return next(iter(iter_video_frames(shared_data / "videos/people/d6.mp4", max_frames=1))).bgr


def _swap(frame: np.ndarray, **opts) -> tuple[np.ndarray, FaceSwapper, np.ndarray]:
    """The swapped frame, the swapper (closed) and the face's alignment affine."""
    swapper = FaceSwapper(resolve_model("shipped", "swap"), ConvertOptions(smooth_min_cutoff=0, precision="fp32", **opts))
    try:
        out, found = swapper.process(frame, 0.0)
        affine = swapper.analyzer.analyze(frame).affine
    finally:
        swapper.close()
    assert found
    return out, swapper, affine


def test_the_face_is_composed_at_its_size_in_the_frame(frame):
    out, swapper, affine = _swap(frame)
    scale = float(np.sqrt(abs(np.linalg.det(affine[:, :2]))))
    in_frame = swapper.size / scale  # the crop's side in frame pixels
    place = swapper.place_size(affine)
    assert place > swapper.size  # a close-up: far larger than the 64 px model
    assert in_frame <= place < in_frame + 16 and place % 16 == 0
    assert swapper.place_size(affine * 100) == swapper.size  # a tiny face: never below the model's size
    capped, _, _ = _swap(frame, max_place_size=128)
    # The same face, composed at two sizes, lands in the same place: the two outputs differ by far less
    # than either differs from the frame (a misplaced or misscaled paste would not).
    changed = np.abs(out.astype(int) - frame).sum(2) > 30
    assert changed.mean() > 0.05
    between = np.abs(out.astype(float) - capped)[changed].mean()
    from_frame = np.abs(out.astype(float) - frame)[changed].mean()
    assert between < 0.35 * from_frame, (between, from_frame)


def test_the_enhancer_restores_detail_where_the_face_is_placed(frame):
    plain, _, _ = _swap(frame)
    enhanced, _, _ = _swap(frame, enhancer=resolve_model("shipped", "enhance"))
    ys, xs = np.nonzero(np.abs(plain.astype(int) - frame).sum(2) > 30)
    box = (slice(ys.min(), ys.max()), slice(xs.min(), xs.max()))
    # Detail, not grain: compared at the box's own size and after a 2x downscale.
    for size in (128, 64):
        assert sharpness(enhanced[box], None, size) >= sharpness(plain[box], None, size) * 0.98
    assert np.abs(enhanced.astype(int) - plain)[box].mean() < 8  # the same face, not another one


def test_the_face_is_warped_into_the_frame_without_softening_it(shared_data):
    """The face is composed at its size in the frame, so the warp into the frame is a sub-pixel shift at
    1:1, where bilinear interpolation is a low-pass filter. Pasting a face cut from a d9 frame back where
    it came from and reading the pasted pixels back keeps its detail: at least 0.9 of its Laplacian
    variance after a 2x downscale (0.97 with convert.FACE_RESAMPLE, bicubic; bilinear kept 0.77)."""
    frame = next(iter(iter_video_frames(shared_data / "videos/people/d9.mp4", max_frames=1))).bgr
    swapper = FaceSwapper(resolve_model("shipped", "swap"), ConvertOptions(smooth_min_cutoff=0, precision="fp32"))
    try:
        face = swapper.analyzer.analyze(frame)
        place = swapper.place_size(face.affine)
        affine = face.affine * (place / swapper.size)
        crop = warp_to_crop(frame, affine, place)
        pasted = swapper._blend(np.zeros_like(frame), crop.astype(np.float32) / 255,
                                np.ones((place, place), np.float32), affine)
    finally:
        swapper.close()
    read_back = warp_to_crop(pasted, affine, place, cv2.INTER_NEAREST)  # the pasted pixels themselves
    margin = place // 6
    inner = (slice(margin, place - margin), slice(margin, place - margin))
    half = (place - 2 * margin) // 2
    kept = sharpness(read_back[inner], None, half) / sharpness(crop[inner], None, half)
    assert 0.9 < kept < 1.1, kept  # neither softened nor sharpened


def test_keep_mouth_puts_the_destinations_own_mouth_opening_back(shared_data):
    """d10's frame 100: a mouth opened wide (teeth, tongue), which the 64 px model draws as a dark blob."""
    frame = [f.bgr for f in iter_video_frames(shared_data / "videos/people/d10.mp4", max_frames=101)][100]
    outputs = {}
    for keep in (False, True):
        swapper = FaceSwapper(resolve_model("shipped", "swap"),
                              ConvertOptions(smooth_min_cutoff=0, precision="fp32", keep_mouth=keep))
        try:
            outputs[keep], found = swapper.process(frame, 0.0)
            landmarks = swapper.analyzer.analyze(frame).landmarks_frame
        finally:
            swapper.close()
        assert found
    opening = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(opening, [np.round(landmarks[LIPS_INNER, :2]).astype(np.int32)], 255)
    inside = cv2.erode(opening, np.ones((5, 5), np.uint8)) > 0
    outside = cv2.dilate(opening, np.ones((81, 81), np.uint8)) == 0  # beyond the widening and feather
    assert inside.sum() > 1000  # an open mouth, in pixels of the frame
    diff = {keep: np.abs(out.astype(int) - frame).sum(2) for keep, out in outputs.items()}
    # measured 2.2 (the summed BGR difference) against 56.6
    assert diff[True][inside].mean() < 6 < 20 < diff[False][inside].mean(), (diff[True][inside].mean(),
                                                                             diff[False][inside].mean())
    # Only the mouth: the rest of the swapped face is the same pixels.
    assert np.array_equal(outputs[True][outside], outputs[False][outside])
