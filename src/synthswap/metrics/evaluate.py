"""How good is a swapped video? Identity, leakage, expression, pose, realism, stability, coverage.

The output video and the destination (source) video are read in lockstep; every frame
of both is analysed with the extraction code, so the numbers here mean the same thing as
the numbers in a faceset.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from synthswap import atomic
from synthswap.faces.dlib_identity import SAME_PERSON_DISTANCE, DlibIdentityModel
from synthswap.faces.identity import SAME_PERSON_COSINE
from synthswap.faces.landmarks import eye_centres
from synthswap.faces.measure import EXPRESSION_NAMES, sharpness
from synthswap.faces.pipeline import AnalyzedFace, FaceAnalyzer
from synthswap.faceset import Faceset
from synthswap.media import iter_video_frames, probe_video
from synthswap.metrics.fid import InceptionFeatures, fid_kid
from synthswap.options import option

# A face counts as swapped when the output differs from the source by more than this
# mean absolute grey level inside the source's face mask (H.264 re-encoding alone stays ~1-2).
SWAPPED_MIN_DIFFERENCE = 6.0
# FID's reference: at most this many of the subject's faces, spread evenly (Inception reads about 50 a second
# on 2 cores: 20,000 faces took over 400 s; the output's side is a few hundred frames anyway).
MAX_FID_REFERENCE = 2000
HALF_SIZE = 64  # px: sharpness_ratio_half compares the faces on copies half the size of sharpness's own (128)


class EvaluateError(Exception):
    """The videos or facesets cannot be compared."""


@dataclass
class FrameMetrics:
    index: int
    source_face: bool
    output_face: bool
    swapped: bool = False
    id_subject: float | None = None  # SFace cosine of the output face to the subject
    id_destination: float | None = None  # ... to the destination face in the same source frame
    dlib_subject: float | None = None  # dlib L2 distance to the subject's mean descriptor
    dlib_destination: float | None = None
    sharpness_ratio: float | None = None  # output face's sharpness / the source face's, same box (a blur fools identity)
    sharpness_ratio_half: float | None = None  # the same on 64 px copies: detail that survives a 2x downscale
    expression_error: float | None = None  # L2 between output and source expression vectors
    pose_error: float | None = None  # mean |yaw, pitch, roll| difference, degrees
    landmark_motion_output: float | None = None  # mean landmark change from the previous frame / IOD
    landmark_motion_source: float | None = None
    pixel_motion_output: float | None = None  # mean abs change in the face box from the previous frame
    pixel_motion_source: float | None = None


@dataclass
class Evaluation:
    video: str
    source: str
    subject: str
    frames: list[FrameMetrics] = field(default_factory=list)
    fid: dict[str, float] | None = None
    fid_reference: str | None = None

    def summary(self) -> dict[str, Any]:
        def mean(key: str, rows=None) -> float | None:
            vals = [getattr(f, key) for f in (rows if rows is not None else self.frames)]
            vals = [v for v in vals if v is not None]
            return float(np.mean(vals)) if vals else None

        def median(key: str, rows: list[FrameMetrics]) -> float | None:
            vals = [getattr(f, key) for f in rows if getattr(f, key) is not None]
            return float(np.median(vals)) if vals else None

        with_source = [f for f in self.frames if f.source_face]
        swapped = [f for f in with_source if f.swapped]
        # Identity, expression and pose over every frame where both faces were found, so an
        # unswapped or partly swapped video still gets comparable numbers (swap_rate says which).
        both = [f for f in self.frames if f.id_subject is not None]
        dlib_rows = [f for f in both if f.dlib_subject is not None]
        out = {
            "frames": len(self.frames),
            "frames_with_source_face": len(with_source),
            "frames_with_both_faces": len(both),
            "swap_rate": len(swapped) / len(with_source) if with_source else 0.0,
            "identity_to_subject": mean("id_subject", both),
            "identity_to_destination": mean("id_destination", both),
            "subject_closer_rate": float(np.mean([f.id_subject > f.id_destination for f in both])) if both else None,
            "subject_match_rate": (float(np.mean([f.id_subject >= SAME_PERSON_COSINE for f in both]))
                                   if both else None),
            "dlib_distance_to_subject": mean("dlib_subject", dlib_rows),
            "dlib_distance_to_destination": mean("dlib_destination", dlib_rows),
            "dlib_subject_match_rate": (float(np.mean([f.dlib_subject < SAME_PERSON_DISTANCE for f in dlib_rows]))
                                        if dlib_rows else None),
            # The headline judge (dlib is never a training signal): frames closer to the subject than
            # to the destination face they replaced.
            "dlib_subject_closer_rate": (float(np.mean([f.dlib_subject < f.dlib_destination for f in dlib_rows]))
                                         if dlib_rows else None),
            "sharpness_ratio": median("sharpness_ratio", swapped),
            # At half the size: real detail survives a 2x downscale, added grain and sharpening halos do not.
            "sharpness_ratio_half": median("sharpness_ratio_half", swapped),
            "expression_error": mean("expression_error", both),
            "pose_error_deg": mean("pose_error", both),
            "landmark_jitter_output": mean("landmark_motion_output"),
            "landmark_jitter_source": mean("landmark_motion_source"),
            "pixel_jitter_output": mean("pixel_motion_output"),
            "pixel_jitter_source": mean("pixel_motion_source"),
        }
        for kind in ("landmark", "pixel"):
            o, s = out[f"{kind}_jitter_output"], out[f"{kind}_jitter_source"]
            out[f"{kind}_jitter_ratio"] = o / s if o is not None and s else None
        if self.fid is not None:
            out["fid"] = self.fid["fid"]
            out["kid"] = self.fid["kid"]
            out["fid_reference"] = self.fid_reference
        return out

    def to_json(self) -> dict[str, Any]:
        return {"video": self.video, "source": self.source, "subject": self.subject,
                "summary": self.summary(), "frames": [vars(f) for f in self.frames]}

    def to_markdown(self) -> str:
        s = self.summary()
        lines = [f"# Evaluation of {Path(self.video).name}", "",
                 f"destination: `{self.source}`; subject faceset: `{self.subject}`", "",
                 "| metric | value |", "| --- | ---: |"]
        for key, value in s.items():
            if isinstance(value, float):
                value = f"{value:.4f}"
            lines.append(f"| {key} | {value} |")
        lines += ["", METRIC_NOTES]
        return "\n".join(lines) + "\n"

    def write(self, out_prefix: str | os.PathLike) -> tuple[Path, Path]:
        """`PREFIX.json` and `PREFIX.md` (`output_paths`), each written atomically."""
        paths = output_paths(out_prefix)
        paths[0].parent.mkdir(parents=True, exist_ok=True)
        for path, text in zip(paths, (json.dumps(self.to_json(), indent=1), self.to_markdown())):
            atomic.write_text(path, text)
        return paths


METRIC_NOTES = f"""Identity, the judge: dlib's ResNet (never a training signal) L2 distance of output faces to the
subject's mean descriptor (same person below {SAME_PERSON_DISTANCE}) and the share of frames it puts closer to
the subject than to the destination face of the same frame (dlib_subject_closer_rate). Beside it SFace
cosine (same person above {SAME_PERSON_COSINE}; SFace can be a training signal, so it may flatter) to the
subject's mean embedding and to the destination face (identity leakage). Sharpness ratio: variance of the
Laplacian of the output face over the source face's, same box, same frame (a blur can fool identity
networks; median over swapped frames); sharpness_ratio_half: the same on copies half the size, which
keeps the detail that survives a 2x downscale and drops added grain and sharpening halos. Expression
error: L2 distance between the 6-D expression vectors of output and source faces; pose error: mean
absolute yaw/pitch/roll difference in degrees. Jitter: mean frame-to-frame landmark motion (over the
inter-ocular distance) and pixel change in the face box, output against source (ratio 1 = as stable as
the source). FID/KID: Inception features of aligned output faces against real faces of the subject.
A frame counts as swapped when the output differs from the source by more than
{SWAPPED_MIN_DIFFERENCE} grey levels inside the face mask."""


def _mean_unit(vectors: np.ndarray) -> np.ndarray:
    v = vectors.mean(0)
    return v / (np.linalg.norm(v) + 1e-12)


def _face_box(face: AnalyzedFace, shape: tuple[int, ...]) -> tuple[slice, slice]:
    lo = np.maximum(np.floor(face.landmarks_frame[:, :2].min(0)).astype(int), 0)
    hi = np.minimum(np.ceil(face.landmarks_frame[:, :2].max(0)).astype(int), [shape[1], shape[0]])
    return slice(lo[1], hi[1]), slice(lo[0], hi[0])


def _landmark_motion(face: AnalyzedFace, previous: AnalyzedFace | None) -> float | None:
    if previous is None:
        return None
    iod = float(np.linalg.norm(np.subtract(*eye_centres(face.landmarks_frame))))
    step = np.linalg.norm(face.landmarks_frame[:, :2] - previous.landmarks_frame[:, :2], axis=1).mean()
    return float(step / iod)


@dataclass(kw_only=True)
class EvaluateOptions:
    """`evaluate`'s settings (the videos, facesets and --out are paths, given apart)."""

    max_frames: int | None = option(None, "evaluate the first N frames only", minimum=1, metavar="N")
    dlib_every: int = option(5, "run the slower dlib judge on every N-th frame; 0 turns it off", minimum=0,
                             metavar="N")
    fid: bool = option(True, "skip FID/KID", flag="no-fid")


