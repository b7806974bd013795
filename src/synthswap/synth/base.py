"""What `synthesize` and its engines share: the options, a candidate image, the error, and the
interface every engine implements.

An engine proposes candidate images of the subject, each aimed at a target attribute
vector (faces.measure.ATTRIBUTE_NAMES order, in the subject's frame); the pipeline
analyses, filters and writes them. Engines are registered by name in `synth.engines.ENGINES`,
which every caller (the CLI's choices, `run`, `study`) reads: a new engine is one subclass
of `Engine` and one registry entry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from synthswap.faces.identity import SAME_PERSON_COSINE
from synthswap.faceset import Faceset
from synthswap.metrics.coverage import DEFAULT_EPS
from synthswap.options import option


class SynthError(Exception):
    """Bad input to synthesis (missing inversion, empty faceset, impossible options)."""


@dataclass
class Candidate:
    image: np.ndarray  # BGR uint8, a face image the analyser will look for a face in
    source_id: str  # which real photo / pivot it came from
    meta: dict[str, Any]  # engine-specific edit metadata (JSON-able)
    latent: np.ndarray | None = None  # W+ for GAN candidates


@dataclass
class SynthOptions:
    out: str
    n: int = option(500, "number of images to keep", minimum=1)
    # The engines are registered in synth.engines (which imports this module): synthesize refuses a
    # name not there, before anything is read or written.
    engine: str = option("gan", "gan: edit the subject's GAN inversion; warp: warp their real photos",
                         metavar="ENGINE")
    inversion: str | None = option(None, "folder written by `gan invert` (gan engine)", metavar="INV_DIR")
    faces: str | None = option(None, "the subject's real faceset (warp engine; gan: overrides the path the "
                                     "inversion recorded)", metavar="FACESET")
    match: str | None = option(None, "aim at the expressions and poses of this (destination) faceset and report its "
                                     "coverage", metavar="DEST_FACESET")
    coverage_of: str | None = option(None, "report coverage of this faceset without aiming at it",
                                     metavar="DEST_FACESET")
    directions: str | None = option(None, "directions file (default: GAN_DIR/directions.safetensors)",
                                    metavar="FILE")
    min_identity: float = option(SAME_PERSON_COSINE, "keep images whose SFace cosine to the real photos is at least "
                                                     "this (the default is SFace's same-person threshold)")
    # Realism gate: a kept face must be at least this sharp, relative to the median sharpness of the
    # subject's real photos (variance of the Laplacian in the face mask). A blur can pass an identity
    # filter (a 10-minute CPU prior's 13 kept images were one blurred blob at SFace 0.37-0.41).
    min_sharpness: float = option(0.35, "realism gate: keep images at least this sharp relative to the median of the "
                                        "real photos (variance of the Laplacian in the face; 0: off)", minimum=0)
    # GAN engine: Adam steps on each edited latent towards the subject's identity (SFace in torch),
    # held near the edit so the expression stays (0: plain direction steps).
    identity_steps: int = option(10, "gan engine: Adam steps on each edited latent towards the subject's identity, "
                                     "held near the edit (0: plain direction steps)", minimum=0)
    identity_lr: float = 0.01
    max_attempts: int | None = option(None, "give up after this many candidates (default 4 x N)", minimum=1)
    size: int | None = option(None, "crop size of the output (default: the subject faceset's)")
    eps: float = option(DEFAULT_EPS, "coverage radius", above=0)
    strength: float = option(1.0, "scale of every edit: 1 aims exactly at the target, 0.5 half-way")
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # the generator's passes (synthswap.precision)
    batch: int = 16
    progress: bool = True


def open_faceset(path: str | Path, what: str) -> Faceset:
    fs = Faceset.open(path)
    if len(fs) == 0:
        raise SynthError(f"{path}: the {what} faceset has no faces")
    return fs


class Engine(ABC):
    """A source of candidate images of the subject."""

    name: ClassVar[str]
    # True when the engine edits a GAN inversion: `run` and `study` then invert the subject's
    # photos into a prior and fit directions around them before synthesising.
    needs_inversion: ClassVar[bool] = False
    subject: Faceset  # the subject's real photos: identity reference and edit starting points

    @classmethod
    @abstractmethod
    def create(cls, opts: SynthOptions) -> Engine:
        """Open and check everything the engine needs (SynthError if something is missing)."""

    @abstractmethod
    def default_targets(self, rng: np.random.Generator) -> np.ndarray:
        """(N, 8) target offsets from the neutral face, used when no destination is matched."""

    @abstractmethod
    def propose(self, targets: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> list[Candidate]:
        """One candidate per target row; `strength` scales every edit (1 = all the way)."""

    def reference_images(self, limit: int) -> list[np.ndarray]:
        """At most `limit` of the subject's images as this engine renders them at its best, in the form
        its candidates reach the filters: the realism gate's reference. A candidate is analysed, aligned
        and cropped again, which softens it, and a generator renders less fine detail than a photo has,
        so the photos' stored sharpness is the wrong yardstick. The default: the photos themselves
        (an engine whose candidates are the photos, moved), evenly spaced."""
        faces = self.subject.faces
        return [self.subject.read_image(f) for f in faces[:: max(1, len(faces) // limit)][:limit]]
