"""An enhancer on disk, loaded, exported, and applied to aligned face crops.

    MODEL_DIR/
      model.json              config, steps, data, history (what `enhance train` did)
      checkpoint.safetensors  weights and optimizer state (training; resumable)
      model.safetensors       fp16 weights only (an exported copy, e.g. the shipped one)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from synthswap import atomic
from synthswap.enhance.degrade import upscale
from synthswap.enhance.network import EnhanceConfig, EnhanceNet
from synthswap.info import read_info_json
from synthswap.precision import Precision
from synthswap.pretrained import MAX_SHIPPED_BYTES, PretrainedError, shipped_digests, shipped_model
from synthswap.training import CheckpointError, atomic_save_tensors, autocast, load_checkpoint

MODEL_JSON = "model.json"
CHECKPOINT = "checkpoint.safetensors"
WEIGHTS = "model.safetensors"
MAX_SIZE = 1024  # the largest face size asked for; 256 is what a 1080p frame needs
SHIPPED_NAME = "shipped"


class EnhanceError(Exception):
    """A model folder or a request the enhancer cannot serve."""


def read_model_json(model_dir: str | os.PathLike) -> dict:
    return read_info_json(Path(model_dir) / MODEL_JSON, EnhanceError,
                          f"not an enhancer folder (no {MODEL_JSON}; make one with `synthswap enhance train`)")


def load_enhancer(model_dir: str | os.PathLike = SHIPPED_NAME, device: str | torch.device = "cpu") -> EnhanceNet:
    """The enhancer in `model_dir` ('shipped': the checked one in the package), in eval mode."""
    if str(model_dir) == SHIPPED_NAME:
        model_dir = shipped_model("enhance")
    meta = read_model_json(model_dir)
    net = EnhanceNet(EnhanceConfig.from_dict(meta.get("config", {})))
    weights = Path(model_dir) / WEIGHTS
    try:
        load_checkpoint(weights if weights.is_file() else Path(model_dir) / CHECKPOINT, {"net": net})
    except CheckpointError as exc:
        raise EnhanceError(str(exc)) from exc
    net.steps = int(meta.get("steps", 0))
    return net.to(device).eval()


def enhance_faces(model: EnhanceNet, faces: Sequence[np.ndarray], size: int, batch: int = 8,
                  precision: str | Precision = "auto") -> np.ndarray:
    """Aligned face crops (uint8 BGR, square, any size) -> (N, size, size, 3) uint8 BGR: each
    brought to `size` by bicubic, then given the detail the network restores. A caller that
    enhances frame after frame passes its resolved Precision, so nothing is resolved per call."""
    if not 16 <= size <= MAX_SIZE:
        raise EnhanceError(f"size {size} is outside 16-{MAX_SIZE} px")
    for i, face in enumerate(faces):
        if face.dtype != np.uint8 or face.ndim != 3 or face.shape[2] != 3 or face.shape[0] != face.shape[1]:
            raise EnhanceError(f"face {i}: expected a square uint8 BGR crop, got {face.dtype} {face.shape}")
    device = next(model.parameters()).device
    out = np.empty((len(faces), size, size, 3), np.uint8)
    was_training = model.training
    model.eval()
    with torch.no_grad(), autocast(device, precision):
        for start in range(0, len(faces), batch):
            chunk = [upscale(f, size) if f.shape[0] < size else cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA)
                     for f in faces[start:start + batch]]
            x = torch.from_numpy(np.stack(chunk)).to(device).permute(0, 3, 1, 2).float() / 255
            y = model(x).float().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
            out[start:start + len(chunk)] = y
    model.train(was_training)
    return out


def export_enhancer(model_dir: str | os.PathLike, out: str | os.PathLike) -> dict[str, str]:
    """An inference-and-fine-tuning copy: fp16 weights, no optimizer state, no paths of the
    training machine. Returns each file's sha256 (what synthswap/pretrained.py records)."""
    net = load_enhancer(model_dir)
    meta = read_model_json(model_dir)
    out = Path(out)
    files = atomic_save_tensors({f"model.net.{k}": v.half() for k, v in net.state_dict().items()}, out / WEIGHTS,
                                {"state": {"step": meta.get("steps", 0)}}, max_bytes=MAX_SHIPPED_BYTES)
    meta = dict(meta, data=[Path(d).name for d in meta.get("data", [])],
                history=[{k: v for k, v in h.items() if k not in ("device", "out")} for h in meta.get("history", [])],
                exported={"dtype": "float16", "optimizer_state": False})
    meta.pop("out", None)
    atomic.write_json(out / MODEL_JSON, meta)
    try:
        return shipped_digests(out, [MODEL_JSON, *files], "a smaller --width")
    except PretrainedError as exc:
        raise EnhanceError(str(exc)) from exc
