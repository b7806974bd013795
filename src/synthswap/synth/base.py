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
    n: int = 500
    engine: str = "gan"  # gan | warp
    inversion: str | None = None  # INV_DIR, for the gan engine
    faces: str | None = None  # the subject's real faceset, for the warp engine (gan: from the inversion)
    match: str | None = None  # destination faceset whose expressions to aim at
    coverage_of: str | None = None  # destination faceset to report coverage of, without aiming at it
    directions: str | None = None  # directions file (default: GAN_DIR/directions.safetensors)
    min_identity: float = SAME_PERSON_COSINE
    # Realism gate: a kept face must be at least this sharp, relative to the median sharpness of the
    # subject's real photos (variance of the Laplacian in the face mask). A blur can pass an identity
    # filter (a 10-minute CPU prior's 13 kept images were one blurred blob at SFace 0.37-0.41).
    min_sharpness: float = 0.35
    # GAN engine: Adam steps on each edited latent towards the subject's identity (SFace in torch),
    # held near the edit so the expression stays (0: plain direction steps).
    identity_steps: int = 10
    identity_lr: float = 0.01
    max_attempts: int | None = None  # default 4 * n
    size: int | None = None  # crop size (default: the subject faceset's)
    eps: float = DEFAULT_EPS
    strength: float = 1.0  # scales every edit (1 = go all the way to the target)
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

    def reference_images(self) -> list[np.ndarray]:
        """The subject as this engine renders them at its best, in the form its candidates reach the
        filters: the realism gate's reference. A candidate is analysed, aligned and cropped again,
        which softens it, and a generator renders less fine detail than a photo has, so the photos'
        stored sharpness is the wrong yardstick. The default: the photos themselves (an engine whose
        candidates are the photos, moved)."""
        return [self.subject.read_image(f) for f in self.subject.faces]
