"""Converting a destination video (B) into one with the subject's face (A).

Per frame: detect and landmark B's face with the extraction code, smooth the landmarks
over time (One-Euro), align the crop from the smoothed landmarks, decode it as A
(B->A), bring it to the size the face has in the frame (`FaceSwapper.place_size`), match the
colours to B's face there, build the paste mask there (learned and/or landmark oval, eroded
and feathered), warp face and mask back into the frame 1:1, and blend (feathered alpha, or
OpenCV's seamlessClone followed by the feathered alpha). Frames are streamed in
and out (decoded a few ahead and encoded a few behind, on threads), so memory does not grow with
the video's length.

Every output says it is synthetic (synthswap.provenance): container tags or PNG text, an
invisible watermark in every frame (unless `watermark=False`, which the tags then record),
and for MP4/MOV a signed C2PA manifest.
"""

from __future__ import annotations

import functools
import os
import sys
import time
import urllib.parse
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from synthswap import atomic
from synthswap.extract import ExtractError, face_selection
from synthswap.faceset import FacesetError
from synthswap.faces.align import invert_affine, side_in_frame, warp_to_crop
from synthswap.faces.choice import LARGEST, face_option, parse_face
from synthswap.faces.mask import face_mask, mouth_opening_mask
from synthswap.faces.pipeline import FaceAnalyzer
from synthswap.media import (MediaError, VideoWriter, is_image, iter_video_frames, probe_video, read_image,
                             write_png)
from synthswap.options import option
from synthswap.overlap import Behind, read_ahead
from synthswap.provenance import manifest, watermark
from synthswap.provenance.metadata import (WATERMARK_ON, WATERMARK_OPTED_OUT, WATERMARK_TOO_SMALL, ProvenanceRecord,
                                           file_sha256, new_run_id)
from synthswap.swap.color import COLOR_MODES, transfer
from synthswap.swap.smoothing import OneEuroFilter
from synthswap.swap.loading import CHECKPOINT_FILE, load_model, swap_crop
from synthswap.swap.photo_detail import PhotoDetail
from synthswap.precision import resolve_precision
from synthswap.training import CheckpointError, resolve_device

BLEND_MODES = ("alpha", "seamless")
# How the swapped face is resampled into the frame. It is composed at its size there, so this warp
# is a sub-pixel shift and a small rotation at 1:1, where bilinear interpolation is a low-pass filter.
FACE_RESAMPLE = cv2.INTER_CUBIC
MASK_MODES = ("learned", "landmarks", "both")
KEEP_MOUTH_HELP = ("draw the mouth's opening with the swap model instead of keeping the destination's own (its "
                   "teeth and tongue, inside the lips' inner edge; docs/swap.md)")


