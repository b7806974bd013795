"""One prepared GPU lease: check the CUDA paths, measure throughput, train both GAN priors.

A GPU machine is lent for minutes at a time, starts bare (PyTorch, no mediapipe, no PyAV,
no FID network) and takes at most 64 MiB of files, so the work is split in three:

  here   .venv/bin/python benchmarks/gpu_session.py pack --data FACESET --out .gpu/NAME.npz
         (the GAN's training images, composed exactly as `gan train` composes them, as JPEG q95)
  there  python3 benchmarks/gpu_session.py run --pack .gpu/d6.npz --pack .gpu/utk.npz
             --swap-src .gpu/swap_a --swap-dst .gpu/swap_b --gan-minutes 6.5 --out $OUT
         (environment, matmul ceilings, GAN and swap training steps under bf16 autocast and
         channels_last with their throughput, then both GANs trained side by side with
         `--keep-snapshots`; the GAN folders and logs come back as one tar in parts of <= 15 MB)
  here   .venv/bin/python benchmarks/gpu_session.py unpack --parts DIR --out /work/runs/gpu
         then `synthswap gan fid --gan ... --data FACESET --snapshots` for FID against kimg.

Training itself is the product's GanTrainer; only its data loader is swapped for the pack.
The swap check needs kornia, which the GPU image lacks: carry its wheels (kornia, kornia_rs)
as the device notes describe and put them on PYTHONPATH first.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PART_BYTES = 15 * 1024 * 1024  # the device returns files of at most 16 MB


def _stub_missing(*names: str) -> None:
    """The GPU image has no PyAV or mediapipe; nothing run there decodes video or finds landmarks."""
    import importlib.util

    for name in names:
        if importlib.util.find_spec(name) is None:
            sys.modules[name] = types.ModuleType(name)


# -- pack / unpack (here) ---------------------------------------------------------------------


def pack(data: list[str], out: str, resolution: int, limit: int | None, quality: int) -> None:
    from PIL import Image

    from synthswap.gan.data import load_faces

    faces = load_faces(data, resolution, masked=True, limit=limit).permute(0, 2, 3, 1).numpy()
    blobs = []
    for img in faces:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=quality, subsampling=0)
        blobs.append(np.frombuffer(buf.getvalue(), np.uint8))
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, jpeg=np.concatenate(blobs), offsets=offsets, resolution=np.int64(resolution))
    print(f"{out}: {len(blobs)} faces at {resolution} px, {offsets[-1] / 1e6:.1f} MB")


def read_pack(path: str):
    import torch
    from PIL import Image

    with np.load(path, allow_pickle=False) as z:
        jpeg, offsets = z["jpeg"], z["offsets"]
    imgs = [np.asarray(Image.open(io.BytesIO(jpeg[a:b].tobytes())).convert("RGB"))
            for a, b in zip(offsets[:-1], offsets[1:])]
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()


def unpack(parts: str, out: str) -> None:
    files = sorted(Path(parts).glob("gans.tar.part*"), key=lambda f: int(f.name.rsplit("part", 1)[1]))
    if not files:
        sys.exit(f"no gans.tar.part* in {parts}")
    blob = b"".join(f.read_bytes() for f in files)
    Path(out).mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(out, filter="data")
    print(f"{out}: {', '.join(sorted(p.name for p in Path(out).iterdir()))}")


# -- on the GPU --------------------------------------------------------------------------------


def _use_pack(pack_path: str) -> None:
    """Make GanTrainer read its faces from the pack instead of a faceset."""
    import synthswap.gan.train as gan_train

    reals = read_pack(pack_path)
    gan_train.load_faces = lambda *args, **kwargs: reals


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def bench_gan(pack_path: str, batch: int, steps: int, tmp: Path, device: str) -> dict:
    import torch

    from bench_gan import count_step_flops
    from synthswap.gan.train import GanTrainer, GanTrainOptions

    _use_pack(pack_path)
    opts = GanTrainOptions(data=[pack_path], out=str(tmp / f"bench_gan_{batch}"), batch=batch, kimg=1,
                        r1_interval=16, device=device, verbose=False, aug_p=0.2, augment="fixed")
    tr = GanTrainer(opts)
    for _ in range(3):
        tr.train_step()
    flops = count_step_flops(tr)
    _sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        stats = tr.train_step()
    _sync(device)
    sec = (time.perf_counter() - t) / steps
    return {"batch": batch, "img_s": round(batch / sec, 1), "ms_per_step": round(sec * 1000, 2),
            "gflop_per_img": round(flops / batch / 1e9, 3), "achieved_tflop_s": round(flops / sec / 1e12, 3),
            "loss_G": float(stats["loss_G"]), "loss_D": float(stats["loss_D"]),
            "max_mem_GB": round(torch.cuda.max_memory_allocated() / 1e9, 2) if device == "cuda" else None}


def bench_swap(src: str, dst: str, resolution: int, steps: int, batch: int, tmp: Path, device: str) -> dict:
    from synthswap.swap.networks import SwapConfig
    from synthswap.swap.train import SwapTrainOptions, train

    config = SwapConfig(arch="df", resolution=resolution, e_dims=64, ae_dims=256, d_dims=64, d_mask_dims=22)
    out = tmp / f"swap_{resolution}"
    common = dict(src=[src], dst=[dst], config=config, batch_size=batch, save_every=0, preview_every=0,
                  log_every=10**6, progress=False, device=device)
    first = train(SwapTrainOptions(out=str(out), steps=5, **common))  # warm-up: cudnn autotune, allocations
    summary = train(SwapTrainOptions(out=str(out), steps=5 + steps, resume=True, **common))
    return {"resolution": resolution, "batch_per_side": batch, "steps": 5 + steps,
            "loss_at_step_5": first["last_loss"], f"loss_at_step_{5 + steps}": summary["last_loss"],
            "images_per_s": summary["images_per_s"], "parameters": summary["parameters"]}


def run(args: argparse.Namespace) -> None:
    import torch

    from common import matmul_gflops

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.work)
    tmp.mkdir(parents=True, exist_ok=True)
    dev = args.device
    report: dict = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": dev}
    if dev == "cuda":
        report.update(gpu=torch.cuda.get_device_name(0), capability=list(torch.cuda.get_device_capability(0)))
        torch.backends.cudnn.benchmark = True
        report["matmul_bf16_tflop_s"] = round(matmul_gflops(8192, dtype=torch.bfloat16, device=dev, warmup=3) / 1e3, 1)
    n = 4096 if dev == "cuda" else 1024
    report["matmul_fp32_tflop_s"] = round(matmul_gflops(n, device=dev, warmup=3) / 1e3, 3)
    print(json.dumps(report), flush=True)

    def attempt(name, fn):
        t = time.perf_counter()
        try:
            report[name] = fn()
        except Exception as exc:  # one failing check must not cost the lease its other results
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}
        report[name + "_wall_s"] = round(time.perf_counter() - t, 1)
        print(name, json.dumps(report[name]), flush=True)
        (out / "report.json").write_text(json.dumps(report, indent=2))

    for batch in args.bench_batches:
        attempt(f"gan_batch{batch}", lambda: bench_gan(args.pack[0], batch, args.bench_steps, tmp, dev))
    if args.swap_src:
        attempt("swap_128", lambda: bench_swap(args.swap_src, args.swap_dst, 128, args.swap_steps, args.swap_batch,
                                               tmp, dev))

    # Both priors side by side on the one GPU: each alone leaves most of it idle at 64 px.
    procs = []
    for pack_path in args.pack if args.gan_minutes > 0 else []:
        name = Path(pack_path).stem
        log = open(out / f"train_{name}.log", "w")
        cmd = [sys.executable, __file__, "train-gan", "--pack", pack_path, "--out", str(tmp / f"gan_{name}"),
               "--minutes", str(args.gan_minutes), "--batch", str(args.gan_batch), "--snap-kimg", str(args.snap_kimg),
               "--device", dev]
        procs.append((name, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log))
    for name, proc, log in procs:
        report[f"train_{name}_rc"] = proc.wait()
        log.close()
    (out / "report.json").write_text(json.dumps(report, indent=2))
    if procs:
        bundle([tmp / f"gan_{Path(p).stem}" for p in args.pack],
               [out / f"train_{Path(p).stem}.log" for p in args.pack], out / "gans.tar", args.max_snapshots)
    print(json.dumps(report, indent=2))


def train_gan(args: argparse.Namespace) -> None:
    import torch

    from synthswap.gan.train import GanTrainOptions, train

    torch.backends.cudnn.benchmark = args.device == "cuda"
    _use_pack(args.pack)
    summary = train(GanTrainOptions(data=[args.pack], out=args.out, batch=args.batch, minutes=args.minutes,
                                 snap_kimg=args.snap_kimg, keep_snapshots=True, ada_kimg=100, log_seconds=15,
                                 device=args.device))
    print(json.dumps(summary), flush=True)


def _evenly(paths: list[Path], n: int) -> set[Path]:
    if not paths:
        return set()
    return {paths[i] for i in np.unique(np.linspace(0, len(paths) - 1, n).round().astype(int))}


def bundle(gan_dirs: list[Path], logs: list[Path], tar_path: Path, max_snapshots: int) -> None:
    """GAN folders and logs as one tar in <= 15 MB parts; of each GAN's snapshots, `max_snapshots` evenly spaced."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for log in logs:
            if log.is_file():
                tar.add(log, arcname=log.name)
        for gan_dir in gan_dirs:
            # The return trip holds 64 MB: evenly spaced snapshots and sample grids, the last included.
            keep = _evenly(sorted((gan_dir / "snapshots").glob("*.safetensors")), max_snapshots) \
                | _evenly(sorted((gan_dir / "samples").glob("*.png")), 8)
            for path in sorted(gan_dir.rglob("*")):
                if path.is_file() and (path.parent.name not in ("snapshots", "samples") or path in keep):
                    tar.add(path, arcname=str(path.relative_to(gan_dir.parent)))
    blob = buf.getvalue()
    for i in range(0, len(blob), PART_BYTES):
        tar_path.with_name(f"{tar_path.name}.part{i // PART_BYTES}").write_bytes(blob[i:i + PART_BYTES])


