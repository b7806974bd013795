"""Loading a trained GAN folder (`gan train`'s output) for inference: generator, discriminator, snapshots.

    GAN_DIR/
      gan.json                  config, training options, versions
      checkpoint.safetensors    G, D, G_ema, optimizers, ADA state
      snapshots/kimgNNNN.NNN.safetensors   fp16 G_ema per snapshot (--keep-snapshots)

Inference (inversion, directions, sampling, synthesis) imports this, never the trainer.
"""

from __future__ import annotations

from pathlib import Path

import torch

from synthswap.gan.networks import Discriminator, GanConfig, Generator
from synthswap.info import read_info_json
from synthswap.training import CheckpointError, load_checkpoint

CHECKPOINT = "checkpoint.safetensors"
CONFIG_FILE = "gan.json"
SNAPSHOT_DIR = "snapshots"


def read_gan_json(gan_dir: str | Path) -> dict:
    """gan.json of a GAN folder; CheckpointError when it is missing or corrupt."""
    return read_info_json(Path(gan_dir) / CONFIG_FILE, CheckpointError,
                          f"not a GAN folder (no {CONFIG_FILE}); train one with `synthswap gan train`")


def load_gan_config(gan_dir: str | Path) -> GanConfig:
    info = read_gan_json(gan_dir)
    try:
        return GanConfig.from_dict(info["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{Path(gan_dir) / CONFIG_FILE}: corrupt GAN config ({exc})") from exc


def load_generator(gan_dir: str | Path, ema: bool = True, device: torch.device | str = "cpu",
                   snapshot: str | Path | None = None) -> tuple[Generator, GanConfig]:
    """The trained generator (the EMA copy by default) in eval mode, and its config.

    `snapshot` loads G_ema from one of the files `--keep-snapshots` wrote instead of the checkpoint.
    """
    cfg = load_gan_config(gan_dir)
    G = Generator(cfg)
    if snapshot is not None:
        load_checkpoint(snapshot, {"G_ema": G})  # fp16 on disk; load_state_dict casts to fp32
    else:
        load_checkpoint(Path(gan_dir) / CHECKPOINT, {"G_ema" if ema else "G": G})
    return G.to(device).eval().requires_grad_(False), cfg


def load_discriminator(gan_dir: str | Path, device: torch.device | str = "cpu") -> tuple[Discriminator, GanConfig]:
    """The trained discriminator; `D.features(img)` serves as a perceptual loss for inversion."""
    cfg = load_gan_config(gan_dir)
    D = Discriminator(cfg)
    load_checkpoint(Path(gan_dir) / CHECKPOINT, {"D": D})
    return D.to(device).eval().requires_grad_(False), cfg


def snapshot_path(gan_dir: str | Path, kimg: float) -> Path:
    """Where the snapshot at `kimg` goes (3 decimals, so nearby snapshots never collide; zero-padded,
    so names sort in training order)."""
    return Path(gan_dir) / SNAPSHOT_DIR / f"kimg{kimg:010.3f}.safetensors"


def list_snapshots(gan_dir: str | Path) -> list[tuple[float, Path]]:
    """(kimg, file) of every snapshot `--keep-snapshots` kept, in training order."""
    files = sorted((Path(gan_dir) / SNAPSHOT_DIR).glob("kimg*.safetensors"))
    return [(float(f.stem[len("kimg"):]), f) for f in files]
