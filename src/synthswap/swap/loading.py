"""Loading a trained swap model folder (`swap train`'s output) for conversion or fine-tuning.

    MODEL_DIR/
      model.json          config, training options, data, steps, versions (read first)
      model.safetensors   weights + AdamW state + step

Inference (`swap convert`) imports this, never the trainer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from synthswap.info import read_info_json
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
