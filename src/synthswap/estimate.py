"""How long a `synthswap run` takes: each stage's seconds from the work it has to do.

A stage that does a fixed amount of work (faces to find, photos to invert, images to make, frames to
convert) takes that work at the rates a whole default run measured on the reference machine (README,
"Planning figures": 2-core Xeon with bf16 units, 10 frames of d3, the 448 frames of d10 at 512 x 512),
times `speed`: how much longer this machine's own finished stages took than the same rates say
(`machine_speed`). A stage with a budget (swap training, a personal GAN prior, the enhancer's
fine-tune) takes its budget, or fewer seconds when a step limit ends it first.

The figures are estimates for planning (the web app's presets, the form's "about N min"), not
promises: a busy machine or an unusual video can take longer.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthswap import space
from synthswap.media import MediaError, probe_video
from synthswap.stages import run_plan

# The reference run's work and times (README "Planning figures"; docs/swap.md "A whole run at 64 px and
# at 128 px"): each rate below is a stage's measured seconds over its work.
REF_PIXELS = 512 * 512  # d10's frames
EXTRACT_S_PER_FRAME = 17 / (10 + 448)  # both extractions, per frame looked at
INVERT_S_PER_PHOTO_STEP = 273 / (10 * (300 + 400))  # projection + pivotal tuning, per photo and step
DIRECTIONS_S_PER_SAMPLE = 45 / 3000
SYNTHESIS_S_PER_IMAGE = {"gan": 477 / 500, "warp": 0.01}  # warp: 500 images in about 5 s
SWAP_SET_UP_S = 915 - 900  # data, identity network and landmark fit before the first step
SWAP_STEPS_PER_S_128 = 1582 / 900  # 128 px, bf16, identity and pose losses on
# A step with the patch discriminator (GAN power) against one without: 200 steps took 139 s against 124 s
# (docs/swap.md, "SAEHD's GAN power").
GAN_POWER_STEP_COST = 139 / 124
CONVERT_S_PER_FRAME = 34 / 448  # with the enhancer
EVALUATE_S_PER_FRAME = 86 / 448
ENHANCER_SET_UP_S = 10.0

BUDGETED = ("gan", "swap", "enhancer")  # their time is their budget, not the machine's speed


@dataclass(frozen=True)
class Workload:
    """What a run has to go through, read from its inputs' headers (no frame is decoded)."""

    subject_faces: int  # photos, plus the frames looked at in the subject's videos
    video_frames: int
    video_pixels: int  # width x height of the destination's frames

    @classmethod
    def of(cls, opts: Any) -> Workload:
        """The workload of the run `opts` (RunOptions). Raises MediaError for an unreadable video."""
        info = probe_video(opts.video)
        return cls(subject_faces=frames_looked_at(opts.subject, opts.subject_every_n, opts.subject_max_frames),
                   video_frames=space.video_frame_count(info), video_pixels=info.width * info.height)


def frames_looked_at(inputs: Iterable[str], every_n: int, max_frames: int | None) -> int:
    """`space.faces_looked_at`, where a video whose header cannot be read counts for nothing."""
    total = 0
    for path in inputs:
        try:
            total += space.faces_looked_at([Path(path)], every_n, max_frames)
        except MediaError:
            continue
    return total


def swap_steps_per_s(resolution: int, batch_size: int, gan_power: float) -> float:
    """The reference machine's swap training steps per second at this size, batch and GAN power."""
    rate = SWAP_STEPS_PER_S_128 * (128 / resolution) ** 2 * 8 / batch_size
    return rate / GAN_POWER_STEP_COST if gan_power > 0 else rate


def _swap_seconds(opts: Any) -> float:
    budget = opts.swap_minutes * 60
    if opts.swap_steps:
        budget = min(budget, opts.swap_steps / swap_steps_per_s(opts.swap_resolution, opts.batch_size,
                                                                opts.swap_gan_power))
    return SWAP_SET_UP_S + budget


def stage_seconds(key: str, opts: Any, work: Workload) -> float:
    """The reference machine's seconds for stage `key` of the run `opts` (RunOptions)."""
    pixels = work.video_pixels / REF_PIXELS
    if key == "subject":
        return EXTRACT_S_PER_FRAME * work.subject_faces
    if key == "dest":
        return EXTRACT_S_PER_FRAME * math.ceil(work.video_frames / opts.every_n) * pixels
    if key == "gan":
        return opts.gan_minutes * 60
    if key == "inversion":
        return INVERT_S_PER_PHOTO_STEP * work.subject_faces * (opts.invert_steps + opts.pti_steps)
    if key == "directions":
        return DIRECTIONS_S_PER_SAMPLE * opts.directions_n
    if key == "synthetic":
        return SYNTHESIS_S_PER_IMAGE[opts.engine] * opts.synthetic
    if key == "swap":
        return _swap_seconds(opts)
    if key == "enhancer":
        return ENHANCER_SET_UP_S + opts.enhance_minutes * 60
    if key == "convert":
        # decoding and encoding grow with the frame, the face's work does not: half and half at 512 px
        return CONVERT_S_PER_FRAME * work.video_frames * (0.5 + 0.5 * pixels)
    if key == "evaluate":
        return EVALUATE_S_PER_FRAME * work.video_frames
    raise KeyError(f"no cost model for stage {key!r}")


def estimate(opts: Any, work: Workload, speed: float = 1.0) -> list[dict[str, Any]]:
    """[{key, name, seconds}] for each stage the run goes through, in order; the stages that do a fixed
    amount of work scaled by `speed` (this machine's time over the reference's)."""
    out = []
    for stage in run_plan(opts):
        seconds = stage_seconds(stage.key, opts, work)
        if stage.key not in BUDGETED:
            seconds *= speed
        out.append({"key": stage.key, "name": stage.title(opts), "seconds": round(seconds, 1)})
    return out


def machine_speed(finished: Iterable[tuple[Any, Workload, dict[str, float]]]) -> tuple[float, int]:
    """(speed, runs): the median over finished runs of their fixed-work stages' measured seconds over
    the reference seconds for the same work; (1.0, 0) when no run says anything. `finished` holds
    (RunOptions, Workload, {stage key: measured seconds}) of each run."""
    ratios = []
    for opts, work, measured in finished:
        reference = spent = 0.0
        for key, seconds in measured.items():
            if key in BUDGETED:
                continue
            reference += stage_seconds(key, opts, work)
            spent += seconds
        if reference >= 30:  # a few seconds of work say more about start-up than about speed
            ratios.append(spent / reference)
    return (statistics.median(ratios), len(ratios)) if ratios else (1.0, 0)


__all__ = ["Workload", "estimate", "frames_looked_at", "machine_speed", "stage_seconds"]
