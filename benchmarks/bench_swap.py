"""Benchmark of the swap engine (not a test): training images/s, convert frames/s, FLOPs.

For each resolution it measures, on this machine and in this one run:
  - training throughput (images/s, A and B images both counted) of full training steps
    (data sampling + augmentation + forward + backward + AdamW) on real faces;
  - the model's FLOPs per image (torch's FlopCounterMode: forward+backward per trained
    image, forward only per converted face), hence achieved GFLOP/s;
  - convert throughput (frames/s) of a real GRID clip, end to end (decode, detect,
    landmarks, align, model, colour transfer, blend, H.264 encode);
  - a plain fp32 2048x2048 matmul's GFLOP/s, to put the achieved figure beside.

    .venv/bin/python benchmarks/bench_swap.py --threads 2 --json bench_swap.json

It reads ../shared/data (d6/d9 for faces, a GRID clip for convert). Widths are the CLI's
CPU defaults (e_dims 32, ae_dims 128, d_dims 16, d_mask_dims 8), batch 8 + 8.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from common import matmul_gflops, train_flops_per_image, write_results  # benchmarks/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]
DATA = (ROOT / ".." / "shared" / "data").resolve()


def swap_flops_per_image(model, res: int) -> float:
    x = torch.rand(1, 3, res, res).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model.swap(x)
    return fc.get_total_flops()


def bench_train(facesets: tuple[Path, Path], res: int, steps: int, batch: int, workdir: Path) -> dict:
    from synthswap.swap.networks import SwapConfig, SwapModel
    from synthswap.swap.train import SwapTrainOptions, train

    config = SwapConfig(arch="df", resolution=res)
    out = workdir / f"train_{res}"
    # Two warm-up steps, then the timed ones (train() reports images/s of its own steps).
    opts = dict(src=[str(facesets[0])], dst=[str(facesets[1])], config=config, batch_size=batch,
                save_every=0, preview_every=0, log_every=1000, progress=False, device="cpu")
    train(SwapTrainOptions(out=str(out), steps=2, **opts))
    t = time.perf_counter()
    summary = train(SwapTrainOptions(out=str(out), steps=2 + steps, resume=True, **opts))
    wall = time.perf_counter() - t
    model = SwapModel(config).to(memory_format=torch.channels_last)
    flops_train = train_flops_per_image(model, res, batch)
    flops_swap = swap_flops_per_image(model, res)
    ips = summary["images_per_s"]
    return {"resolution": res, "parameters": summary["parameters"], "train_images_per_s": ips,
            "train_gflop_per_image": round(flops_train / 1e9, 3), "swap_gflop_per_image": round(flops_swap / 1e9, 3),
            "train_achieved_gflop_s": round(ips * flops_train / 1e9, 2), "train_wall_s": round(wall, 1),
            "model_dir": str(out)}


def bench_convert(model_dir: Path, clip: Path, workdir: Path, res: int) -> dict:
    from synthswap.swap.convert import ConvertOptions, convert_video

    summary = convert_video(model_dir, clip, workdir / f"convert_{res}.mp4", ConvertOptions(progress=False))
    return {"convert_frames_per_s": summary["frames_per_s"], "convert_frames": summary["frames"],
            "convert_faces": summary["faces_swapped"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 96, 128])
    parser.add_argument("--steps", type=int, default=8, help="timed training steps per resolution")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("GLOG_minloglevel", "2")
    from synthswap.extract import extract

    results = {"threads": args.threads, "torch": torch.__version__, "batch_per_identity": args.batch_size,
               "load_average_start": os.getloadavg()[0], "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        a, b = work / "A", work / "B"
        extract([DATA / "videos/people/d6.mp4"], a, size=128, max_frames=40, every_n=10, progress=False)
        extract([DATA / "videos/people/d9.mp4"], b, size=128, max_frames=40, every_n=10, progress=False)
        results["matmul_gflop_s_before"] = round(matmul_gflops(), 1)
        for res in args.resolutions:
            row = bench_train((a, b), res, args.steps, args.batch_size, work)
            row.update(bench_convert(Path(row.pop("model_dir")), DATA / "videos/grid/bbaf2n.mpg", work, res))
            results["runs"].append(row)
            print(json.dumps(row), flush=True)
        results["matmul_gflop_s_after"] = round(matmul_gflops(), 1)
    mm = (results["matmul_gflop_s_before"] + results["matmul_gflop_s_after"]) / 2
    for row in results["runs"]:
        row["train_vs_matmul"] = round(row["train_achieved_gflop_s"] / mm, 3)
    write_results(results, args.json)


if __name__ == "__main__":
    main()
