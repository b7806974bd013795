"""Who a video shows: its faces, sampled over its length, grouped into people by identity.

A person is a group of faces whose SFace embeddings are alike (cosine to the group's mean at least
SAME_PERSON_COSINE) and never two in one frame (two faces in one picture are two people). Position
plays no part: someone who walks from the left to the right stays one person, which is what a
choice of "who to replace" needs and `--face N` (a position where the choice is made) cannot give.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from synthswap.faces.detect import Detection
from synthswap.faces.identity import SAME_PERSON_COSINE


@dataclass
class SeenFace:
    """One detected face: the sampled frame it is in, its detection, its SFace embedding (unit) and a
    picture of it to show (so that the frame itself need not be kept)."""

    frame: int
    detection: Detection
    embedding: np.ndarray
    picture: np.ndarray


@dataclass
class Person:
    faces: list[SeenFace] = field(default_factory=list)

    @property
    def frames(self) -> set[int]:
        return {f.frame for f in self.faces}

    @property
    def best(self) -> SeenFace:
        """The face to show and to match against: the largest (the most detail, the surest embedding)."""
        return max(self.faces, key=lambda f: f.detection.area)

    def centroid(self) -> np.ndarray:
        mean = np.mean([f.embedding for f in self.faces], axis=0)
        return mean / (np.linalg.norm(mean) + 1e-12)


def group_by_identity(faces: list[SeenFace], min_cosine: float = SAME_PERSON_COSINE) -> list[Person]:
    """The people among `faces`, the most often seen first (ties: the larger face first).

    Greedy, largest faces first (their embeddings are the surest, so they found the groups): each face
    joins the most similar person not yet seen in its frame, or starts a new one."""
    people: list[Person] = []
    for face in sorted(faces, key=lambda f: f.detection.area, reverse=True):
        candidates = [(float(p.centroid() @ face.embedding), p) for p in people if face.frame not in p.frames]
        best = max(candidates, key=lambda c: c[0], default=None)
        if best is not None and best[0] >= min_cosine:
            best[1].faces.append(face)
        else:
            people.append(Person([face]))
    return sorted(people, key=lambda p: (len(p.frames), p.best.detection.area), reverse=True)
