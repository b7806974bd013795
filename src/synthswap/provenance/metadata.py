"""Container metadata that says an output is synthetic: MP4/MOV/MKV tags and PNG tEXt chunks.

The same keys in both (readable with PyAV's `container.metadata`, `ffprobe -show_format`,
`exiftool`, PIL's `Image.text`):

    synthetic                    "true"
    description                  a sentence a person reads: AI-generated face swap, by synthswap
    generator                    "synthswap 0.1.0"
    creation_time                ISO 8601, UTC
    synthswap_run_id             the 3 bytes the watermark carries, in hex
    synthswap_watermark          "on", "off (--no-watermark)" or "off (frames under 128 px)"
    synthswap_swap_model_sha256  sha256 of the swap model's weights file (model.safetensors)
    synthswap_gan_sha256         sha256 of the GAN prior's checkpoint, where one made training faces
    synthswap_source_sha256      sha256 of the destination video (or image) the faces were put into
"""

from __future__ import annotations

import datetime
import hashlib
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av
from PIL import Image, UnidentifiedImageError

from synthswap import __version__
from synthswap.media import MediaError, is_image, is_video
from synthswap.pngtext import png_with_text  # noqa: F401 - re-exported (callers of metadata.png_with_text)

TOOL = "synthswap"
WATERMARK_ON = "on"
WATERMARK_OPTED_OUT = "off (--no-watermark)"
WATERMARK_TOO_SMALL = "off (frames under 128 px)"
DESCRIPTION = "AI-generated face swap (synthetic media) made by synthswap"


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def new_run_id() -> bytes:
    from synthswap.provenance.watermark import RUN_ID_BYTES

    return secrets.token_bytes(RUN_ID_BYTES)


@dataclass
class ProvenanceRecord:
    """What an output says about itself, in every layer."""

    run_id: str  # hex
    watermark: str  # WATERMARK_ON, WATERMARK_OPTED_OUT or WATERMARK_TOO_SMALL
    swap_model_sha256: str | None = None
    gan_sha256: str | None = None
    source_sha256: str | None = None
    created: str = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc)
                         .isoformat(timespec="seconds").replace("+00:00", "Z"))
    tool: str = TOOL
    version: str = __version__

    def tags(self) -> dict[str, str]:
        tags = {
            "synthetic": "true",
            "description": DESCRIPTION,
            "generator": f"{self.tool} {self.version}",
            "creation_time": self.created,
            "synthswap_run_id": self.run_id,
            "synthswap_watermark": self.watermark,
        }
        for key in ("swap_model_sha256", "gan_sha256", "source_sha256"):
            value = getattr(self, key)
            if value:
                tags[f"synthswap_{key}"] = value
        return tags

    def to_dict(self) -> dict:
        return asdict(self)


def synthetic_image_tags(source: str) -> dict[str, str]:
    """Tags of an image synthswap generated itself (a synthetic faceset's faces), which no run id,
    watermark or model hash describes."""
    return {"synthetic": "true", "description": "AI-generated face image (synthetic) made by synthswap",
            "generator": f"{TOOL} {__version__}", "synthswap_source": source}


def read_tags(path: str | os.PathLike) -> dict[str, str]:
    """The file's container tags (video) or text chunks (image); MediaError if it is unreadable."""
    path = Path(path)
    if is_image(path):
        try:
            with Image.open(path) as img:
                img.verify()  # a truncated or corrupt file fails here
            with Image.open(path) as img:
                return {str(k): str(v) for k, v in getattr(img, "text", {}).items()}
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise MediaError(f"{path}: not a readable image ({exc})") from exc
    if not is_video(path):
        raise MediaError(f"{path}: not an image or video synthswap reads (extension {path.suffix or 'none'})")
    try:
        with av.open(str(path)) as container:
            return dict(container.metadata)
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: not a readable video ({exc})") from exc


def says_synthetic(tags: dict[str, str]) -> bool:
    return tags.get("synthetic", "").lower() == "true" and tags.get("generator", "").startswith(TOOL)
