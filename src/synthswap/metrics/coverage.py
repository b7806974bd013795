"""Expression-and-pose coverage: does the training set show the faces the swap must render?

For every destination frame we take its expression-and-pose vector and ask whether some
training face lies within ε of it. The vector has eight components: the six expression
measures of `faces.measure` plus yaw and pitch (roll is left out: alignment removes it,
so the swap model never has to render it).

Two choices make the number comparable across people and runs:

* Each faceset is centred on its own neutral face (the median of its real rows; of all
  rows when it has none). Mouth width or brow height at rest are part of a person's
  face shape, not of an expression, and two people at rest should count as covered.
* Each component is divided by a fixed scale (`SCALES`, about half the spread of the
  very expressive d6 video), so that one unit is a just-visible change of that component,
  and distances are Euclidean in these units. ε = 1.5 (`DEFAULT_EPS`) therefore allows
  two components to be off by one unit each, or one component by 1.5 units.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from synthswap.faces.measure import ATTRIBUTE_NAMES, attribute_matrix
# Units (fractions of the inter-ocular distance; degrees for yaw and pitch) in which a
# change of 1 is just visible in a 128 px crop. About half the standard deviation of each
# component over the 1008 frames of videos/people/d6.mp4 (exaggerated expressions).
SCALES = np.array([0.08, 0.05, 0.025, 0.02, 0.02, 0.03, 7.0, 7.0], np.float64)
DEFAULT_EPS = 1.5


def neutral(attrs: np.ndarray, synthetic: np.ndarray | None = None) -> np.ndarray:
    """The centre a faceset is measured from: the median of its real rows (all rows if none)."""
    attrs = np.asarray(attrs, np.float64)
    if synthetic is not None and (~np.asarray(synthetic, bool)).any():
        attrs = attrs[~np.asarray(synthetic, bool)]
    return np.median(attrs, axis=0)


def normalise(attrs: np.ndarray, centre: np.ndarray) -> np.ndarray:
    return (np.asarray(attrs, np.float64) - centre) / SCALES


# Query rows at a time x pool rows, in float64: each distance block stays about 32 MB (a block of 2,048
# query rows against a 10,000-face pool took three 164 MB temporaries, most of `coverage`'s memory).
BLOCK_ELEMENTS = 2**22


def nearest_distances(query: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """For each row of `query`, the Euclidean distance to its nearest row of `pool`."""
    if len(pool) == 0:
        return np.full(len(query), np.inf)
    out = np.empty(len(query))
    pool_sq = (pool**2).sum(1)
    chunk = max(1, BLOCK_ELEMENTS // len(pool))
    for start in range(0, len(query), chunk):
        q = query[start:start + chunk]
        d2 = (q**2).sum(1)[:, None] + pool_sq[None, :] - 2 * q @ pool.T
        out[start:start + chunk] = np.sqrt(np.maximum(d2.min(1), 0))
    return out


@dataclass
class CoverageResult:
    coverage: float  # fraction of destination frames with a training face within eps
    eps: float
    n_destination: int
    n_training: int
    median_distance: float  # median nearest-neighbour distance, in scale units
    per_attribute: dict[str, float]  # coverage when only that component is compared (|diff| <= eps)

    def to_dict(self) -> dict:
        return asdict(self)


def coverage_arrays(dest: np.ndarray, train: np.ndarray, dest_centre: np.ndarray, train_centre: np.ndarray,
                    eps: float = DEFAULT_EPS) -> CoverageResult:
    """Coverage from raw (N, 8) attribute arrays and the centres to measure them from."""
    if eps <= 0:
        raise ValueError(f"eps must be positive, not {eps}")
    d = normalise(dest, dest_centre)
    t = normalise(train, train_centre)
    dist = nearest_distances(d, t)
    per = {}
    for i, name in enumerate(ATTRIBUTE_NAMES):
        one = nearest_distances(d[:, i:i + 1], t[:, i:i + 1])
        per[name] = float((one <= eps).mean()) if len(d) else 0.0
    return CoverageResult(
        coverage=float((dist <= eps).mean()) if len(d) else 0.0, eps=float(eps), n_destination=len(d),
        n_training=len(t), median_distance=float(np.median(dist)) if len(d) else float("nan"), per_attribute=per,
    )


def coverage(destination, training, eps: float = DEFAULT_EPS) -> CoverageResult:
    """Coverage of a destination faceset by one training faceset or a list of them (e.g. real + synthetic).

    The training centre is the neutral face of its real rows, so adding synthetic faces
    never moves the reference the real photos define.
    """
    sets = training if isinstance(training, (list, tuple)) else [training]
    train = np.concatenate([attribute_matrix(fs) for fs in sets]) if sets else np.zeros((0, len(SCALES)))
    synthetic = np.concatenate([fs.synthetic() for fs in sets]) if sets else np.zeros(0, bool)
    dest = attribute_matrix(destination)
    if len(dest) == 0:
        raise ValueError(f"{destination.root}: the destination faceset has no faces")
    if len(train) == 0:
        raise ValueError("the training faceset(s) have no faces")
    dest_synth = destination.synthetic()
    return coverage_arrays(dest, train, neutral(dest, dest_synth), neutral(train, synthetic), eps)
