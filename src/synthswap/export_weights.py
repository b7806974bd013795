"""Making the files that ship (`synthswap export-weights`): fp16 copies of a trained swap model and GAN
prior, with no optimizer state and no paths of the training machine, the weights split into as many
files as keep each within the size a shipped file may have. Apart from synthswap.pretrained, which only finds and checks shipped files
and so sits below the packages whose models it ships."""

from __future__ import annotations

from pathlib import Path

import torch

from synthswap import atomic
from synthswap.gan.loading import CHECKPOINT, CONFIG_FILE, load_discriminator, load_generator, read_gan_json
from synthswap.pretrained import MAX_SHIPPED_BYTES, shipped_digests
from synthswap.swap.loading import CHECKPOINT_FILE, MODEL_JSON, load_model
from synthswap.training import atomic_save_tensors


def _fp16_weights(module: torch.nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": (v.half() if v.is_floating_point() else v) for k, v in module.state_dict().items()}


def export_swap(model_dir: str | Path, out: str | Path) -> dict[str, str]:
    """An inference-and-fine-tuning copy of a swap model: fp16 weights, no optimizer state, no
    paths of the machine it was trained on. Returns each file's sha256."""
    model, meta = load_model(model_dir)
    out = Path(out)
    files = atomic_save_tensors(_fp16_weights(model, "model.model"), out / CHECKPOINT_FILE,
                                {"state": {"step": meta["steps"]}}, max_bytes=MAX_SHIPPED_BYTES)
    meta = dict(meta, data={side: [{"faces": d["faces"], "share": d["share"]} for d in meta["data"][side]]
                            for side in ("A", "B")},
                history=[{k: v for k, v in h.items() if k != "device"} for h in meta.get("history", [])],
                exported={"dtype": "float16", "optimizer_state": False})
    if meta.get("init"):  # the model it was fine-tuned from, by folder name only
        meta["init"] = dict(meta["init"], **{"from": Path(meta["init"]["from"]).name})
    atomic.write_json(out / MODEL_JSON, meta)
    return shipped_digests(out, [MODEL_JSON, *files], "smaller widths")


def export_gan(gan_dir: str | Path, out: str | Path) -> dict[str, str]:
    """An inference copy of a GAN prior: fp16 G_ema (what sampling and inversion use) and D (the
    inversion's perceptual loss), no optimizer state, no paths of the training machine."""
    G, _ = load_generator(gan_dir)
    D, _ = load_discriminator(gan_dir)
    info = read_gan_json(gan_dir)
    out = Path(out)
    files = atomic_save_tensors({**_fp16_weights(G, "model.G_ema"), **_fp16_weights(D, "model.D")}, out / CHECKPOINT,
                                {"state": {"kimg": info.get("kimg")}}, max_bytes=MAX_SHIPPED_BYTES)
    options = {k: v for k, v in info.get("options", {}).items() if k not in ("data", "out", "threads", "device")}
    atomic.write_json(out / CONFIG_FILE, dict(info, options=options, exported={"dtype": "float16",
                                                                                "optimizer_state": False}))
    return shipped_digests(out, [CONFIG_FILE, *files], "smaller widths")