def main() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--data", action="append", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--limit", type=int)
    p.add_argument("--quality", type=int, default=95)
    u = sub.add_parser("unpack")
    u.add_argument("--parts", required=True)
    u.add_argument("--out", required=True)
    r = sub.add_parser("run")
    r.add_argument("--pack", action="append", required=True)
    r.add_argument("--swap-src")
    r.add_argument("--swap-dst")
    r.add_argument("--gan-minutes", type=float, default=6.5)
    r.add_argument("--gan-batch", type=int, default=128)
    r.add_argument("--snap-kimg", type=float, default=100.0)
    r.add_argument("--max-snapshots", type=int, default=3)
    r.add_argument("--bench-batches", type=int, nargs="*", default=[64, 128, 256])
    r.add_argument("--bench-steps", type=int, default=30)
    r.add_argument("--swap-steps", type=int, default=60)
    r.add_argument("--swap-batch", type=int, default=32)
    r.add_argument("--device", default="cuda", help="cpu only to rehearse the script here")
    r.add_argument("--out", default=os.environ.get("OUT", "gpu_out"))
    r.add_argument("--work", default="/tmp/gpu_session")
    t = sub.add_parser("train-gan")
    t.add_argument("--pack", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--minutes", type=float, required=True)
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--snap-kimg", type=float, default=100.0)
    t.add_argument("--device", default="cuda")
    args = ap.parse_args()
    if args.cmd in ("run", "train-gan"):
        _stub_missing("av", "mediapipe")
    {"pack": lambda: pack(args.data, args.out, args.resolution, args.limit, args.quality),
     "unpack": lambda: unpack(args.parts, args.out),
     "run": lambda: run(args), "train-gan": lambda: train_gan(args)}[args.cmd]()


if __name__ == "__main__":
    main()
