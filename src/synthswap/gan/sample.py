"""Images from a trained generator: samples, truncation, latent interpolation grids and videos."""

from __future__ import annotations

import fractions
import os
from pathlib import Path

import cv2
import numpy as np
import torch

from synthswap.gan.data import make_grid, to_uint8
from synthswap.gan.networks import Generator
from synthswap.atomic import write_json
from synthswap.media import VideoWriter, write_png


GRID_FILE = "grid.png"
GRID_MAX = 64  # grid.png shows the first 64 samples, however many are written
SAMPLE_INFO = "sample.json"  # marks a folder `gan sample` wrote, which a later `gan sample` may write again


def latents(G: Generator, n: int, seed: int = 0, start: int = 0) -> torch.Tensor:
    """z for images seed + start, seed + start + 1, ...: image i depends on seed + i only, not on n."""
    return torch.stack([torch.randn(G.z_dim, generator=torch.Generator().manual_seed(seed + i))
                        for i in range(start, start + n)]) if n else torch.zeros(0, G.z_dim)


@torch.no_grad()
def generate_uint8(G: Generator, n: int, seed: int = 0, device: torch.device | str = "cpu",
                   truncation_psi: float = 1.0, batch: int = 32, noise_mode: str = "random") -> torch.Tensor:
    """n images as uint8 RGB (n, 3, R, R) on the CPU.

    noise_mode "random" (FID: the model's full distribution) is reproducible for the same
    seed and n; "const" makes image i a function of seed + i alone.
    """
    z = latents(G, n, seed)
    torch.manual_seed(seed)  # the random noise inputs
    out = []
    for start in range(0, n, batch):
        out.append(to_uint8(G(z[start:start + batch].to(device), truncation_psi, noise_mode=noise_mode)).cpu())
    return torch.cat(out) if out else torch.zeros(0, 3, G.resolution, G.resolution, dtype=torch.uint8)


def check_sample_folder(out: str | os.PathLike) -> None:
    """Refuse (ValueError) an --out that `write_samples` must not write into: a file, or a folder holding
    files that an earlier `gan sample` did not write (same-named files of the user's would be replaced)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: is a file; give a folder for the samples")
    if out.is_dir() and not (out / SAMPLE_INFO).is_file() and any(out.iterdir()):
        raise ValueError(f"--out {out}: exists, holds other files and was not written by `synthswap gan sample`; "
                         f"choose a new or empty folder")


@torch.no_grad()
def write_samples(G: Generator, n: int, out: Path, seed: int = 0, truncation_psi: float = 1.0,
                  device: torch.device | str = "cpu", batch: int = 32) -> int:
    """One PNG per sample (sample_000000.png, ...) and grid.png of the first 64; sample i = seed + i,
    fixed noise. Streamed: each batch is written as it is made, so memory does not grow with n."""
    check_sample_folder(out)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / SAMPLE_INFO, {"n": n, "seed": seed, "truncation": truncation_psi, "resolution": G.resolution})
    grid = []
    for start in range(0, n, batch):
        count = min(batch, n - start)
        images = to_uint8(G(latents(G, count, seed, start).to(device), truncation_psi, noise_mode="const")).cpu()
        for j in range(count):
            write_png(out / f"sample_{start + j:06d}.png", make_grid(images[j:j + 1], cols=1))
        if start < GRID_MAX:
            grid.append(images[:GRID_MAX - start])
    if grid:
        shown = torch.cat(grid)
        write_png(out / GRID_FILE, make_grid(shown, cols=min(8, len(shown))))
    return n


@torch.no_grad()
def interpolation_frames(G: Generator, rows: int, steps: int, seed: int = 0, truncation_psi: float = 1.0,
                         device: torch.device | str = "cpu") -> torch.Tensor:
    """(rows, steps, 3, R, R) uint8: each row walks in a straight line in W between two random faces.

    Interpolating in W (not Z) is what the mapping network is for: W is closer to linear in
    face attributes, which is also what the expression directions of the next stage rely on.
    Noise is fixed (noise_mode const) so only the latent changes along a row.
    """
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(rows * 2, G.z_dim, generator=gen).to(device)
    w = G.mapping(z, truncation_psi).reshape(rows, 2, -1)
    t = torch.linspace(0, 1, steps, device=device).reshape(1, steps, 1)
    ws = w[:, :1].lerp(w[:, 1:], t)  # (rows, steps, w_dim)
    imgs = G.synthesis(G.broadcast(ws.reshape(rows * steps, -1)), noise_mode="const")
    return to_uint8(imgs).cpu().reshape(rows, steps, *imgs.shape[1:])


def write_interpolation(G: Generator, out: Path, rows: int = 4, steps: int = 8, seed: int = 0,
                        truncation_psi: float = 1.0, device: torch.device | str = "cpu") -> Path:
    frames = interpolation_frames(G, rows, steps, seed, truncation_psi, device)
    path = out / "interpolation.png"
    write_png(path, make_grid(frames.reshape(-1, *frames.shape[2:]), cols=steps))
    return path


@torch.no_grad()
def write_interpolation_video(G: Generator, path: Path, keyframes: int = 6, seconds_per_key: float = 1.0,
                              fps: int = 25, seed: int = 0, truncation_psi: float = 1.0,
                              device: torch.device | str = "cpu") -> Path:
    """An H.264 loop through `keyframes` random faces, moving smoothly (cosine ease) in W."""

    gen = torch.Generator().manual_seed(seed)
    w = G.mapping(torch.randn(keyframes, G.z_dim, generator=gen).to(device), truncation_psi)
    per_key = max(2, int(round(seconds_per_key * fps)))
    # H.264 in yuv420p wants even sides; small GAN outputs are upscaled so players show them.
    side = max(256, G.resolution)
    with VideoWriter(path, side, side, fractions.Fraction(fps)) as writer:
        for k in range(keyframes):
            a, b = w[k], w[(k + 1) % keyframes]
            for i in range(per_key):
                t = 0.5 - 0.5 * np.cos(np.pi * i / per_key)
                img = to_uint8(G.synthesis(G.broadcast(a.lerp(b, float(t)).unsqueeze(0)), noise_mode="const"))
                bgr = make_grid(img.cpu(), cols=1)
                writer.write(cv2.resize(bgr, (side, side), interpolation=cv2.INTER_NEAREST if side % G.resolution == 0 else cv2.INTER_LINEAR))
    return path
