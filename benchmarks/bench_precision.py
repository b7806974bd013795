"""Benchmark of fp32 against bf16 autocast on this machine (not a test): peaks, networks, training.

In one run, so the ratios compare like with like:
  - the machine's peaks: a 2048x2048 matmul in fp32 and in bf16, and 3x3 convolutions (forward +
    backward, batch 8, 32x32, channels_last) at 64/128/256 channels;
  - `synthswap.precision`'s choice for `--precision auto` and its reason;
  - the networks every stage runs, forward + backward: the swap model (training step of
    `swap train`: sampling and augmentation, forward, losses, identity and pose losses, backward,
    AdamW; real faces), the GAN generator and discriminator (inversion's pass) and SFace;
  - a profile of the swap training step: where its time goes in each precision;
  - achieved GFLOP/s of the swap step (torch's FlopCounterMode) beside the matmul peaks.

    .venv/bin/python benchmarks/bench_precision.py --threads 2 --resolutions 64 128 --json bench_precision.json

Needs ../shared/data (d9 and d6 faces are extracted into a temporary folder at 128 px).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from common import matmul_gflops, train_flops_per_image, write_results  # benchmarks/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]
DATA = (ROOT / ".." / "shared" / "data").resolve()
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def best_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: oneDNN creates its kernels on the first call
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def conv_gflops(channels: int, dtype, repeats: int) -> float:
    x = torch.randn(8, channels, 32, 32).contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1).to(memory_format=torch.channels_last)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
            y = conv(x)
        y.float().mean().backward()

    flops = 3 * 2 * 8 * channels * channels * 9 * 32 * 32  # forward + two backward products
    return flops / best_seconds(step, repeats) / 1e9


def network_seconds(fn, dtype, repeats: int) -> float:
    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
            y = fn()
        y.float().mean().backward()

    return best_seconds(step, repeats)


def reference_facesets(folder: Path) -> tuple[Path, Path]:
    """Sides A and B of the timed swap steps: 60 frames of d9 and of d6 (every 8th), 128 px crops."""
    from synthswap.extract import extract

    a, b = folder / "A", folder / "B"
    extract([DATA / "videos/people/d9.mp4"], a, size=128, max_frames=60, every_n=8, progress=False)
    extract([DATA / "videos/people/d6.mp4"], b, size=128, max_frames=60, every_n=8, progress=False)
    return a, b


class SwapStep:
    """One `swap train` step, its pieces timed apart (the trainer's own functions, in its order)."""

    def __init__(self, a: Path, b: Path, res: int, batch: int, dtype):
        import numpy as np
        import torch.nn.functional as F

        from synthswap.faces.sface_torch import sface_identity
        from synthswap.precision import Precision
        from synthswap.swap.data import Augment, FaceSource
        from synthswap.swap.networks import SwapConfig, SwapModel
        from synthswap.swap.train import fit_landmark_net

        self.precision = Precision("bf16" if dtype is not None else "fp32", "cpu", "benchmark")
        self.faces_a, self.faces_b = FaceSource([str(a)], res), FaceSource([str(b)], res)
        torch.manual_seed(0)
        self.model = SwapModel(SwapConfig(resolution=res)).to(memory_format=torch.channels_last)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=2e-4, betas=(0.5, 0.999), weight_decay=1e-4)
        self.identity = sface_identity("cpu")
        real = torch.from_numpy(np.ascontiguousarray(self.faces_a.real_images())).float()
        with torch.no_grad():
            self.centroid = F.normalize(self.identity(real).mean(0), dim=0)
        t = time.perf_counter()
        self.landmarks = fit_landmark_net([self.faces_a, self.faces_b], 0, torch.device("cpu"), self.precision)
        self.landmark_fit_s = time.perf_counter() - t
        self.batch, self.augment, self.step_no = batch, Augment(), 0
        self.times: dict[str, float] = {}

    def _timed(self, name: str, fn):
        t = time.perf_counter()
        out = fn()
        self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t
        return out

    def next_batch(self) -> tuple[torch.Tensor, ...]:
        """The next step's sides A and B (warped, target, mask, region each), channels_last."""
        from synthswap.swap.data import step_rng

        rng = step_rng(0, self.step_no, 0)
        self.step_no += 1
        a = self._timed("sampling+augment", lambda: self.faces_a.batch(rng, self.batch, self.augment, "cpu"))
        b = self._timed("sampling+augment", lambda: self.faces_b.batch(rng, self.batch, self.augment, "cpu"))
        return tuple(x.contiguous(memory_format=torch.channels_last) for x in (*a, *b))

    def __call__(self, with_identity: bool) -> None:
        from synthswap.swap.losses import identity_loss, pose_loss, swap_loss

        wa, ta, ma, ra, wb, tb, mb, rb = self.next_batch()

        def forward():
            with self.precision.autocast():
                pa, pma, pb, pmb = self.model(wa, wb)
            la, _ = swap_loss(pa, pma, ta, ma, ra)
            lb, _ = swap_loss(pb, pmb, tb, mb, rb)
            return la + lb, pa

        loss, pa = self._timed("forward+losses", forward)
        if with_identity:
            def identity():
                with self.precision.autocast():
                    swapped = self.model.swap(tb)[0]
                il, _ = identity_loss(self.identity, swapped, self.centroid, pa, ta, self.precision.autocast)
                pl, _ = pose_loss(self.landmarks, swapped, tb, self.precision.autocast)
                return il + 3 * pl

            loss = loss + self._timed("identity+pose forward", identity)
        self.opt.zero_grad(set_to_none=True)
        self._timed("backward", loss.backward)
        self._timed("optimizer", self.opt.step)


