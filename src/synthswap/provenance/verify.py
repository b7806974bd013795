"""`synthswap verify`: which provenance layers a file carries, and a one-line verdict."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from synthswap.media import (MediaError, accepted_formats, check_file, check_image_size, is_image, is_video,
                             iter_video_frames, probe_video, read_image)
from synthswap.provenance import manifest, metadata, watermark


@dataclass
class Verification:
    path: str
    tags: dict[str, str]
    watermark: watermark.Detection
    manifest: manifest.ManifestCheck
    # With --manifests DIR: the files there whose manifest binds this watermark's run id, and whether
    # a lookup was made at all (a run id is needed for it).
    bound: list[tuple[str, manifest.ManifestCheck]] = field(default_factory=list)
    looked_up: str | None = None

    @property
    def metadata_found(self) -> bool:
        return metadata.says_synthetic(self.tags)

    @property
    def layers(self) -> list[str]:
        found = []
        if self.metadata_found:
            found.append("metadata")
        if self.watermark.found:
            found.append("watermark")
        if self.manifest.status != "absent":
            found.append("manifest" if self.manifest.status == "valid" else "manifest (invalid)")
        return found

    @property
    def marked(self) -> bool:
        return bool(self.layers)

    def verdict(self) -> str:
        if not self.marked:
            return "no synthswap mark found: no metadata, watermark or manifest says this file is synthetic"
        text = f"SYNTHETIC: made by synthswap ({', '.join(self.layers)})"
        if self.manifest.status == "invalid":
            text += "; its manifest does not verify: the file was changed after signing"
        off = self.tags.get("synthswap_watermark", "")
        if off.startswith("off") and not self.watermark.found:
            text += f"; watermark {off}"
        if self.bound:
            text += f"; its manifest: {self.bound[0][0]}"
        return text

    def lines(self) -> list[str]:
        t = self.tags
        if self.metadata_found:
            parts = [t.get("generator", ""), t.get("creation_time", ""), f"run {t.get('synthswap_run_id', '?')}",
                     f"watermark {t.get('synthswap_watermark', '?')}",
                     f"swap model sha256 {t.get('synthswap_swap_model_sha256', '-')[:16]}",
                     f"GAN sha256 {t.get('synthswap_gan_sha256', '-')[:16]}"]
            meta = "found: synthetic=true, " + ", ".join(parts)
        else:
            meta = "not found"
        w = self.watermark
        if w.found:
            payload = f"run {w.run_id}" if w.run_id else "run id unreadable"
            wm = (f"found: synthswap marker, {payload}; confidence {w.confidence:.0%} of {w.frames} frames "
                  f"decode alone, marker z = {w.z:.1f} (threshold {watermark.Z_FOUND})"
                  + (f", at {w.scale:g}x the marked size" if w.scale and w.scale != 1.0 else "")
                  + (f", turned {w.angle:+g} degrees" if w.angle else "") + (", mirrored" if w.mirrored else "")
                  + (f", in a perspective (a filmed screen: {_keystone_text(w.keystone)})" if w.keystone else ""))
            if w.run_id and t.get("synthswap_run_id") and t["synthswap_run_id"] != w.run_id:
                wm += f" (the metadata says run {t['synthswap_run_id']})"
        else:
            wm = f"not found (marker z = {w.z:.1f}, threshold {watermark.Z_FOUND}; {w.frames} frames read)"
        m = self.manifest
        if m.status == "absent":
            man = "not found" + (f" ({m.detail})" if m.detail else "")
        else:
            man = (f"{m.status}: {m.detail}; generator {m.generator or '?'}, "
                   f"{'AI-generated (trainedAlgorithmicMedia)' if m.ai_generated else 'no AI-generated assertion'}")
        lines = [self.path, f"  metadata:  {meta}", f"  watermark: {wm}", f"  manifest:  {man}"]
        if self.looked_up is not None:
            if not self.bound:
                found = (f"none in {self.looked_up} binds run {w.run_id}" if w.run_id
                         else "no lookup: the watermark's run id was not read")
            else:
                found = "; ".join(f"{p} ({c.status}, {c.signer_kind}, signer {c.signer or '?'})" for p, c in self.bound)
            lines.append(f"  bound:     {found}")
        return lines + [f"  verdict:   {self.verdict()}"]

    def to_dict(self) -> dict:
        return {"path": self.path, "marked": self.marked, "layers": self.layers, "verdict": self.verdict(),
                "metadata": self.tags, "watermark": self.watermark.to_dict(), "manifest": self.manifest.to_dict(),
                "bound_manifests": [{"path": p, **c.to_dict()} for p, c in self.bound]}


def _keystone_text(keystone: tuple[float, float]) -> str:
    """`Geometry.keystone` in words: which edge of the picture the perspective narrowed, and by how much."""
    top, left = keystone
    edges = []
    if top:
        edges.append(f"top edge {top:.1%} narrower" if top > 0 else f"bottom edge {-top:.1%} narrower")
    if left:
        edges.append(f"left edge {left:.1%} shorter" if left > 0 else f"right edge {-left:.1%} shorter")
    return ", ".join(edges)


def read_planes(path: Path, max_frames: int) -> tuple[list, list[int]]:
    """Luma planes of up to `max_frames` frames spread over the video (all of it, when shorter; more of a
    picture smaller than 480 x 480, by `watermark.frames_to_read`), and their frame indices (the
    watermark's sign follows the index)."""
    info = probe_video(path)
    max_frames = watermark.frames_to_read(info.width, info.height, max_frames)
    every_n = max(1, info.frame_count // max_frames) if info.frame_count else 1
    frames = list(iter_video_frames(path, every_n=every_n, max_frames=max_frames))
    return [watermark.luma(f.bgr) for f in frames], [f.index for f in frames]


def verify_file(path: str | os.PathLike, max_frames: int = 120, key_dir: str | None = None,
                manifests: str | os.PathLike | None = None) -> Verification:
    """Check one file for every layer; MediaError for a missing, empty, corrupt or truncated file.
    With `manifests` (a folder, e.g. `run`'s work folders), also the manifests there that bind the
    watermark's run id (C2PA soft binding): where a stripped copy comes from."""
    path = Path(path)
    check_file(path)
    if not (is_image(path) or is_video(path)):
        raise MediaError(f"{path}: not an image or video (extension {path.suffix or 'none'}); accepted: "
                         f"{accepted_formats()}")
    # The pixel limit, from the header, before anything is decoded (a few KB of PNG can declare gigapixels).
    check_image_size(path) if is_image(path) else probe_video(path)
    tags = metadata.read_tags(path)
    planes, indices = ([watermark.luma(read_image(path))], [0]) if is_image(path) else read_planes(path, max_frames)
    result = Verification(str(path), tags, watermark.detect(planes, indices=indices), manifest.check(path, key_dir))
    if manifests is not None:
        result.looked_up = str(manifests)
        if result.watermark.run_id:
            result.bound = [(str(p), c) for p, c in manifest.find_by_run_id(result.watermark.run_id, manifests)
                            if p.resolve() != path.resolve()]
    return result
