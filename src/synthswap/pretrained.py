"""The pretrained models that ship inside the package, checked before use.

    synthswap/weights/
      MODEL_CARD.md            data and its licence, commands, steps, device, quality, sha256
      swap_df64/               the swap model pretrained on a face corpus (`synthswap pretrain`),
        model.json             fp16 weights only; `swap train --init shipped` starts from it
        model.safetensors
      swap_df128/              the same at 128 px (in shards of at most 16 MB), where a 128 px (or
        model.json             256 px) model starts from: `--init shipped --resolution 128`
        model.safetensors, model-2.safetensors, model-3.safetensors
      gan_utk64/               the generic GAN prior (`gan train` on the same corpus);
        gan.json               `run` inverts the subject into it unless --gan names another
        checkpoint.safetensors
      enhance_utk/             the generic face enhancer (`synthswap enhance train`; synthswap.enhance)
        model.json
        model.safetensors

Every file's sha256 is recorded here and checked when the model is first asked for, so a
truncated or altered file gives one clear error naming it and the command that rebuilds it,
instead of a model that silently produces garbage.
"""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path


WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED_NAME = "shipped"  # what --gan / --swap-init accept to mean the model in the package


CORPUS_HELDOUT = 1000  # the corpus photos no shipped model trained on


def corpus_heldout(corpus: Path, n: int) -> list[Path]:
    """The first `n` of the corpus photos every shipped model left out: its file names sorted, shuffled
    with random.Random(0), the last CORPUS_HELDOUT (the model cards' split)."""
    names = sorted(os.listdir(corpus))
    random.Random(0).shuffle(names)
    return [corpus / name for name in names[-CORPUS_HELDOUT:][:n]]


class PretrainedError(Exception):
    """A shipped model file that is missing or does not match its recorded sha256."""


@dataclass(frozen=True)
class ShippedModel:
    folder: str  # under WEIGHTS_DIR
    sha256: dict[str, str]  # file name -> sha256 of its bytes
    rebuild: str  # the command that makes the folder again (see MODEL_CARD.md)
    resolution: int | None = None  # a swap model's face size, px

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.folder


REBUILD = "see src/synthswap/weights/MODEL_CARD.md (synthswap pretrain / gan train, then synthswap export-weights)"
SHIPPED: dict[str, ShippedModel] = {
    "swap": ShippedModel("swap_df64", {
        "model.json": "63d3fd30c1c7be7842bf2356fb9c2578dfcf7093639faadcc0c9dc12b6086a50",
        "model.safetensors": "f7b3e1c97d59ecbef97dd6c92301c183ac65e0f478543bcec174651561dac551",
    }, REBUILD, resolution=64),
    "swap128": ShippedModel("swap_df128", {  # the same architecture at 128 px, in three shards
        "model.json": "91439eec930ac38cf6af161fd1f4ee7feb7b6c8877603b5cafbb738f17896df6",
        "model.safetensors": "d757203a026bd51fd35795562dceb36bf27fea95c7bce342dc886d3dcce7e3bb",
        "model-2.safetensors": "836f25fcdfd51372b34eec5cf2f71a21a0e21b05f033a140d2cbc4cb951bce8d",
        "model-3.safetensors": "11c249baa776123fc04d5909e4f4f6600f6a9a30e94b0b6d29e8bc417841ef1f",
    }, "see src/synthswap/weights/swap_df128/MODEL_CARD.md (swap train --init shipped --resolution 128 on the "
       "corpus, then synthswap export-weights)", resolution=128),
    "gan": ShippedModel("gan_utk64", {
        "gan.json": "b7ce86133f2a741e6613793afb6a016eec0f7c805b1334cec7d515b73b2e2a44",
        "checkpoint.safetensors": "c12f2049b0f1c44332d2633b5544f2e96e39196151a84da38a6cf00df50a53b9",
    }, REBUILD),
    "enhance": ShippedModel("enhance_utk", {  # the face enhancer (synthswap.enhance)
        "model.json": "e046634df09dd711456b71a20fdc2174fa43ea2e4efa6c0f1527ccaf30c0c30a",
        "model.safetensors": "3ace05fab6f268f371c8e4b432921509d9913db0270ab7c57567692a23000d84",
    }, "see src/synthswap/weights/enhance_utk/MODEL_CARD.md (synthswap enhance train, then enhance export)"),
}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@cache
def shipped_model(kind: str) -> Path:
    """The folder of the shipped model `kind` ("swap" or "gan"), after checking every file's sha256."""
    if kind not in SHIPPED:
        raise PretrainedError(f"this synthswap ships no pretrained {kind} model")
    model = SHIPPED[kind]
    for name, digest in model.sha256.items():
        path = model.path / name
        if not path.is_file():
            raise PretrainedError(f"{path}: shipped {kind} model file is missing (reinstall synthswap, or rebuild "
                                  f"it with: {model.rebuild})")
        actual = file_sha256(path)
        if actual != digest:
            raise PretrainedError(f"{path}: shipped {kind} model file is corrupt (sha256 {actual[:12]}..., expected "
                                  f"{digest[:12]}...; reinstall synthswap, or rebuild it with: {model.rebuild})")
    return model.path


def shipped_swap_kind(resolution: int | None) -> str:
    """The shipped swap model a `resolution` px model starts from: the largest whose size divides it
    (it is grown to that size when smaller), the 64 px one when no size is asked for."""
    fits = [(model.resolution, kind) for kind, model in SHIPPED.items()  # only swap models have a resolution
            if model.resolution and resolution and resolution % model.resolution == 0]
    return max(fits)[1] if fits else "swap"


def resolve_model(value: str | None, kind: str, resolution: int | None = None) -> str | None:
    """A --gan / --swap-init value as a folder: 'shipped' is the checked shipped model (for a swap
    model, the one for `resolution`: shipped_swap_kind), None stays None."""
    if value == SHIPPED_NAME:
        return str(shipped_model(shipped_swap_kind(resolution) if kind == "swap" else kind))
    return value


MAX_SHIPPED_BYTES = 16_000_000  # per file (16 MB), so the package stays small; larger weights ship in shards


def shipped_digests(out: Path, files: list[str], smaller: str) -> dict[str, str]:
    """sha256 of each exported file in `out`, after checking it is no larger than a shipped file may
    be; PretrainedError otherwise, saying what to make `smaller` (every exporter's one check)."""
    digests = {}
    for name in files:
        size = (out / name).stat().st_size
        if size > MAX_SHIPPED_BYTES:
            raise PretrainedError(f"{out / name}: {size / 1e6:.1f} MB, over the {MAX_SHIPPED_BYTES / 1e6:.0f} MB a "
                                  f"shipped file may have; use {smaller}")
        digests[name] = file_sha256(out / name)
    return digests
