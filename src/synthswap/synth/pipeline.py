"""`synthesize`: many images of the subject with varied expressions, as an ordinary faceset.

An engine proposes candidate images, each aimed at a target expression-and-pose vector:
the GAN engine moves the subject's inversion pivots along the fitted directions in W, the
warp engine warps the subject's real photos. Every candidate then goes through the same
analysis as `extract` (it must be found as a face; it is aligned, measured and embedded)
and is kept only when its SFace cosine to the subject's real photos reaches
`min_identity`. Kept faces are written as synthetic rows with their edit metadata.

Targets live in the subject's own frame: a destination (or reference) vector is taken
relative to that set's neutral face and added to the subject's neutral face, so that a
destination's wide-open mouth asks for the subject's mouth open as wide, not for the
destination's face shape.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from synthswap.atomic import write_json as atomic_write_json
from synthswap.extract import CROP_SIZES
from synthswap.faces.align import SHARP_RESAMPLE, template_info
from synthswap.faces.dlib_identity import DlibIdentityModel
from synthswap.faces.identity import cosine
from synthswap.faces.measure import ATTRIBUTE_NAMES, attribute_matrix, attribute_vector
from synthswap.faces.pipeline import FaceAnalyzer
from synthswap.faceset import FacesetWriter
from synthswap.metrics.coverage import SCALES, coverage_arrays, nearest_distances, neutral, normalise
from synthswap.synth.base import SynthError, SynthOptions, open_faceset
from synthswap.synth.engines import ENGINES
from synthswap.training import atomic_save_tensors

REPORT_FILE = "synthesis.json"
LATENTS_FILE = "latents.safetensors"


@dataclass
class SynthSummary:
    out: str
    engine: str
    requested: int
    accepted: int
    attempts: int
    no_face: int
    below_identity: int
    blurred: int  # found and identity-checked, but below the realism gate's sharpness
    acceptance_rate: float  # accepted / attempts
    min_identity: float
    identity_accepted: dict[str, float]  # cosine to the subject's real photos, kept images
    identity_all: dict[str, float]  # the same over every candidate found as a face
    identity_accepted_dlib: dict[str, float]  # dlib distance of kept images to the real photos (the judge)
    spread_real: float  # RMS over attributes of std / scale, the subject's real photos
    spread_synthetic: float  # the same for the kept synthetic faces
    coverage: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _stats(x: list[float]) -> dict[str, float]:
    if not x:
        return {"n": 0}
    a = np.asarray(x, np.float64)
    return {"n": len(a), "mean": round(float(a.mean()), 4), "median": round(float(np.median(a)), 4),
            "p10": round(float(np.percentile(a, 10)), 4), "min": round(float(a.min()), 4),
            "max": round(float(a.max()), 4)}


def spread(attrs: np.ndarray) -> float:
    """How varied a set of faces is: RMS over the 8 attributes of their std in coverage units."""
    if len(attrs) < 2:
        return 0.0
    return float(np.sqrt(np.mean((np.asarray(attrs).std(0) / SCALES) ** 2)))


class TargetSampler:
    """Target attribute vectors (8, ATTRIBUTE_NAMES order) in the subject's frame.

    `pool` holds reference vectors (destination frames, or the GAN's training faces)
    relative to their own neutral face. With `priority` set (a boolean per pool row), those
    rows come first, in random order, before the rest: with --match these are the
    destination frames that the real photos do not cover yet.
    """

    def __init__(self, subject_neutral: np.ndarray, pool: np.ndarray, rng: np.random.Generator,
                 priority: np.ndarray | None = None):
        self.subject_neutral = subject_neutral
        self.pool = pool
        self.rng = rng
        self.priority = priority
        self._queue: list[int] = []

    def _refill(self) -> None:
        order = self.rng.permutation(len(self.pool))
        if self.priority is not None:
            first = [i for i in order if self.priority[i]]
            rest = [i for i in order if not self.priority[i]]
            order = np.array(first + rest, int)
            self.priority = None  # after one pass every frame is equally wanted
        self._queue = list(order)

    def __call__(self) -> np.ndarray:
        if not self._queue:
            self._refill()
        return self.subject_neutral + self.pool[self._queue.pop(0)]


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SynthError(f"{out}: exists and is not empty; synthesize writes a new faceset, choose another --out")


def reference_sharpness(engine, analyzer: FaceAnalyzer, log: Callable[[str], None], limit: int = 20) -> float:
    """The median sharpness of the engine's own renders of the subject's photos, analysed as candidates
    are (`Engine.reference_images`): what the realism gate's --min-sharpness is a fraction of. Against
    the photos' stored sharpness, 795 of 800 warps of d9's photos read as blurred, and every render of
    a 64 px GAN (its pivots included) would."""
    images = engine.reference_images(limit)
    values = [a.sharpness for a in (analyzer.analyze(img) for img in images) if a is not None]
    if not values:  # not one reference render is found as a face: fall back on the stored values
        log("none of the engine's renders of the photos is found as a face; the realism gate uses the "
            "photos' stored sharpness")
        values = [f.sharpness for f in engine.subject.faces]
    return float(np.median(values))


def synthesize(opts: SynthOptions, log: Callable[[str], None] = print) -> SynthSummary:
    """Run the engine until `n` faces pass the filters or `max_attempts` candidates were tried."""
    t0 = time.perf_counter()
    if opts.n < 1:
        raise SynthError("--n must be at least 1")
    if opts.size is not None and not CROP_SIZES[0] <= opts.size <= CROP_SIZES[1]:
        raise SynthError(f"--size must be between {CROP_SIZES[0]} and {CROP_SIZES[1]}, not {opts.size}")
    if opts.min_sharpness < 0 or opts.identity_steps < 0:
        raise SynthError("--min-sharpness and --identity-steps must not be negative")
    if opts.engine not in ENGINES:
        raise SynthError(f"unknown engine '{opts.engine}' ({', '.join(ENGINES)})")
    out = Path(opts.out)
    _check_out(out)
    rng = np.random.default_rng(opts.seed)
    torch.manual_seed(opts.seed)

    # Everything is opened and checked before the first file is written.
    engine = ENGINES[opts.engine].create(opts)
    subject = engine.subject
    if len(subject) == 0:
        raise SynthError(f"{subject.root}: the subject faceset has no faces")
    real_attrs = attribute_matrix(subject)
    real_ids = subject.identities()
    if real_ids.ndim != 2 or real_ids.shape[1] == 0:
        raise SynthError(f"{subject.root}: faces have no identity embeddings; re-extract them")
    centroid = real_ids.mean(0)
    centroid /= np.linalg.norm(centroid)
    subject_neutral = neutral(real_attrs)
    dest = open_faceset(opts.match, "destination") if opts.match else None
    report_dest = dest or (open_faceset(opts.coverage_of, "destination") if opts.coverage_of else None)
    size = opts.size or subject.size

    if dest is not None:
        dest_attrs = attribute_matrix(dest)
        dest_neutral = neutral(dest_attrs)
        pool = dest_attrs - dest_neutral
        # Destination frames the real photos already cover are asked for last.
        covered = nearest_distances(normalise(dest_attrs, dest_neutral),
                                    normalise(real_attrs, subject_neutral)) <= opts.eps
        sampler = TargetSampler(subject_neutral, pool, rng, priority=~covered)
        log(f"aiming at {len(dest)} destination frames ({covered.mean():.1%} already covered by the real photos)")
    else:
        pool = engine.default_targets(rng)
        sampler = TargetSampler(subject_neutral, pool, rng)

    max_attempts = opts.max_attempts or 4 * opts.n
    # Candidates are re-aligned at about their own size: bilinearly that would blur them (align.SHARP_RESAMPLE).
    analyzer = FaceAnalyzer(size, with_identity=True, resample=SHARP_RESAMPLE)
    counts = {"attempts": 0, "no_face": 0, "below": 0, "blurred": 0}
    min_sharpness = opts.min_sharpness * reference_sharpness(engine, analyzer, log)
    judge = DlibIdentityModel()  # reported, never used to choose: dlib stays the independent judge
    subject_dlib = np.mean([judge.embed(subject.read_image(f), f.landmarks_array()) for f in subject.faces[:20]], 0)
    dlib_kept: list[float] = []
    cos_all: list[float] = []
    cos_kept: list[float] = []
    kept_attrs: list[np.ndarray] = []
    latents: dict[str, np.ndarray] = {}
    progress = None
    if opts.progress:
        progress = tqdm(total=opts.n, desc=f"synthesize ({opts.engine})", unit="face")
    try:
        with FacesetWriter(out, size, template_info()) as writer:
            while writer.added < opts.n and counts["attempts"] < max_attempts:
                batch = min(opts.batch, max_attempts - counts["attempts"])
                targets = np.stack([sampler() for _ in range(batch)])
                for cand, target in zip(engine.propose(targets, rng, opts.strength), targets):
                    if writer.added >= opts.n:
                        break
                    counts["attempts"] += 1
                    face = analyzer.analyze(cand.image)
                    if face is None:
                        counts["no_face"] += 1
                        continue
                    cos = float(cosine(face.identity, centroid))
                    cos_all.append(cos)
                    if cos < opts.min_identity:
                        counts["below"] += 1
                        continue
                    if face.sharpness < min_sharpness:
                        counts["blurred"] += 1
                        continue
                    n = counts["attempts"] - 1
                    meta = dict(cand.meta, engine=opts.engine, identity_cosine=round(cos, 4),
                                target={k: round(float(v), 4) for k, v in zip(ATTRIBUTE_NAMES, target)})
                    row = writer.add(face.crop, face.mask, source=f"synthetic:{opts.engine}:{cand.source_id}:{n}",
                                     frame_index=n, time_s=0.0, **face.record(), synthetic=True, meta=meta)
                    cos_kept.append(cos)
                    dlib_kept.append(float(np.linalg.norm(judge.embed(face.crop, face.landmarks_crop) - subject_dlib)))
                    kept_attrs.append(attribute_vector(face.expression, face.pose))
                    if cand.latent is not None and row is not None:
                        latents[row.id] = cand.latent
                    if progress is not None:
                        progress.update(1)
    finally:
        if progress is not None:
            progress.close()
        analyzer.close()

    if writer.added == 0:
        raise SynthError(
            f"no candidate passed the filters in {counts['attempts']} attempts ({counts['no_face']} not found as a "
            f"face, {counts['below']} below identity {opts.min_identity}, {counts['blurred']} blurred); nothing was "
            f"written"
        )
    if latents:
        atomic_save_tensors({k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in latents.items()},
                            out / LATENTS_FILE, {"what": "W+ latent of each synthetic face, keyed by face id"})
    kept = np.array(kept_attrs)
    summary = SynthSummary(
        out=str(out), engine=opts.engine, requested=opts.n, accepted=writer.added, attempts=counts["attempts"],
        no_face=counts["no_face"], below_identity=counts["below"], blurred=counts["blurred"],
        acceptance_rate=round(writer.added / max(counts["attempts"], 1), 4), min_identity=opts.min_identity,
        identity_accepted=_stats(cos_kept), identity_all=_stats(cos_all), identity_accepted_dlib=_stats(dlib_kept),
        spread_real=round(spread(real_attrs), 4), spread_synthetic=round(spread(kept), 4),
    )
    if report_dest is not None:
        d_attrs = attribute_matrix(report_dest)
        d_neutral = neutral(d_attrs)
        both = np.concatenate([real_attrs, kept])
        summary.coverage = {
            "destination": str(report_dest.root), "eps": opts.eps,
            "real": coverage_arrays(d_attrs, real_attrs, d_neutral, subject_neutral, opts.eps).coverage,
            "synthetic": coverage_arrays(d_attrs, kept, d_neutral, subject_neutral, opts.eps).coverage,
            "real+synthetic": coverage_arrays(d_attrs, both, d_neutral, subject_neutral, opts.eps).coverage,
        }
    summary.seconds = round(time.perf_counter() - t0, 1)
    report = summary.to_dict()
    report["options"] = {k: v for k, v in asdict(opts).items() if k != "progress"}
    report["subject"] = str(subject.root)
    atomic_write_json(out / REPORT_FILE, report)
    return summary


def format_summary(s: SynthSummary) -> str:
    lines = [
        f"{s.accepted}/{s.requested} synthetic faces written to {s.out} ({s.engine} engine, {s.seconds:.0f} s)",
        f"acceptance {s.acceptance_rate:.1%} of {s.attempts} candidates: {s.no_face} not found as a face, "
        f"{s.below_identity} below identity {s.min_identity:.3f}, {s.blurred} blurred",
        f"identity cosine of kept faces: mean {s.identity_accepted.get('mean', float('nan')):.3f}, "
        f"p10 {s.identity_accepted.get('p10', float('nan')):.3f}; all found faces: mean "
        f"{s.identity_all.get('mean', float('nan')):.3f}; dlib distance of kept faces (the judge, same person below "
        f"0.6): mean {s.identity_accepted_dlib.get('mean', float('nan')):.3f}",
        f"expression spread: real photos {s.spread_real:.2f}, synthetic {s.spread_synthetic:.2f}",
    ]
    if s.coverage:
        c = s.coverage
        lines.append(f"coverage of {c['destination']} (eps {c['eps']}): real {c['real']:.1%}, synthetic "
                     f"{c['synthetic']:.1%}, real+synthetic {c['real+synthetic']:.1%}")
    return "\n".join(lines)
