"""Loading a trained swap model folder (`swap train`'s output) for conversion or fine-tuning.

    MODEL_DIR/
      model.json          config, training options, data, steps, versions (read first)
      model.safetensors   weights + AdamW state + step

Inference (`swap convert`) imports this, never the trainer.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthswap.info import read_info_json
from synthswap.precision import Precision, resolve_precision
from synthswap.swap.networks import SwapConfig, SwapModel
from synthswap.training import CheckpointError, load_checkpoint

CHECKPOINT_FILE = "model.safetensors"
MODEL_JSON = "model.json"
MODEL_FORMAT = "synthswap-swap-model"


def read_model_json(model_dir: str | os.PathLike) -> dict[str, Any]:
    meta = read_info_json(Path(model_dir) / MODEL_JSON, CheckpointError,
                          f"not a swap model folder ({MODEL_JSON} not found)")
    if meta.get("format") != MODEL_FORMAT or "config" not in meta:
        raise CheckpointError(f"{Path(model_dir) / MODEL_JSON}: not a synthswap swap model description")
    return meta


def load_model(model_dir: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[SwapModel, dict]:
    """The trained model (eval mode) and its model.json; CheckpointError if anything is wrong."""
    meta = read_model_json(model_dir)
    try:
        config = SwapConfig.from_dict(meta["config"])
        config.validate()  # bounded before anything is allocated
        model = SwapModel(config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{model_dir}: invalid model config ({exc})") from exc
    load_checkpoint(Path(model_dir) / CHECKPOINT_FILE, {"model": model})
    return model.to(device).eval(), meta


@torch.no_grad()
def swap_crop(model: SwapModel, crop: np.ndarray, device: torch.device | str,
              precision: Precision) -> tuple[np.ndarray, np.ndarray]:
    """One aligned BGR uint8 crop at the model's size -> its rendering with A's identity (float BGR
    0..1, H x W x 3) and the mask decoded with it (H x W): what convert pastes, before the enhancer."""
    x = torch.from_numpy(crop).to(device).permute(2, 0, 1)[None].float().div(255)
    x = x.contiguous(memory_format=torch.channels_last)
    with precision.autocast():
        image, mask = model.swap(x)
    return image[0].float().permute(1, 2, 0).cpu().numpy(), mask[0, 0].float().cpu().numpy()


def face_renderer(model_dir: str | os.PathLike, device: str = "cpu",
                  precision: str = "auto") -> tuple[Callable[[np.ndarray], np.ndarray], int]:
    """The trained model as a function, and the size it works at: an aligned BGR uint8 crop of that
    size -> `swap_crop`'s rendering as uint8."""
    model, _ = load_model(model_dir, device)
    resolved = resolve_precision(precision, torch.device(device))

    def render(crop: np.ndarray) -> np.ndarray:
        image, _mask = swap_crop(model, crop, device, resolved)
        return np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)

    return render, model.config.resolution