def output_paths(out_prefix: str | os.PathLike) -> tuple[Path, Path]:
    """PREFIX.json and PREFIX.md. A dot in the prefix is part of its name (`eval_v1.2` gives
    `eval_v1.2.json`, not `eval_v1.json`); a prefix given as NAME.json or NAME.md stands for NAME."""
    prefix = Path(out_prefix)
    if prefix.suffix in (".json", ".md"):
        prefix = prefix.with_suffix("")
    return prefix.with_name(prefix.name + ".json"), prefix.with_name(prefix.name + ".md")


def evaluate(
    video: str | os.PathLike,
    source: str | os.PathLike,
    subject: str | os.PathLike,
    holdout: str | os.PathLike | None = None,
    max_frames: int | None = None,
    dlib_every: int = 5,
    fid: bool = True,
    progress: bool = True,
) -> Evaluation:
    """Compare a swapped video with its source frame by frame; see METRIC_NOTES."""
    out_info, src_info = probe_video(video), probe_video(source)
    # An odd-sized source is written one edge row/column larger (H.264 4:2:0 stores even sizes): cropped back here.
    padded = (src_info.width + src_info.width % 2, src_info.height + src_info.height % 2)
    if (out_info.width, out_info.height) not in ((src_info.width, src_info.height), padded):
        raise EvaluateError(f"{video} is {out_info.width}x{out_info.height} but {source} is "
                            f"{src_info.width}x{src_info.height}: not a swap of that video")
    if out_info.frame_count and src_info.frame_count and out_info.frame_count != src_info.frame_count and (
            max_frames is None or min(out_info.frame_count, src_info.frame_count) < max_frames):
        raise EvaluateError(f"{video} has {out_info.frame_count} frames but {source} has {src_info.frame_count}: "
                            f"not a swap of that video (give --max-frames N to compare the first N only)")
    subject_set = Faceset.open(subject)
    if len(subject_set) == 0:
        raise EvaluateError(f"{subject}: the subject faceset is empty")
    subject_sface = _mean_unit(subject_set.identities())
    dlib_model = DlibIdentityModel() if dlib_every > 0 else None
    subject_dlib = None
    if dlib_model is not None:
        picks = subject_set.faces[:: max(1, len(subject_set) // 20)][:20]
        subject_dlib = np.mean([dlib_model.embed(subject_set.read_image(f), f.landmarks_array()) for f in picks], 0)
    reference_set = Faceset.open(holdout) if holdout is not None else subject_set

    result = Evaluation(str(video), str(source), str(subject))
    out_analyzer = FaceAnalyzer(size=reference_set.size)
    src_analyzer = FaceAnalyzer(size=reference_set.size)
    fid_features = _StreamingFeatures() if fid else None  # Inception features of swapped crops, batch by batch
    prev: dict[str, Any] = {"out": None, "src": None, "out_bgr": None, "src_bgr": None}
    total = min(out_info.frame_count or 0, max_frames or 10**9) or None
    pairs = zip(iter_video_frames(video, max_frames=max_frames), iter_video_frames(source, max_frames=max_frames))
    count = 0
    try:
        for out_frame, src_frame in tqdm(pairs, total=total, desc="evaluate", unit="frame", disable=not progress):
            count += 1
            out_frame.bgr = out_frame.bgr[:src_info.height, :src_info.width]
            o = out_analyzer.analyze(out_frame.bgr, track=True)
            s = src_analyzer.analyze(src_frame.bgr, track=True)
            m = FrameMetrics(out_frame.index, source_face=s is not None, output_face=o is not None)
            if s is not None:
                region = s.mask > 127
                src_crop = s.crop.astype(np.float32)
                out_crop = cv2.warpAffine(out_frame.bgr, s.affine, (s.crop.shape[1], s.crop.shape[0]),
                                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                m.swapped = float(np.abs(out_crop.astype(np.float32) - src_crop)[region].mean()) > SWAPPED_MIN_DIFFERENCE
                m.sharpness_ratio = sharpness(out_crop, s.mask) / max(sharpness(s.crop, s.mask), 1e-6)
                m.sharpness_ratio_half = (sharpness(out_crop, s.mask, HALF_SIZE)
                                          / max(sharpness(s.crop, s.mask, HALF_SIZE), 1e-6))
            if o is not None and s is not None:
                m.id_subject = float(o.identity @ subject_sface)
                m.id_destination = float(o.identity @ s.identity)
                m.expression_error = float(np.linalg.norm(
                    [o.expression[k] - s.expression[k] for k in EXPRESSION_NAMES]))
                m.pose_error = float(np.mean([abs(o.pose[k] - s.pose[k]) for k in ("yaw", "pitch", "roll")]))
                if dlib_model is not None and (count - 1) % dlib_every == 0:
                    d_out = dlib_model.embed(out_frame.bgr, o.landmarks_frame)
                    m.dlib_subject = float(np.linalg.norm(d_out - subject_dlib))
                    m.dlib_destination = float(np.linalg.norm(d_out - dlib_model.embed(src_frame.bgr, s.landmarks_frame)))
                if m.swapped and fid_features is not None:
                    fid_features.add(o.crop)
            for key, face, bgr in (("out", o, out_frame.bgr), ("src", s, src_frame.bgr)):
                if face is not None:
                    motion = _landmark_motion(face, prev[key])
                    pixel = None
                    if prev[key] is not None:
                        rows, cols = _face_box(face, bgr.shape)
                        pixel = float(np.abs(bgr[rows, cols].astype(np.int16) - prev[f"{key}_bgr"][rows, cols]).mean())
                    name = "output" if key == "out" else "source"
                    setattr(m, f"landmark_motion_{name}", motion)
                    setattr(m, f"pixel_motion_{name}", pixel)
                prev[key], prev[f"{key}_bgr"] = face, bgr
            result.frames.append(m)
    finally:
        out_analyzer.close()
        src_analyzer.close()
    if count == 0:
        raise EvaluateError(f"{video}: no frames to evaluate")
    if fid_features is not None and fid_features.count >= 2 and len(reference_set) >= 2:
        reference = _StreamingFeatures(fid_features.net)
        faces = reference_set.faces[::-(-len(reference_set) // MAX_FID_REFERENCE)]
        for face in tqdm(faces, desc="evaluate: FID reference faces", unit="face", disable=not progress):
            reference.add(reference_set.read_image(face))
        result.fid = fid_kid(fid_features.result(), reference.result())
        result.fid_reference = str(reference_set.root)
    return result


class _StreamingFeatures:
    """Inception features of BGR crops added one at a time, computed in batches, so memory stays
    flat however long the video is (the crops themselves are not kept)."""

    BATCH = 64

    def __init__(self, net: InceptionFeatures | None = None):
        self._net = net
        self._pending: list[np.ndarray] = []
        self._features: list[np.ndarray] = []
        self.count = 0

    @property
    def net(self) -> InceptionFeatures:
        if self._net is None:  # loaded on first use: a video with no swapped face never needs it
            self._net = InceptionFeatures()
        return self._net

    def add(self, bgr: np.ndarray) -> None:
        self._pending.append(np.ascontiguousarray(bgr[:, :, ::-1]))
        self.count += 1
        if len(self._pending) >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            batch = torch.from_numpy(np.stack(self._pending)).permute(0, 3, 1, 2).contiguous()
            self._features.append(self.net(batch))
            self._pending = []

    def result(self) -> np.ndarray:
        self._flush()
        return np.concatenate(self._features)