def bench_swap(a: Path, b: Path, res: int, batch: int, steps: int, with_identity: bool) -> dict:
    rows = {}
    for name, dtype in PRECISIONS.items():
        step = SwapStep(a, b, res, batch, dtype)
        for i in range(2):  # warm-up (with the identity step, as the trainer's first step has it)
            step(with_identity)
        step.times.clear()
        t = time.perf_counter()
        for i in range(steps):
            # The trainer runs the identity loss every `id_every` (4) steps.
            step(with_identity and i % 4 == 0)
        wall = time.perf_counter() - t
        rows[name] = {"images_per_s": round(2 * batch * steps / wall, 1), "landmark_fit_s": round(step.landmark_fit_s, 1),
                      "profile_ms_per_step": {k: round(v / steps * 1000, 1) for k, v in step.times.items()}}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--steps", type=int, default=24, help="timed swap training steps per resolution and precision")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("GLOG_minloglevel", "2")
    from synthswap.faces.sface_torch import sface_identity
    from synthswap.gan.loading import load_discriminator, load_generator
    from synthswap.precision import cpu_bf16_units, resolve_precision
    from synthswap.pretrained import shipped_model
    from synthswap.swap.networks import SwapConfig, SwapModel

    auto = resolve_precision("auto", torch.device("cpu"))
    results: dict = {"cpu": cpu_name(), "bf16_units": cpu_bf16_units(), "threads": args.threads,
                     "torch": torch.__version__, "auto": auto.describe(), "load_average_start": os.getloadavg()[0]}
    peaks = {name: round(matmul_gflops(dtype=dtype or torch.float32), 1) for name, dtype in PRECISIONS.items()}
    results["matmul_2048_gflop_s"] = peaks
    results["conv3x3_fwd_bwd_gflop_s"] = {
        str(ch): {name: round(conv_gflops(ch, dtype, args.repeats), 1) for name, dtype in PRECISIONS.items()}
        for ch in (64, 128, 256)}
    print(json.dumps(results, indent=2), flush=True)

    gan = shipped_model("gan")
    G, _ = load_generator(gan)
    D, _ = load_discriminator(gan)
    ws = G.broadcast(G.mapping(torch.randn(10, G.z_dim)).detach()).clone().requires_grad_(True)
    sface = sface_identity("cpu")
    # SFace's network itself: SFaceIdentity keeps it in fp32 on the CPU, which is what is measured here.
    faces112 = torch.rand(10, 3, 112, 112).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    nets = {"gan_generator_batch10": lambda: G.synthesis(ws, noise_mode="const"),
            "gan_generator+discriminator_batch10": lambda: D(G.synthesis(ws, noise_mode="const")),
            "sface_network_batch10": lambda: sface.net(faces112)}
    results["networks_ms"] = {}
    for label, fn in nets.items():
        ms = {name: round(network_seconds(fn, dtype, args.repeats) * 1000, 1) for name, dtype in PRECISIONS.items()}
        ms["speedup"] = round(ms["fp32"] / ms["bf16"], 2)
        results["networks_ms"][label] = ms
        print(label, ms, flush=True)

    results["swap_train"] = []
    with tempfile.TemporaryDirectory() as tmp:
        a, b = reference_facesets(Path(tmp))
        for res in args.resolutions:
            model = SwapModel(SwapConfig(resolution=res)).to(memory_format=torch.channels_last)
            flops = train_flops_per_image(model, res, args.batch_size)
            for with_identity in (False, True):
                rows = bench_swap(a, b, res, args.batch_size, args.steps, with_identity)
                row = {"resolution": res, "identity_loss": with_identity, "gflop_per_image": round(flops / 1e9, 3), **rows,
                       "speedup": round(rows["bf16"]["images_per_s"] / rows["fp32"]["images_per_s"], 2)}
                for name in PRECISIONS:
                    achieved = rows[name]["images_per_s"] * flops / 1e9
                    rows[name]["achieved_gflop_s"] = round(achieved, 1)
                    rows[name]["of_matmul_peak"] = round(achieved / peaks[name], 3)
                results["swap_train"].append(row)
                print(json.dumps(row), flush=True)
    write_results(results, args.json)


if __name__ == "__main__":
    main()
