"""Disk space told before a stage starts (issue 28): the estimates are upper bounds of what real
stages wrote, and not wildly above them (synthswap.space)."""

from __future__ import annotations

from synthswap import space
from synthswap.extract import collect_inputs
from synthswap.swap.networks import SwapConfig
from synthswap.stages import swap_parameters


def test_the_extraction_estimate_bounds_a_real_faceset(shared_data, extracted):
    faceset = extracted("videos/people/d6.mp4", size=128, max_frames=40, every_n=1)
    written = space.used_bytes(faceset)
    estimate = space.extraction_bytes(collect_inputs([shared_data / "videos/people/d6.mp4"]), 128, 1, 40)
    assert written <= estimate <= 3 * written + space.SLACK, (written, estimate)
    # A photo is one face; a video's kept frames follow --every-n and --max-frames.
    every_10th = space.extraction_bytes(collect_inputs([shared_data / "videos/people/d6.mp4"]), 64, 10, None)
    assert every_10th == space.faceset_bytes(101, 64)  # 1,008 frames, every 10th


def test_the_swap_estimate_is_three_checkpoints_of_the_real_model():
    """12 bytes a parameter (fp32 weights and AdamW's two moments), three copies while one is written:
    the 128 px default model (8.29 M parameters, a 99.5 MB checkpoint) needs about 314 MB."""
    parameters = swap_parameters(SwapConfig(resolution=128))
    assert parameters == 8_291_496
    assert space.checkpoint_bytes(parameters) == 3 * 12 * parameters + space.SLACK


def test_a_converted_video_is_bounded_from_its_header(shared_data):
    clip = shared_data / "videos/grid/bbaf2n.mpg"  # 75 frames of 360 x 288, with audio
    assert space.video_bytes(clip) == int(75 * 360 * 288 * space.VIDEO_BYTES_PER_PIXEL) + clip.stat().st_size + space.SLACK