@dataclass
class ConvertOptions:
    color: str = option("rct", "colour transfer to B's skin: rct (Reinhard in LAB), hist (histogram matching) "
                               "or none", choices=COLOR_MODES)
    blend: str = option("alpha", "alpha: feathered mask; seamless: OpenCV seamlessClone (Poisson) then the "
                                 "feathered mask", choices=BLEND_MODES)
    mask: str = option("both", "mask to paste with: the model's mask head, the landmark face oval, or their product",
                       choices=MASK_MODES)
    # Pixels of the model's face size (scaled with the face where it is placed larger).
    erode: float = option(2.0, "shrink the mask by this many pixels of the model's face size", minimum=0)
    blur: float = option(6.0, "feather the mask edge over this many face pixels", minimum=0)
    # The largest size (px) the face is composed at before it is put into the frame: the size it has in
    # the frame, so colour transfer, mask feathering and blending happen there, not at the model's size.
    max_place_size: int = option(512, "the largest size the face is composed at before it goes into the frame (its "
                                      "size in the frame, up to this)", minimum=1, metavar="PX")
    # The face enhancer that brings the swapped face to that size (an enhancer folder, 'shipped', or None
    # for bicubic enlargement): synthswap.enhance, fine-tuned on the subject by `run`.
    enhancer: str | None = option(None, "restore the swapped face's detail at the size it has in the frame with "
                                        "this face enhancer (a `synthswap enhance train` folder, e.g. fine-tuned on "
                                        "the subject, or 'shipped'); default: enlarge it by bicubic interpolation",
                                  metavar="ENHANCER_DIR")
    # The destination's own mouth opening (teeth, tongue) stays: the subject's few photos rarely show
    # one open, and the swap draws what it never saw as a dark blob.
    keep_mouth: bool = option(True, KEEP_MOUTH_HELP, flag="no-keep-mouth")
    # The swapped face's detail above this band taken from the subject's photo warped to each frame's
    # face (swap/photo_detail.py); 0: the model's own detail throughout.
    photo_detail: int = option(0, "take the swapped face's detail above PX from the subject's own photo (the one "
                                  "nearest in expression, warped to the frame's face; the swap model's "
                                  "facesets must still be where it was trained), keeping the model's face below "
                                  "PX; 0: the model's own detail (docs/swap.md)", minimum=0, metavar="PX")
    smooth_min_cutoff: float = option(1.0, "One-Euro landmark smoothing min cutoff in Hz; lower = steadier, 0 = off",
                                      minimum=0, flag="smooth")
    smooth_beta: float = 0.05
    device: str = "auto"
    precision: str = "auto"  # the model's forward pass: bf16 where faster (synthswap.precision)
    progress: bool = True
    max_frames: int | None = option(None, "convert only the first N frames (for a quick look)", minimum=1)
    crf: int = option(18, "H.264 quality, lower is better", minimum=0, maximum=51, metavar="0-51")
    # The invisible watermark in every frame; off only by an explicit opt-out.
    watermark: bool = option(True, "do not put the invisible watermark in the frames (an explicit opt-out: the "
                                   "output's metadata and manifest still say it is synthetic, and record that the "
                                   "watermark is off)", flag="no-watermark")
    # The GAN prior whose synthetic faces trained the model: its hash is recorded.
    gan: str | None = option(None, "the GAN prior whose synthetic faces trained the model: its sha256 goes into the "
                                   "metadata", metavar="GAN_DIR")
    key_dir: str | None = option(None, "folder of the C2PA signing key, made on first use (default: "
                                       "$SYNTHSWAP_KEY_DIR or ~/.config/synthswap/signing)", metavar="DIR")
    face: str = face_option("to replace")
    # The user's own certificate chain and key (PEM) to sign with instead of the local key.
    sign_cert: str | None = option(None, "sign the C2PA manifest with this certificate chain (yours, e.g. a "
                                         "studio's) instead of the local key; needs --sign-key", metavar="PEM")
    sign_key: str | None = option(None, "the private key (EC P-256, unencrypted PEM) of --sign-cert", metavar="PEM")
    tsa_url: str | None = option(None, "an RFC 3161 time-stamp authority that dates the manifest's signature (needs "
                                       "its network; should it fail, the manifest is signed without a time-stamp "
                                       "and the summary says why)", metavar="URL")

    def validate(self) -> None:
        if self.color not in COLOR_MODES:
            raise ValueError(f"unknown colour transfer '{self.color}'")
        if self.blend not in BLEND_MODES:
            raise ValueError(f"unknown blend mode '{self.blend}'")
        if self.mask not in MASK_MODES:
            raise ValueError(f"unknown mask mode '{self.mask}'")
        if self.erode < 0 or self.blur < 0 or self.smooth_min_cutoff < 0:
            raise ValueError("--erode, --blur and --smooth must not be negative")
        if self.max_place_size < 16:
            raise ValueError(f"max_place_size must be at least 16, not {self.max_place_size}")
        parse_face(self.face)
        if self.tsa_url is not None:
            url = urllib.parse.urlsplit(self.tsa_url)
            if url.scheme not in ("http", "https") or not url.netloc:
                raise ValueError(f"--tsa-url must be an http:// or https:// address, not '{self.tsa_url}'")


class FaceSwapper:
    """Holds the model, the face analyser and the landmark filter; `process(frame, t)`."""

    def __init__(self, model_dir: str | os.PathLike, opts: ConvertOptions):
        opts.validate()
        self.opts = opts
        self.device = resolve_device(opts.device)
        self.precision = resolve_precision(opts.precision, self.device)
        self.enhancer = None
        if opts.enhancer is not None:
            from synthswap.enhance import EnhanceError, load_enhancer  # only where it is used

            try:
                self.enhancer = load_enhancer(opts.enhancer, self.device)
            except EnhanceError as exc:
                raise CheckpointError(f"--enhancer: {exc}") from exc
        self.model, self.meta = load_model(model_dir, self.device)
        self.model = self.model.to(memory_format=torch.channels_last)
        self.size = self.model.config.resolution
        self.photo_detail = None
        if opts.photo_detail:
            if self.size % opts.photo_detail:
                raise ValueError(f"--photo-detail {opts.photo_detail}: the band must divide the model's face size "
                                 f"({self.size} px), e.g. {self.size // 16}")
            try:
                self.photo_detail = PhotoDetail.from_model(self.meta, self.size, opts.photo_detail)
            except FacesetError as exc:
                raise CheckpointError(f"--photo-detail needs the facesets the model was trained on: {exc}") from exc
        # A photo picks the person by identity (checked in every frame); otherwise the chosen face is followed.
        try:
            reference, choice = face_selection(opts.face)
        except ExtractError as exc:
            raise ValueError(f"--face: {exc}") from exc
        self.analyzer = FaceAnalyzer(self.size, with_identity=False, reference=reference, choice=choice)
        self.frames_with_several_faces = 0
        self.filter = OneEuroFilter(opts.smooth_min_cutoff, opts.smooth_beta) if opts.smooth_min_cutoff > 0 else None
        self.faces_swapped = 0
        # The last frame's face zone, frame-sized 0-1: the swap crop's whole footprint, feathered (None: no
        # face). The watermark stays out of it: FaceMesh reads the face from about this much context.
        self.face_zone: np.ndarray | None = None
        self.frames_without_face = 0
        self.seamless_fallbacks = 0

    def close(self) -> None:
        self.analyzer.close()

    def _enlarge(self, face: np.ndarray, size: int) -> np.ndarray:
        """The swapped face (float BGR 0..1) at `size` px: restored by the enhancer, or bicubic."""
        if self.enhancer is None:
            return cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1)
        from synthswap.enhance import enhance_faces

        face8 = np.clip(face * 255 + 0.5, 0, 255).astype(np.uint8)
        return enhance_faces(self.enhancer, [face8], size, precision=self.precision)[0].astype(np.float32) / 255.0

    def place_size(self, affine: np.ndarray) -> int:
        """The size (px) the face is composed at: its size in the frame (the crop's side over the
        alignment's scale), rounded up to a multiple of 16, at least the model's, at most
        `max_place_size`."""
        in_frame = side_in_frame(affine, self.size)
        return int(min(max(self.size, -(-in_frame // 16) * 16), max(self.size, self.opts.max_place_size)))

    def _paste_mask(self, learned: np.ndarray, landmark_mask: np.ndarray) -> np.ndarray:
        """The feathered paste mask at the size of `landmark_mask` (the placement size); erode and blur
        are given in pixels of the model's face, so they scale with it."""
        px = landmark_mask.shape[0] / self.size
        oval = landmark_mask.astype(np.float32) / 255.0
        if self.opts.mask == "learned":
            mask = learned
        elif self.opts.mask == "landmarks":
            mask = oval
        else:
            mask = learned * oval
        mask = (mask > 0.5).astype(np.float32)
        if self.opts.erode >= 1:
            k = int(round(self.opts.erode * px)) * 2 + 1
            mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        if self.opts.blur > 0:
            mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=self.opts.blur * px / 2)
            # Pull the feathered edge inside the mask so no B skin shows beyond the oval.
            mask = np.clip(mask * 2 - 1, 0, 1) if self.opts.blur >= 2 else mask
        return mask

    def process(self, bgr: np.ndarray, time_s: float, video: bool = False) -> tuple[np.ndarray, bool]:
        """The swapped frame (a new array) and whether a face was found; unchanged otherwise.
        In a `video`, the face is tracked from the previous frame's landmarks and the detector runs
        only every few frames (as in extraction); separate images are each detected."""
        face = self.analyzer.analyze(bgr, track=video)
        self.frames_with_several_faces += self.analyzer.faces_in_frame > 1
        self.face_zone = None
        if face is None:
            self.frames_without_face += 1
            if self.filter is not None:
                self.filter.reset()
            if self.photo_detail is not None:
                self.photo_detail.reset()
            return bgr, False
        if self.filter is not None:
            landmarks = self.filter(face.landmarks_frame, time_s)
            face = self.analyzer.from_landmarks(bgr, landmarks.astype(np.float32), face.detection_score)
        generated, learned = swap_crop(self.model, face.crop, self.device, self.precision)
        if self.photo_detail is not None:
            if not video:
                self.photo_detail.reset()  # separate images: each picks its own photo
            generated = self.photo_detail(generated, face.landmarks_crop)
        # Composed at the face's size in the frame: the destination's crop, its oval and the swapped face
        # (enlarged by bicubic interpolation) all at that size, then warped into the frame 1:1.
        place = self.place_size(face.affine)
        affine, crop, oval = face.affine, face.crop, face.mask
        if place != self.size:
            affine = face.affine * (place / self.size)
            crop = warp_to_crop(bgr, affine, place)
            oval = face_mask(face.landmarks_crop * (place / self.size), place)
            generated = self._enlarge(generated, place)
            learned = cv2.resize(learned, (place, place), interpolation=cv2.INTER_LINEAR)
        mask = self._paste_mask(learned, oval)
        generated = transfer(self.opts.color, generated, crop.astype(np.float32) / 255.0, mask)
        if self.opts.keep_mouth:
            generated = self._keep_mouth(generated, crop, face.landmarks_crop * (place / self.size))
        out = self._blend(bgr, generated, mask, affine)
        self.faces_swapped += 1
        return out, True

    def _keep_mouth(self, generated: np.ndarray, crop: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """`generated` (float BGR 0..1, at the placement size) with the destination crop's own mouth
        opening put back, widened by a pixel of the model's face and feathered over one."""
        px = crop.shape[0] / self.size
        opening = mouth_opening_mask(landmarks, crop.shape[0])
        if not opening.any():
            return generated
        k = 2 * max(1, round(px)) + 1
        opening = cv2.dilate(opening, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        weight = cv2.GaussianBlur(opening.astype(np.float32) / 255.0, (0, 0), px)[..., None]
        return generated * (1 - weight) + (crop.astype(np.float32) / 255.0) * weight

    def _blend(self, frame: np.ndarray, face: np.ndarray, mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        side = face.shape[0]
        inv = invert_affine(affine)
        # Warp only the frame region the crop covers (a few hundred pixels, not the frame).
        corners = np.array([[0, 0], [side, 0], [0, side], [side, side]], np.float64)
        pts = corners @ inv[:, :2].T + inv[:, 2]
        x0, y0 = np.floor(pts.min(0)).astype(int) - 1
        x1, y1 = np.ceil(pts.max(0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        out = frame.copy()
        if x1 - x0 < 2 or y1 - y0 < 2:
            return out
        roi_inv = inv.copy()
        roi_inv[:, 2] -= (x0, y0)
        size = (x1 - x0, y1 - y0)
        face_roi = cv2.warpAffine(face, roi_inv, size, flags=FACE_RESAMPLE, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.warpAffine(mask, roi_inv, size, flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
        dst = frame[y0:y1, x0:x1].astype(np.float32) / 255.0
        if self.opts.blend == "seamless":
            face_roi = self._seamless(face_roi, frame[y0:y1, x0:x1], alpha[..., 0])
        blended = face_roi * alpha + dst * (1.0 - alpha)
        out[y0:y1, x0:x1] = np.clip(blended * 255 + 0.5, 0, 255).astype(np.uint8)
        footprint = cv2.warpAffine(np.ones((side, side), np.float32), roi_inv, size, flags=cv2.INTER_LINEAR)
        feather = max(3, self.size // 16) | 1  # the face zone's edge, as the model's size always set it
        self.face_zone = np.zeros((h, w), np.float32)
        self.face_zone[y0:y1, x0:x1] = cv2.GaussianBlur(footprint, (feather, feather), 0)
        return out

    def _seamless(self, face_roi: np.ndarray, dst_roi: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """Poisson blending of the face into the ROI; the feathered alpha is applied after it."""
        binary = (alpha > 0.05).astype(np.uint8) * 255
        binary[[0, -1], :] = 0  # seamlessClone needs the mask clear of the border
        binary[:, [0, -1]] = 0
        ys, xs = np.nonzero(binary)
        if len(xs) < 16:
            return face_roi
        bx, by, bw, bh = cv2.boundingRect(np.stack([xs, ys], 1).astype(np.int32))
        center = (bx + bw // 2, by + bh // 2)
        src8 = np.clip(face_roi * 255 + 0.5, 0, 255).astype(np.uint8)
        try:
            cloned = cv2.seamlessClone(src8, np.ascontiguousarray(dst_roi), binary, center, cv2.NORMAL_CLONE)
        except cv2.error:
            self.seamless_fallbacks += 1
            return face_roi
        return cloned.astype(np.float32) / 255.0

    def summary(self) -> dict[str, Any]:
        return {"faces_swapped": self.faces_swapped, "frames_without_face": self.frames_without_face,
                "seamless_fallbacks": self.seamless_fallbacks, "face": self.opts.face,
                "frames_with_several_faces": self.frames_with_several_faces}

    def warn_if_unchosen(self) -> None:
        """Say so when other people were in the picture and the default choice made the decision."""
        if self.frames_with_several_faces and self.opts.face == LARGEST:
            print(f"warning: {self.frames_with_several_faces} frames show more than one face; the largest at the "
                  f"start was swapped and followed. Choose the person with --face N (from the left) or --face PHOTO",
                  file=sys.stderr)


FACE_WATERMARK_WEIGHT = 0.35  # the watermark's amplitude in the face zone, relative to the rest of the frame
MAX_BOOST = 1.5  # the most the rest of the frame's amplitude is raised to make up for the face zone
GAN_FILES = ("checkpoint.safetensors", "generator.safetensors")  # a `gan train` folder, or an inversion's


def provenance_record(model_dir: str | os.PathLike, source: str | os.PathLike | None,
                      opts: ConvertOptions, frame_shape: tuple[int, int] | None = None) -> ProvenanceRecord:
    """What the output will say about itself: a new run id and the hashes of what made it."""
    mark = WATERMARK_OPTED_OUT if not opts.watermark else (
        WATERMARK_TOO_SMALL if frame_shape and not watermark.can_mark(frame_shape) else WATERMARK_ON)
    gan_sha = None
    if opts.gan:
        gan_file = next((Path(opts.gan) / f for f in GAN_FILES if (Path(opts.gan) / f).is_file()), None)
        gan_sha = file_sha256(gan_file) if gan_file else None
    return ProvenanceRecord(run_id=new_run_id().hex(), watermark=mark,
                            swap_model_sha256=file_sha256(Path(model_dir) / CHECKPOINT_FILE),
                            gan_sha256=gan_sha, source_sha256=file_sha256(source) if source else None)


def _mark(bgr: np.ndarray, record: ProvenanceRecord, face_zone: np.ndarray | None = None, index: int = 0,
          rms: float | None = None) -> np.ndarray:
    """The watermarked frame (frame `index` of a video; `rms`: the mark's budget, see `watermark.embed`),
    fainter in the face zone (`face_zone`), where its grain would perturb face landmarks and
    expression (docs/benchmarks.md, "Does the watermark change what evaluate measures?")."""
    if record.watermark != WATERMARK_OPTED_OUT and watermark.can_mark(bgr.shape):
        weight = None
        if face_zone is not None:
            # The rest of the frame carries more, so the mark's energy stays about what it was: on a
            # close-up the face zone is half the frame, and the run id would not survive CRF 28.
            boost = min(MAX_BOOST, 1.0 / np.sqrt(max(1.0 - float(face_zone.mean()), 1e-6)))
            weight = boost * (1.0 - (1.0 - FACE_WATERMARK_WEIGHT) * face_zone)
        return watermark.embed(bgr, bytes.fromhex(record.run_id), weight, index, rms)
    return bgr


def _sign(out: Path, record: ProvenanceRecord, source: Path | None, opts: ConvertOptions) -> str:
    """Attach the C2PA manifest; what happened, for the summary (a failure does not lose the video)."""
    if out.suffix.lower() not in manifest.FORMATS:
        return f"not attached: {out.suffix} cannot carry a C2PA manifest (MP4, MOV and PNG can; C2PA defines no MKV binding)"
    try:
        unstamped = manifest.sign(out, record, source, opts.key_dir, opts.sign_cert, opts.sign_key, opts.tsa_url)
    except manifest.ManifestError as exc:
        return f"not attached: {exc}"
    signed = f"signed with {opts.sign_cert}" if opts.sign_cert else f"signed with the key in {manifest.key_dir(opts.key_dir)}"
    if opts.tsa_url:
        signed += f"; {unstamped}" if unstamped else f"; time-stamped by {opts.tsa_url}"
    return signed


def convert_video(model_dir: str | os.PathLike, video: str | os.PathLike, out: str | os.PathLike,
                  opts: ConvertOptions | None = None) -> dict[str, Any]:
    """Write `out` (H.264): the source as players show it (upright, each frame at its own
    timestamp, so a variable frame rate stays in sync with the sound), its size (an odd one gets
    one repeated edge row/column), and every audio and subtitle stream the container can hold;
    the summary lists what was dropped and why."""
    opts = opts or ConvertOptions()
    video, out = Path(video), Path(out)
    if out.resolve() == video.resolve():
        raise ValueError("--out must differ from --video")
    if out.suffix.lower() not in (".mp4", ".mov", ".mkv"):
        raise ValueError(f"{out}: the output must be an .mp4, .mov or .mkv file")
    info = probe_video(video)
    swapper = FaceSwapper(model_dir, opts)  # raises CheckpointError before any output exists
    record = provenance_record(model_dir, video, opts, (info.height, info.width))
    t0 = time.monotonic()
    frames = 0
    last_time = 0.0
    total = opts.max_frames or info.frame_count or None
    try:
        # Decoding runs ahead and watermarking behind the face pipeline, each on a thread of its own, so the
        # cores overlap them with the model (OpenCV, numpy and FFmpeg release the GIL). Encoding stays on
        # this thread: x264 writes different (valid) bits for the same frames on another thread.
        with VideoWriter(out, info.width, info.height, info.fps, audio_source=video, crf=opts.crf,
                         metadata=record.tags()) as writer, \
                tqdm(total=total, unit="frame", desc="swap convert", disable=not opts.progress) as bar, \
                Behind(depth=2, name="watermark") as marking:
            for frame in read_ahead(iter_video_frames(video, max_frames=opts.max_frames)):
                result, _ = swapper.process(frame.bgr, frame.time_s, video=True)
                mark = functools.partial(_mark, result, record, swapper.face_zone, frame.index)
                for marked, time_s in marking.submit(mark, frame.time_s):
                    writer.write(marked, time_s)
                frames += 1
                last_time = frame.time_s
                bar.update(1)
            for marked, time_s in marking.drain():
                writer.write(marked, time_s)
            # A cut video (--max-frames) keeps the sound up to its last frame only: the file must not outlast its picture.
            if opts.max_frames is not None and frames >= opts.max_frames:
                writer.audio_until_s = last_time + 1.0 / float(info.fps)
    finally:
        swapper.close()
    swapper.warn_if_unchosen()
    signed = _sign(out, record, video, opts)
    seconds = time.monotonic() - t0
    return {"out": str(out), "frames": frames, **swapper.summary(), "seconds": round(seconds, 2),
            "frames_per_s": round(frames / seconds, 2) if seconds > 0 else 0.0,
            "fps": str(info.fps), "width": info.width, "height": info.height,
            "encoded_size": f"{writer.coded_size[0]}x{writer.coded_size[1]}", "rotation_applied": info.rotation * 90,
            "mirror_applied": info.mirrored,
            "audio_copied": any("(audio " in s for s in writer.streams_copied),
            "streams_copied": writer.streams_copied, "streams_dropped": writer.streams_dropped,
            "provenance": {**record.to_dict(), "manifest": signed}, "options": asdict(opts)}


IMAGES_INFO = "convert.json"  # marks a folder `convert_images` wrote, which a later conversion may write again


def convert_images(model_dir: str | os.PathLike, folder: str | os.PathLike, out: str | os.PathLike,
                   opts: ConvertOptions | None = None, fps: float = 25.0) -> dict[str, Any]:
    """Swap every image of `folder` (sorted by name, treated as a sequence at `fps` for the
    landmark smoothing) into `out`/<name>.png; each file is written atomically."""
    opts = opts or ConvertOptions()
    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise MediaError(f"{folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_image(p))
    if not files:
        raise MediaError(f"{folder}: holds no images")
    if out.resolve() == folder.resolve():
        raise ValueError("--out must be another folder than --images")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: is a file; give a folder for the swapped images")
    if out.is_dir() and not (out / IMAGES_INFO).is_file() and any(out.iterdir()):
        # Its files could share names with the frames': never replace what this command did not write.
        raise ValueError(f"--out {out}: exists, holds other files and was not written by `synthswap swap convert`; "
                         f"choose a new or empty folder")
    if opts.max_frames is not None:
        files = files[: opts.max_frames]
    swapper = FaceSwapper(model_dir, opts)
    record = provenance_record(model_dir, None, opts)  # one run id for the whole sequence
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(out / IMAGES_INFO, {"images": str(folder.resolve()), "model": str(Path(model_dir).resolve()),
                                          "frames": len(files), "options": asdict(opts)})
    t0 = time.monotonic()
    signed: dict[str, int] = {}  # what happened to each image's manifest -> how many images
    try:
        for i, path in enumerate(tqdm(files, unit="image", desc="swap convert", disable=not opts.progress)):
            result, _ = swapper.process(read_image(path), i / fps)
            image_record = replace(record, source_sha256=file_sha256(path))  # each image names its own source
            png = out / f"{path.stem}.png"
            write_png(png, _mark(result, record, swapper.face_zone, rms=watermark.STILL_MAX_RMS), text=image_record.tags())
            outcome = _sign(png, image_record, path, opts)
            signed[outcome] = signed.get(outcome, 0) + 1
    finally:
        swapper.close()
    swapper.warn_if_unchosen()
    seconds = time.monotonic() - t0
    return {"out": str(out), "frames": len(files), **swapper.summary(), "seconds": round(seconds, 2),
            "frames_per_s": round(len(files) / seconds, 2) if seconds > 0 else 0.0,
            "provenance": {**record.to_dict(), "manifest": "; ".join(f"{n} images: {what}" for what, n in signed.items())},
            "options": asdict(opts)}
