"""Bad-input probes: small hostile or careless inputs to every subcommand, and what each one did.

    .venv/bin/python benchmarks/probe_bad_inputs.py --out docs/bad_inputs.md [--jobs 2] [--only PATTERN]

Each probe runs `python -m synthswap ARGS` in a fresh folder of its own, holding copies of the
inputs it names (a faceset, a tiny GAN, a tiny swap model, a few frames of a real video, ...),
damaged as the probe says. Afterwards it records:

- the exit code (and whether it is one the probe documents);
- whether stderr holds a Python traceback;
- whether stderr holds exactly one `error:` line (ours or argparse's `synthswap ...: error:`);
- whether every file that was in the folder before the run (the user's inputs, and any existing
  output it named) is still there with the same sha256: a changed or missing one is a data loss.

The inputs ("materials") are made once per run from ../shared/data (a few frames of
videos/people/d0.mp4 and the GRID clip bbaf2n.mpg), only those the chosen probes use. The
catalogue (`PROBES`) and the runner (`run_probe`) are imported by tests/test_bad_inputs.py,
which runs the probes marked `fast`.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import io
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
SHARED_DATA = (ROOT / ".." / "shared" / "data").resolve()
LOCK_FILE = ".synthswap.lock"  # written (pid) by a writer that then refuses: not the user's file

# One `error:` line: ours (`error: ...`) or argparse's (`synthswap swap train: error: ...`).
ERROR_LINE = re.compile(r"^(?:synthswap(?: [\w-]+)*: )?error: ")
TRACEBACK = "Traceback (most recent call last)"


# --- materials: the real inputs probes start from, made once -----------------------------------


class Materials:
    """Inputs made on first use under `root`: `m.path("fs")` -> a 3-face 64 px faceset, etc."""

    def __init__(self, root: Path, shared: Path = SHARED_DATA):
        self.root = Path(root)
        self.shared = shared
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        """The material `name` (or a file inside one: "model/model.safetensors"), made if needed."""
        head = name.split("/")[0]
        if not (self.root / head).exists():
            getattr(self, "_make_" + head.replace(".", "_"))(self.root / head)
        return self.root / name

    def _need_shared(self, rel: str) -> Path:
        path = self.shared / rel
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the probes need ../shared/data (real videos)")
        return path

    def _frames(self, n: int, every: int = 1):
        from synthswap.media import iter_video_frames
        return [f.bgr for f in iter_video_frames(self._need_shared("videos/people/d0.mp4"), every_n=every,
                                                 max_frames=n)]

    def _make_photo_png(self, target: Path) -> None:
        from synthswap.media import write_png
        write_png(target, self._frames(1)[0])

    def _make_photo2_png(self, target: Path) -> None:
        from synthswap.media import write_png
        write_png(target, self._frames(2, every=40)[1])

    def _make_photos(self, target: Path) -> None:
        tmp = target.with_name(target.name + ".tmp")
        tmp.mkdir()
        shutil.copyfile(self.path("photo.png"), tmp / "photo.png")
        shutil.copyfile(self.path("photo2.png"), tmp / "photo2.png")
        tmp.rename(target)

    def _make_big_png(self, target: Path) -> None:
        """A valid PNG header claiming 12000 x 12000 = 144 megapixels, with a tiny body."""
        import struct
        import zlib

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", 12000, 12000, 8, 2, 0, 0, 0)
        target.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) +
                           chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))

    @staticmethod
    def _encode(frames, target: Path, options: dict[str, str] | None = None) -> None:
        """H.264 at 25 fps with PyAV itself: a user's video, without the comment synthswap's writer adds."""
        import av
        with av.open(str(target), mode="w", options=options or {}) as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
            for i, bgr in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
                frame.pts = i
                container.mux(stream.encode(frame))
            container.mux(stream.encode())

    def _make_short_mp4(self, target: Path) -> None:
        """The first 6 frames of d0.mp4 as H.264, 25 fps."""
        self._encode(self._frames(6), target)

    def _make_faststart_mp4(self, target: Path) -> None:
        """12 frames of d0.mp4 with the index first (as phones and web exports write it)."""
        self._encode(self._frames(12), target, {"movflags": "faststart"})

    def _make_grey_png(self, target: Path) -> None:
        import numpy as np

        from synthswap.media import write_png
        write_png(target, np.full((240, 320, 3), 128, np.uint8))

    def _make_me_heic(self, target: Path) -> None:
        from PIL import Image

        from synthswap.media import read_image
        Image.fromarray(read_image(self.path("photo.png"))[:, :, ::-1]).save(target, quality=90)

    def _make_one_frame_mp4(self, target: Path) -> None:
        self._encode(self._frames(1), target)

    def _make_video_mpg(self, target: Path) -> None:
        shutil.copyfile(self._need_shared("videos/grid/bbaf2n.mpg"), target)

    def _make_fs(self, target: Path) -> None:
        from synthswap.extract import extract
        extract([self.path("short.mp4")], target, size=64, max_frames=3, progress=False)

    def _make_gan(self, target: Path) -> None:
        import torch
        from synthswap.gan.train import GanTrainOptions, train
        torch.set_num_threads(1)
        train(GanTrainOptions(data=[str(self.path("fs"))], out=str(target), resolution=32, preset="tiny", batch=4,
                              kimg=0.008, device="cpu", verbose=False, snap_kimg=1000.0, seed=0))

    def _make_model(self, target: Path) -> None:
        import torch
        from synthswap.swap.networks import SwapConfig
        from synthswap.swap.train import SwapTrainOptions, train
        torch.set_num_threads(1)
        train(SwapTrainOptions(src=[str(self.path("fs"))], dst=[str(self.path("fs"))], out=str(target),
                               config=SwapConfig(resolution=64, e_dims=4, ae_dims=16, d_dims=4, d_mask_dims=4),
                               batch_size=2, steps=1, save_every=0, preview_every=0, device="cpu", progress=False))

    def _make_inv(self, target: Path) -> None:
        import torch
        from synthswap.gan.invert import InvertOptions, invert
        torch.set_num_threads(1)
        invert(InvertOptions(gan=str(self.path("gan")), faces=str(self.path("fs")), out=str(target), max_photos=2,
                             steps=1, pti_steps=0, landmark_steps=0, w_identity=0.0, device="cpu", progress=False),
               log=lambda _msg: None)


# --- what a probe does to its folder before the run -------------------------------------------

Setup = Callable[[Path, Materials], None]


def copy(name: str, as_name: str | None = None) -> Setup:
    """Copy the material `name` into the probe's folder (as `as_name`)."""
    def run(folder: Path, m: Materials) -> None:
        src, dst = m.path(name), folder / (as_name or name)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns(LOCK_FILE))
        else:
            shutil.copyfile(src, dst)
    return run


def write(name: str, content: bytes | str) -> Setup:
    def run(folder: Path, m: Materials) -> None:  # noqa: ARG001
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return run


def garbage(name: str, size: int = 4096) -> Setup:
    return write(name, random.Random(name).randbytes(size))


def mkdir(name: str) -> Setup:
    def run(folder: Path, m: Materials) -> None:  # noqa: ARG001
        (folder / name).mkdir(parents=True, exist_ok=True)
    return run


def truncate(name: str, fraction: float = 0.5) -> Setup:
    def run(folder: Path, m: Materials) -> None:  # noqa: ARG001
        path = folder / name
        data = path.read_bytes()
        path.write_bytes(data[:int(len(data) * fraction)])
    return run


def nan_weights(name: str) -> Setup:
    """Every floating-point tensor of a safetensors file set to NaN (a diverged training's weights)."""
    def run(folder: Path, m: Materials) -> None:  # noqa: ARG001
        import torch
        from safetensors import safe_open
        from safetensors.torch import load_file, save_file
        path = folder / name
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata()
        tensors = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                   for k, v in load_file(str(path)).items()}
        save_file(tensors, str(path), metadata=metadata)
    return run


def edit_json(name: str, edit: Callable[[dict], object]) -> Setup:
    def run(folder: Path, m: Materials) -> None:  # noqa: ARG001
        path = folder / name
        data = json.loads(path.read_text())
        result = edit(data)
        path.write_text(json.dumps(data if result is None else result))
    return run


def edit_rows(faceset: str, edit: Callable[[list], None]) -> Setup:
    def run(folder: Path, m: Materials) -> None:  # noqa: ARG001
        manifest = folder / faceset / "faces.jsonl"
        rows = [json.loads(line) for line in manifest.read_text().splitlines()]
        edit(rows)
        manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def append(name: str, content: str) -> Setup:
    def run(folder: Path, m: Materials) -> None:  # noqa: ARG001
        with open(folder / name, "a") as fh:
            fh.write(content)
    return run


def move_and_link(name: str, elsewhere: str) -> Setup:
    """Move `name` to `elsewhere` and leave a symbolic link to it in its place."""
    def run(folder: Path, m: Materials) -> None:  # noqa: ARG001
        shutil.move(folder / name, folder / elsewhere)
        (folder / name).symlink_to(folder / elsewhere)
    return run


def huge_widths(data: dict) -> None:
    """model.json / gan.json asking for enormous networks."""
    config = data["config"]
    for key in ("e_dims", "ae_dims", "d_dims", "d_mask_dims", "channel_base", "channel_max", "z_dim", "w_dim"):
        if key in config:
            config[key] = 10**7


# --- the probes ---------------------------------------------------------------------------------


@dataclass
class Probe:
    name: str
    args: list[str]  # after `synthswap`; paths are relative to the probe's own folder
    setup: Sequence[Setup] = ()
    expect: tuple[int, ...] = (1, 2)  # documented exit codes
    readonly: Sequence[str] = ()  # made read-only, and the command run without root's override
    lock: Sequence[str] = ()  # folders another process holds the synthswap lock of during the run
    may_change: Sequence[str] = ()  # the user's files the command is meant to change
    fast: bool = False  # in tests/test_bad_inputs.py
    timeout: float = 300.0

    @property
    def command(self) -> str:
        words = [a for a in self.args if not a.startswith("-")]
        return " ".join(words[:2] if words[0] in ("gan", "swap") else words[:1])


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


HAS_CUDA = _has_cuda()  # `--device cuda` is a bad input only where there is none

# Flags that bound a command's work if it (wrongly) goes ahead: one thread, CPU, tiny sizes.
T1 = ["--threads", "1", "--device", "cpu"]
Q = ["--quiet"]
SWAP_TINY = ["--resolution", "64", "--e-dims", "4", "--ae-dims", "16", "--d-dims", "4", "--d-mask-dims", "4",
             "--batch-size", "2", "--save-every", "0", "--preview-every", "0", *T1, *Q]
GAN_TINY = ["--resolution", "32", "--config", "tiny", "--batch", "4", "--kimg", "0.004", "--snap-kimg", "1000",
            *T1, *Q]
RUN_TINY = ["--engine", "warp", "--synthetic", "0", "--swap-init", "none", "--swap-steps", "1", "--batch-size", "2",
            "--size", "64", "--device", "cpu", "--quiet"]
STUDY_TINY = ["--k", "1", "--engines", "warp", "--synthetic", "1", "--swap-steps", "1", "--eval-max-frames", "1",
              "--size", "64", "--subject-every-n", "1", "--dest-every-n", "1", "--device", "cpu", "--quiet"]
DEMO_TINY = ["--swap-steps", "1", "--synthetic", "0", "--engine", "warp", "--swap-init", "none", "--device", "cpu",
             "--quiet"]
FS, GAN, MODEL, INV = copy("fs"), copy("gan"), copy("model"), copy("inv")
PHOTO, SHORT, VIDEO = copy("photo.png"), copy("short.mp4"), copy("video.mpg")


def _convert(*args: str) -> list[str]:
    return ["swap", "convert", *args, "--max-frames", "2", *T1, *Q]


def _warp(*args: str) -> list[str]:
    return ["synthesize", "--engine", "warp", *args, "--n", "1", "--max-attempts", "2", *T1, *Q]


def _evaluate(*args: str) -> list[str]:
    return ["evaluate", *args, "--dlib-every", "0", "--no-fid", *Q]


PROBES: list[Probe] = [
    # extract --------------------------------------------------------------------------------------
    Probe("missing input", ["extract", "missing.mp4", "--out", "out", *Q], fast=True),
    Probe("text file named .png", ["extract", "fake.png", "--out", "out", *Q], [write("fake.png", "not a png")],
          expect=(1,), fast=True),
    Probe("truncated MP4", ["extract", "short.mp4", "--out", "out", *Q], [SHORT, truncate("short.mp4")],
          expect=(1,)),
    Probe("image over 50 megapixels (header)", ["extract", "big.png", "--out", "out", *Q], [copy("big.png")],
          expect=(1,), fast=True),
    Probe("an iPhone HEIC photo (decoded)", ["extract", "me.heic", "--out", "out", "--size", "64", *Q],
          [copy("me.heic")], expect=(0,)),
    Probe("a GIF (refused, the accepted formats listed)", ["extract", "face.gif", "--out", "out", *Q],
          [write("face.gif", b"GIF89a")], expect=(2,), fast=True),
    Probe("--out equal to the input file", ["extract", "photo.png", "--out", "photo.png", *Q], [PHOTO],
          expect=(2,), fast=True),
    Probe("--out inside the input folder", ["extract", "photos", "--out", "photos/fs", *Q], [copy("photos")],
          expect=(2,), fast=True),
    Probe("--out a folder of the user's files", ["extract", "photo.png", "--out", "mine", *Q],
          [PHOTO, write("mine/notes.txt", "my notes\n")], expect=(1,), fast=True),
    Probe("--out an existing file", ["extract", "photo.png", "--out", "notes.txt", *Q],
          [PHOTO, write("notes.txt", "my notes\n")], fast=True),
    Probe("--max-frames -1", ["extract", "short.mp4", "--out", "out", "--max-frames", "-1", *Q], [SHORT],
          expect=(2,)),
    Probe("--reference a folder", ["extract", "photo.png", "--out", "out", "--reference", "photos", *Q],
          [PHOTO, copy("photos")], fast=True),
    Probe("--out in a read-only folder", ["extract", "photo.png", "--out", "ro/fs", *Q], [PHOTO, mkdir("ro")],
          expect=(1,), readonly=["ro"]),
    Probe("--out row escaping with ../", ["extract", "photo.png", "--out", "fs", "--size", "64", *Q],
          [PHOTO, FS, edit_rows("fs", lambda rows: rows[0].update(image="../photo.png"))], expect=(1,), fast=True),
    Probe("--out whose faces/ is a symlink", ["extract", "photo.png", "--out", "fs", "--size", "64", *Q],
          [PHOTO, FS, move_and_link("fs/faces", "elsewhere")], expect=(1,)),
    Probe("--out faceset locked by another writer", ["extract", "photo.png", "--out", "fs", "--size", "64", *Q],
          [PHOTO, FS], expect=(1,), lock=["fs"]),

    # gan train ------------------------------------------------------------------------------------
    Probe("--data missing", ["gan", "train", "--data", "nofs", "--out", "g", *GAN_TINY], expect=(2,)),
    Probe("--data row with empty landmarks", ["gan", "train", "--data", "fs", "--out", "g", *GAN_TINY],
          [FS, edit_rows("fs", lambda rows: rows[1].update(landmarks=[]))], expect=(2,)),
    Probe("--data faceset without rows", ["gan", "train", "--data", "fs", "--out", "g", *GAN_TINY],
          [FS, write("fs/faces.jsonl", "")], expect=(2,)),
    Probe("--minutes nan", ["gan", "train", "--data", "fs", "--out", "g", *GAN_TINY, "--minutes", "nan"], [FS],
          expect=(2,)),
    Probe("--resolution above the faceset's size",
          ["gan", "train", "--data", "fs", "--out", "g", *GAN_TINY, "--resolution", "128"], [FS], expect=(2,)),
    Probe("--device gpu", ["gan", "train", "--data", "fs", "--out", "g", *GAN_TINY, "--device", "gpu"], [FS],
          expect=(2,), fast=True),
    Probe("--snap-kimg 0", ["gan", "train", "--data", "fs", "--out", "g", *GAN_TINY, "--snap-kimg", "0"], [FS],
          expect=(2,)),
    Probe("--max-images 0", ["gan", "train", "--data", "fs", "--out", "g", *GAN_TINY, "--max-images", "0"], [FS],
          expect=(2,)),
    Probe("--out an existing GAN, no --resume", ["gan", "train", "--data", "fs", "--out", "gan", *GAN_TINY],
          [FS, GAN], expect=(2,)),
    Probe("--out equal to --data", ["gan", "train", "--data", "fs", "--out", "fs", *GAN_TINY], [FS], expect=(2,)),
    Probe("--out locked by another writer", ["gan", "train", "--data", "fs", "--out", "gan", "--resume",
                                             *GAN_TINY, "--kimg", "0.1"],
          [FS, GAN], expect=(2,), lock=["gan"]),

    # gan sample -----------------------------------------------------------------------------------
    Probe("--gan missing", ["gan", "sample", "--gan", "nogan", "--out", "s", "--n", "2"], expect=(2,), fast=True),
    Probe("--gan corrupt checkpoint", ["gan", "sample", "--gan", "gan", "--out", "s", "--n", "2"],
          [GAN, garbage("gan/checkpoint.safetensors")], expect=(2,), fast=True),
    Probe("--gan gan.json asking for huge widths", ["gan", "sample", "--gan", "gan", "--out", "s", "--n", "2"],
          [GAN, edit_json("gan/gan.json", huge_widths)], expect=(2,), fast=True),
    Probe("--out an existing file", ["gan", "sample", "--gan", "gan", "--out", "notes.txt", "--n", "2"],
          [GAN, write("notes.txt", "my notes\n")], expect=(2,), fast=True),
    Probe("--out in a read-only folder", ["gan", "sample", "--gan", "gan", "--out", "ro/s", "--n", "2"],
          [GAN, mkdir("ro")], readonly=["ro"]),
    Probe("--out a folder holding the user's sample_000000.png",
          ["gan", "sample", "--gan", "gan", "--out", "mine", "--n", "2"],
          [GAN, copy("photo.png", "mine/sample_000000.png")]),
    Probe("--interp-steps 0", ["gan", "sample", "--gan", "gan", "--out", "s", "--interp-steps", "0"], [GAN],
          expect=(2,)),
    Probe("--interp-rows -1", ["gan", "sample", "--gan", "gan", "--out", "s", "--n", "2", "--interp-rows", "-1"],
          [GAN], expect=(2,)),
    Probe("--truncation nan", ["gan", "sample", "--gan", "gan", "--out", "s", "--n", "2", "--truncation", "nan"],
          [GAN], expect=(2,)),

    # gan fid --------------------------------------------------------------------------------------
    Probe("--n 1", ["gan", "fid", "--gan", "gan", "--data", "fs", "--n", "1", *T1], [GAN, FS], expect=(2,)),
    Probe("--snapshots without snapshots", ["gan", "fid", "--gan", "gan", "--data", "fs", "--n", "2", "--snapshots",
                                            *T1], [GAN, FS], expect=(2,)),
    Probe("--json a folder", ["gan", "fid", "--gan", "gan", "--data", "fs", "--n", "2", "--max-ref", "2",
                              "--json", "results", *T1], [GAN, FS, mkdir("results")], expect=(2,)),
    Probe("--max-ref 0", ["gan", "fid", "--gan", "gan", "--data", "fs", "--n", "2", "--max-ref", "0", *T1],
          [GAN, FS], expect=(2,)),

    # gan invert -----------------------------------------------------------------------------------
    Probe("--faces faceset.json a JSON list", ["gan", "invert", "--gan", "gan", "--faces", "fs", "--out", "inv",
                                               *T1, *Q], [GAN, FS, write("fs/faceset.json", "[]")], expect=(2,)),
    Probe("--out equal to --faces", ["gan", "invert", "--gan", "gan", "--faces", "fs", "--out", "fs", *T1, *Q],
          [GAN, FS], expect=(2,), fast=True),
    Probe("--out an existing file", ["gan", "invert", "--gan", "gan", "--faces", "fs", "--out", "notes.txt",
                                     *T1, *Q], [GAN, FS, write("notes.txt", "my notes\n")], expect=(2,)),
    Probe("--steps 0", ["gan", "invert", "--gan", "gan", "--faces", "fs", "--out", "inv", "--steps", "0", *T1, *Q],
          [GAN, FS], expect=(2,)),
    Probe("--lr nan", ["gan", "invert", "--gan", "gan", "--faces", "fs", "--out", "inv", "--lr", "nan",
                       "--steps", "1", "--pti-steps", "0", "--landmark-steps", "0", "--w-identity", "0", *T1, *Q],
          [GAN, FS], expect=(2,)),

    # gan directions -------------------------------------------------------------------------------
    Probe("--n 0", ["gan", "directions", "--gan", "gan", "--n", "0", "--no-pose-regressor", *T1, *Q], [GAN],
          expect=(2,)),
    Probe("--around a faceset", ["gan", "directions", "--gan", "gan", "--around", "fs", "--n", "50", *T1, *Q],
          [GAN, FS], expect=(2,)),
    Probe("--out an existing folder", ["gan", "directions", "--gan", "gan", "--out", "mine.safetensors", "--n",
                                       "50", "--no-pose-regressor", *T1, *Q],
          [GAN, write("mine.safetensors/notes.txt", "x")], expect=(2,)),
    Probe("--out an existing file of the user's", ["gan", "directions", "--gan", "gan", "--out", "model.safetensors",
                                                  "--n", "50", "--no-pose-regressor", *T1, *Q],
          [GAN, copy("model/model.safetensors", "model.safetensors")], expect=(2,), fast=True),
    Probe("--truncation nan", ["gan", "directions", "--gan", "gan", "--n", "8", "--truncation", "nan",
                               "--no-pose-regressor", *T1, *Q], [GAN], expect=(2,)),

    # synthesize -----------------------------------------------------------------------------------
    Probe("gan engine without --inversion", ["synthesize", "--out", "syn", "--n", "1", *T1, *Q], expect=(2,),
          fast=True),
    Probe("--directions corrupt", ["synthesize", "--inversion", "inv", "--faces", "fs", "--directions", "d.bin",
                                   "--out", "syn", "--n", "1", *T1, *Q], [INV, FS, garbage("d.bin")], expect=(2,)),
    Probe("--faces row with an absolute image path (warp)", _warp("--faces", "fs", "--out", "syn"),
          [FS, PHOTO, edit_rows("fs", lambda rows: rows[0].update(image="/etc/passwd"))], expect=(2,)),
    Probe("--size 17", _warp("--faces", "fs", "--out", "syn", "--size", "17"), [FS], expect=(2,)),
    Probe("--out equal to --faces", _warp("--faces", "fs", "--out", "fs"), [FS], expect=(2,), fast=True),
    Probe("--out an existing faceset", _warp("--faces", "fs", "--out", "fs2"), [FS, copy("fs", "fs2")],
          expect=(2,)),
    Probe("--min-identity nan", _warp("--faces", "fs", "--out", "syn", "--min-identity", "nan"), [FS],
          expect=(2,)),
    Probe("--eps -1", _warp("--faces", "fs", "--out", "syn", "--eps", "-1"), [FS], expect=(2,)),
    Probe("--identity-steps -1", ["synthesize", "--inversion", "inv", "--faces", "fs", "--out", "syn", "--n", "1",
                                  "--max-attempts", "1", "--identity-steps", "-1", *T1, *Q], [INV, FS], expect=(2,)),
    Probe("--out in a read-only folder", _warp("--faces", "fs", "--out", "ro/syn"), [FS, mkdir("ro")],
          readonly=["ro"]),

    # coverage -------------------------------------------------------------------------------------
    Probe("--dest missing", ["coverage", "--dest", "nofs", "--train", "fs"], [FS], expect=(2,), fast=True),
    Probe("--train a file", ["coverage", "--dest", "fs", "--train", "photo.png"], [FS, PHOTO], expect=(2,),
          fast=True),
    Probe("--dest faceset without rows", ["coverage", "--dest", "fs", "--train", "fs2"],
          [FS, copy("fs", "fs2"), write("fs/faces.jsonl", "")], expect=(2,), fast=True),
    Probe("--eps -1", ["coverage", "--dest", "fs", "--train", "fs", "--eps", "-1"], [FS], expect=(2,), fast=True),
    Probe("--eps nan", ["coverage", "--dest", "fs", "--train", "fs", "--eps", "nan"], [FS], expect=(2,), fast=True),

    # swap train -----------------------------------------------------------------------------------
    Probe("no --src", ["swap", "train", "--dst", "fs", "--out", "m", "--steps", "1", *SWAP_TINY], [FS], expect=(2,)),
    Probe("--steps -5", ["swap", "train", "--src", "fs", "--dst", "fs", "--out", "m", "--steps", "-5", *SWAP_TINY],
          [FS], expect=(2,)),
    Probe("--e-dims 10000000", ["swap", "train", "--src", "fs", "--dst", "fs", "--out", "m", "--steps", "1",
                                *SWAP_TINY, "--e-dims", "10000000"], [FS], expect=(2,)),
    Probe("--lr nan", ["swap", "train", "--src", "fs", "--dst", "fs", "--out", "m", "--steps", "1", *SWAP_TINY,
                       "--lr", "nan"], [FS], expect=(2,)),
    Probe("--src-weights -1", ["swap", "train", "--src", "fs", "--src-weights", "-1", "--dst", "fs", "--out", "m",
                               "--steps", "1", *SWAP_TINY], [FS], expect=(2,)),
    Probe("--log-every 0", ["swap", "train", "--src", "fs", "--dst", "fs", "--out", "m", "--steps", "1",
                            *SWAP_TINY, "--log-every", "0"], [FS], expect=(2,)),
    Probe("--out equal to --src", ["swap", "train", "--src", "fs", "--dst", "fs", "--out", "fs", "--steps", "1",
                                   *SWAP_TINY], [FS], expect=(2,)),
    Probe("--out an existing model, no --resume", ["swap", "train", "--src", "fs", "--dst", "fs", "--out", "model",
                                                   "--steps", "2", *SWAP_TINY], [FS, MODEL], expect=(2,)),
    Probe("--resume without a model", ["swap", "train", "--out", "m", "--resume", "--steps", "2", *SWAP_TINY],
          [mkdir("m")], expect=(2,)),
    Probe("--init model.json asking for huge widths", ["swap", "train", "--src", "fs", "--dst", "fs", "--out", "m",
                                                       "--init", "model", "--steps", "1", *SWAP_TINY],
          [FS, MODEL, edit_json("model/model.json", huge_widths)], expect=(2,), fast=True),
    Probe("--out in a read-only folder", ["swap", "train", "--src", "fs", "--dst", "fs", "--out", "ro/m",
                                          "--steps", "1", *SWAP_TINY], [FS, mkdir("ro")], readonly=["ro"]),
    Probe("--out locked by another writer", ["swap", "train", "--out", "model", "--resume", "--steps", "2",
                                             *SWAP_TINY], [FS, MODEL], expect=(2,), lock=["model"]),

    # swap convert ---------------------------------------------------------------------------------
    Probe("--model missing", _convert("--model", "nomodel", "--video", "short.mp4", "--out", "o.mp4"), [SHORT],
          expect=(2,), fast=True),
    Probe("--model corrupt checkpoint", _convert("--model", "model", "--video", "short.mp4", "--out", "o.mp4"),
          [MODEL, SHORT, garbage("model/model.safetensors")], expect=(2,), fast=True),
    Probe("--model model.json asking for huge widths",
          _convert("--model", "model", "--video", "short.mp4", "--out", "o.mp4"),
          [MODEL, SHORT, edit_json("model/model.json", huge_widths)], expect=(2,)),
    Probe("--video a text file", _convert("--model", "model", "--video", "fake.mp4", "--out", "o.mp4"),
          [MODEL, write("fake.mp4", "not a video\n" * 50)], expect=(2,)),
    Probe("--out equal to --video", _convert("--model", "model", "--video", "short.mp4", "--out", "short.mp4"),
          [MODEL, SHORT], expect=(2,), fast=True),
    Probe("--out an existing video of the user's",
          _convert("--model", "model", "--video", "short.mp4", "--out", "mine.mp4"),
          [MODEL, SHORT, copy("short.mp4", "mine.mp4")], expect=(2,)),
    Probe("--out an existing folder", _convert("--model", "model", "--video", "short.mp4", "--out", "mine"),
          [MODEL, SHORT, write("mine/notes.txt", "x")], expect=(2,)),
    Probe("--images with --out equal", _convert("--model", "model", "--images", "photos", "--out", "photos"),
          [MODEL, copy("photos")], expect=(2,), fast=True),
    Probe("--images into a folder holding the user's photo.png",
          _convert("--model", "model", "--images", "photos", "--out", "mine"),
          [MODEL, copy("photos"), copy("photo2.png", "mine/photo.png")], expect=(2,)),
    Probe("--crf 99", _convert("--model", "model", "--video", "short.mp4", "--out", "o.mp4", "--crf", "99"),
          [MODEL, SHORT], expect=(2,)),
    Probe("--erode nan", _convert("--model", "model", "--video", "short.mp4", "--out", "o.mp4", "--erode", "nan"),
          [MODEL, SHORT], expect=(2,)),
    Probe("--out in a read-only folder", _convert("--model", "model", "--video", "short.mp4", "--out", "ro/o.mp4"),
          [MODEL, SHORT, mkdir("ro")], readonly=["ro"]),
    Probe("--model whose weights are all NaN", _convert("--model", "model", "--video", "short.mp4", "--out", "o.mp4"),
          [MODEL, SHORT, nan_weights("model/model.safetensors")], expect=(2,), fast=True),
    Probe("--model model.json naming another architecture",
          _convert("--model", "model", "--video", "short.mp4", "--out", "o.mp4"),
          [MODEL, SHORT, edit_json("model/model.json", lambda d: d["config"].update(arch="liae"))], expect=(2,)),
    Probe("--face 0", _convert("--model", "model", "--video", "short.mp4", "--out", "o.mp4", "--face", "0"),
          [MODEL, SHORT], expect=(2,)),
    Probe("--face a photo that is not there",
          _convert("--model", "model", "--video", "short.mp4", "--out", "o.mp4", "--face", "nobody.jpg"),
          [MODEL, SHORT], expect=(2,)),

    # pretrain -------------------------------------------------------------------------------------
    Probe("no --data", ["pretrain", "--out", "m", "--steps", "1", *SWAP_TINY], expect=(2,)),
    Probe("--steps 0", ["pretrain", "--data", "fs", "--out", "m", "--steps", "0", *SWAP_TINY], [FS], expect=(2,)),
    Probe("--resolution 17", ["pretrain", "--data", "fs", "--out", "m", "--steps", "1", *SWAP_TINY,
                              "--resolution", "17"], [FS], expect=(2,)),
    Probe("--out equal to --data", ["pretrain", "--data", "fs", "--out", "fs", "--steps", "1", *SWAP_TINY], [FS],
          expect=(2,)),

    # export-weights -------------------------------------------------------------------------------
    Probe("neither --swap nor --gan", ["export-weights", "--out", "w"], expect=(2,), fast=True),
    Probe("--swap missing", ["export-weights", "--swap", "nomodel", "--out", "w"], expect=(2,)),
    Probe("--gan corrupt checkpoint", ["export-weights", "--gan", "gan", "--out", "w"],
          [GAN, garbage("gan/checkpoint.safetensors")], expect=(2,)),
    Probe("--swap a GAN folder", ["export-weights", "--swap", "gan", "--out", "w"], [GAN], expect=(2,)),
    Probe("--out an existing file", ["export-weights", "--swap", "model", "--out", "notes.txt"],
          [MODEL, write("notes.txt", "my notes\n")], expect=(1,)),

    # evaluate -------------------------------------------------------------------------------------
    Probe("--video missing", _evaluate("--video", "no.mp4", "--source", "short.mp4", "--subject", "fs"),
          [SHORT, FS], expect=(1,), fast=True),
    Probe("--subject a video", _evaluate("--video", "short.mp4", "--source", "short.mp4", "--subject",
                                         "short.mp4"), [SHORT], expect=(1,)),
    Probe("--out in a missing folder", _evaluate("--video", "short.mp4", "--source", "short.mp4", "--subject", "fs",
                                                 "--out", "nodir/e"), [SHORT, FS], expect=(1,), fast=True),
    Probe("--out in a read-only folder", _evaluate("--video", "short.mp4", "--source", "short.mp4", "--subject",
                                                   "fs", "--out", "ro/e"), [SHORT, FS, mkdir("ro")],
          expect=(1,), readonly=["ro"]),
    Probe("output of another length than the source",
          _evaluate("--video", "one_frame.mp4", "--source", "short.mp4", "--subject", "fs"),
          [copy("one_frame.mp4"), SHORT, FS], expect=(1,)),
    Probe("--out naming the user's e.json", _evaluate("--video", "short.mp4", "--source", "short.mp4", "--subject",
                                                     "fs", "--out", "e"),
          [SHORT, FS, write("e.json", '{"my": "data"}\n')], expect=(1,), fast=True),
    Probe("--max-frames 0", _evaluate("--video", "short.mp4", "--source", "short.mp4", "--subject", "fs",
                                      "--max-frames", "0"), [SHORT, FS], expect=(1, 2)),
    Probe("--dlib-every -1", ["evaluate", "--video", "short.mp4", "--source", "short.mp4", "--subject", "fs",
                              "--dlib-every", "-1", "--no-fid", "--max-frames", "1", *Q], [SHORT, FS],
          expect=(1, 2)),

    # verify, serve ---------------------------------------------------------------------------------
    Probe("missing file", ["verify", "missing.mp4"], expect=(2,), fast=True),
    Probe("text file named .mp4", ["verify", "fake.mp4"], [write("fake.mp4", "not a video")], expect=(2,),
          fast=True),
    Probe("truncated MP4", ["verify", "short.mp4"], [SHORT, truncate("short.mp4")], expect=(2,)),
    Probe("PNG declaring 144 megapixels in 100 bytes", ["verify", "big.png"], [copy("big.png")], expect=(2,)),
    Probe("--port 0", ["serve", "--port", "0", "--data", "data"], expect=(2,), fast=True),
    Probe("another host without --allow-remote", ["serve", "--host", "0.0.0.0", "--data", "data"], expect=(2,),
          fast=True),
    Probe("--media not a folder", ["serve", "--media", "notes.txt", "--data", "data"],
          [write("notes.txt", "my notes")], expect=(2,)),

    # run ------------------------------------------------------------------------------------------
    Probe("--out equal to --video", ["run", "--subject", "photo.png", "--video", "short.mp4", "--out", "short.mp4",
                                     *RUN_TINY], [PHOTO, SHORT], expect=(1,), fast=True),
    Probe("--out a folder of the user's files", ["run", "--subject", "photo.png", "--video", "short.mp4", "--out",
                                                 "mine", *RUN_TINY], [PHOTO, SHORT, write("mine/notes.txt", "x")],
          expect=(1,), fast=True),
    Probe("--work holding the subject's photos", ["run", "--subject", "w/photos", "--video", "short.mp4", "--out",
                                                  "o.mp4", "--work", "w", *RUN_TINY],
          [copy("photos", "w/photos"), SHORT], expect=(1,), fast=True),
    Probe("--out an existing video of the user's", ["run", "--subject", "photo.png", "--video", "short.mp4",
                                                   "--out", "mine.mp4", *RUN_TINY],
          [PHOTO, SHORT, copy("short.mp4", "mine.mp4")], expect=(1,), fast=True),
    Probe("--out beside the user's o_report.md and o_report_frames.png",
          ["run", "--subject", "photo.png", "--video", "short.mp4", "--out", "o.mp4", *RUN_TINY],
          [PHOTO, SHORT, write("o_report.md", "# my report\n"), copy("photo2.png", "o_report_frames.png")],
          expect=(1,)),
    Probe("--work a folder holding the user's evaluation.json",
          ["run", "--subject", "photo.png", "--video", "short.mp4", "--out", "o.mp4", "--work", "mine", *RUN_TINY],
          [PHOTO, SHORT, write("mine/evaluation.json", '{"my": "results"}\n')], expect=(1,)),
    Probe("--video zero bytes", ["run", "--subject", "photo.png", "--video", "empty.mp4", "--out", "o.mp4",
                                 *RUN_TINY], [PHOTO, write("empty.mp4", b"")], expect=(1,)),
    Probe("--video a photo", ["run", "--subject", "photo.png", "--video", "photo2.png", "--out", "o.mp4",
                              *RUN_TINY], [PHOTO, copy("photo2.png")], expect=(1,)),
    Probe("--device gpu", ["run", "--subject", "photo.png", "--video", "short.mp4", "--out", "o.mp4", *RUN_TINY,
                           "--device", "gpu"], [PHOTO, SHORT], expect=(2,)),
    Probe("--device cuda on a machine without CUDA" + " (this one has CUDA: it runs)" * HAS_CUDA,
          ["run", "--subject", "photo.png", "--video", "short.mp4", "--out", "o.mp4", *RUN_TINY, "--device", "cuda"],
          [PHOTO, SHORT], expect=(0,) if HAS_CUDA else (2,)),
    Probe("--synthetic -1", ["run", "--subject", "photo.png", "--video", "short.mp4", "--out", "o.mp4", *RUN_TINY,
                             "--synthetic", "-1"], [PHOTO, SHORT], expect=(2,)),
    Probe("--size 17", ["run", "--subject", "photo.png", "--video", "short.mp4", "--out", "o.mp4", *RUN_TINY,
                        "--size", "17"], [PHOTO, SHORT], expect=(2,)),
    Probe("--invert-steps -1", ["run", "--subject", "photo.png", "--video", "short.mp4", "--out", "o.mp4",
                                *RUN_TINY, "--engine", "gan", "--gan", "gan", "--synthetic", "1",
                                "--invert-steps", "-1"], [PHOTO, SHORT, GAN], expect=(2,)),
    Probe("--video a truncated fast-start MP4 (its header claims every frame)",
          ["run", "--subject", "photo.png", "--video", "faststart.mp4", "--out", "o.mp4", *RUN_TINY],
          [PHOTO, copy("faststart.mp4"), truncate("faststart.mp4", 0.6)], expect=(1,), fast=True),
    Probe("--face a photo without a face", ["run", "--subject", "photo.png", "--video", "short.mp4", "--out", "o.mp4",
                                            *RUN_TINY, "--face", "grey.png"],
          [PHOTO, SHORT, copy("grey.png")], expect=(1,)),
    Probe("--swap-init missing", ["run", "--subject", "photo.png", "--video", "short.mp4", "--out", "o.mp4",
                                  *RUN_TINY, "--swap-init", "nomodel"], [PHOTO, SHORT], expect=(1,)),
    Probe("--work locked by another run", ["run", "--subject", "photo.png", "--video", "short.mp4", "--out",
                                           "o.mp4", "--work", "w", *RUN_TINY], [PHOTO, SHORT, mkdir("w")],
          expect=(1,), lock=["w"]),

    # study ----------------------------------------------------------------------------------------
    Probe("--dest zero bytes", ["study", "--subject", "short.mp4", "--dest", "empty.mp4", "--out", "st",
                                *STUDY_TINY], [SHORT, write("empty.mp4", b"")], expect=(1,)),
    Probe("--k 0", ["study", "--subject", "short.mp4", "--dest", "video.mpg", "--out", "st", *STUDY_TINY,
                    "--k", "0"], [SHORT, VIDEO], expect=(1, 2)),
    Probe("--engines unknown", ["study", "--subject", "short.mp4", "--dest", "video.mpg", "--out", "st",
                                *STUDY_TINY, "--engines", "magic"], [SHORT, VIDEO], expect=(1, 2)),
    Probe("--out equal to --subject", ["study", "--subject", "short.mp4", "--dest", "video.mpg", "--out",
                                       "short.mp4", *STUDY_TINY], [SHORT, VIDEO], expect=(1, 2)),
    Probe("--out an existing file", ["study", "--subject", "short.mp4", "--dest", "video.mpg", "--out", "notes.txt",
                                     *STUDY_TINY], [SHORT, VIDEO, write("notes.txt", "my notes\n")], expect=(1, 2)),
    Probe("--swap-steps 0", ["study", "--subject", "short.mp4", "--dest", "video.mpg", "--out", "st", *STUDY_TINY,
                             "--swap-steps", "0"], [SHORT, VIDEO], expect=(1, 2)),
    Probe("--device gpu", ["study", "--subject", "short.mp4", "--dest", "video.mpg", "--out", "st", *STUDY_TINY,
                           "--device", "gpu"], [SHORT, VIDEO], expect=(2,)),

    # demo -----------------------------------------------------------------------------------------
    Probe("--out an existing file", ["demo", "--out", "notes.txt", *DEMO_TINY], [write("notes.txt", "my notes\n")],
          expect=(1, 2), fast=True),
    Probe("--out in a read-only folder", ["demo", "--out", "ro/demo", *DEMO_TINY], [mkdir("ro")], expect=(1, 2),
          readonly=["ro"]),
    Probe("--out holding the user's out.mp4", ["demo", "--out", "mine", *DEMO_TINY],
          [copy("short.mp4", "mine/out.mp4")], expect=(1,)),
    Probe("--device gpu", ["demo", "--out", "d", *DEMO_TINY, "--device", "gpu"], expect=(2,)),
    Probe("--swap-minutes -1", ["demo", "--out", "d", *DEMO_TINY, "--swap-minutes", "-1"], expect=(2,)),

    # enhance --------------------------------------------------------------------------------------
    Probe("apply: input missing", ["enhance", "apply", "nowhere", "--out", "big"], expect=(2,), fast=True),
    Probe("train: no --data", ["enhance", "train", "--out", "enh", "--steps", "1"], expect=(2,), fast=True),
]


# --- running a probe ----------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder` (links by their target), the lock file left out."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.name == LOCK_FILE:
            continue
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@dataclass
class Result:
    probe: Probe
    exit: int | None  # None: timed out
    traceback: bool
    error_lines: list[str]
    lost: list[str]  # the user's files changed or gone
    seconds: float
    stderr: str = field(repr=False, default="")

    @property
    def one_error_line(self) -> bool:
        return len(self.error_lines) == 1

    @property
    def expected_exit(self) -> bool:
        return self.exit in self.probe.expect

    @property
    def ok(self) -> bool:
        """What tests/test_bad_inputs.py asserts."""
        clean = not self.traceback and not self.lost and self.expected_exit
        return clean and (self.one_error_line if self.exit else not self.error_lines)


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore")


def _unprivileged() -> list[str]:
    """Root writes anywhere: run without the capabilities that let it (as tests/test_faceset_safety.py)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        raise RuntimeError("running as root and setpriv (util-linux) is missing to drop CAP_DAC_OVERRIDE")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


def _run_subprocess(probe: Probe, folder: Path) -> tuple[int | None, str]:
    prefix = _unprivileged() if probe.readonly else []
    try:
        proc = subprocess.run([*prefix, sys.executable, "-m", "synthswap", *probe.args], cwd=folder, env=_env(),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=probe.timeout)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return None, err
    return proc.returncode, proc.stderr


def _run_in_process(probe: Probe, folder: Path) -> tuple[int | None, str]:
    """The same command through `synthswap.cli.main` in this process (for the fast test subset)."""
    from synthswap.cli import main

    if probe.readonly:
        raise ValueError(f"{probe.name}: read-only probes need a process without root's override")
    err, cwd = io.StringIO(), os.getcwd()
    os.chdir(folder)
    try:
        with redirect_stderr(err), redirect_stdout(io.StringIO()):
            try:
                code = main(list(probe.args))
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001 - what the interpreter would print, then exit 1
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(cwd)
    return code, err.getvalue()


def run_probe(probe: Probe, materials: Materials, folder: Path, in_process: bool = False) -> Result:
    folder.mkdir(parents=True)
    for step in probe.setup:
        step(folder, materials)
    before = snapshot(folder)
    for rel in probe.readonly:
        for path in [folder / rel, *(folder / rel).rglob("*")]:
            if path.is_dir():
                path.chmod(0o555)
    with ExitStack() as stack:
        if probe.lock:
            from synthswap.locking import exclusive_lock
            for rel in probe.lock:  # this process is "the other writer"
                stack.enter_context(exclusive_lock(folder / rel))
        start = time.monotonic()
        code, err = (_run_in_process if in_process else _run_subprocess)(probe, folder)
        seconds = time.monotonic() - start
    for rel in probe.readonly:
        for path in [folder / rel, *(folder / rel).rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
    after = snapshot(folder)
    lost = [rel for rel, digest in before.items() if after.get(rel) != digest and rel not in probe.may_change]
    return Result(probe, code, TRACEBACK in err, [line for line in err.splitlines() if ERROR_LINE.match(line)],
                  lost, seconds, err)


# --- the report ---------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _message(result: Result, folder: Path) -> str:
    if result.exit is None:
        return "(timed out)"
    if result.traceback:
        last = [line for line in result.stderr.strip().splitlines() if line.strip()]
        return "traceback: " + (last[-1] if last else "")
    text = result.error_lines[0] if result.error_lines else ""
    text = text.replace(str(folder) + "/", "").replace(str(folder), ".")
    return text if len(text) <= 110 else text[:107] + "..."


def table(results: list[Result], root: Path) -> str:
    lines = ["| # | command | probe | exit | one error line? | traceback? | user files intact? | message |",
             "| ---: | --- | --- | ---: | --- | --- | --- | --- |"]
    for i, r in enumerate(results, 1):
        exit_text = "timeout" if r.exit is None else str(r.exit) + ("" if r.expected_exit else " (!)")
        one = ("yes" if r.one_error_line else f"no ({len(r.error_lines)})") if r.exit else \
            ("-" if not r.error_lines else f"no ({len(r.error_lines)})")
        intact = "yes" if not r.lost else "**no**: " + ", ".join(r.lost[:3])
        lines.append(f"| {i} | `{r.probe.command}` | {_cell(r.probe.name)} | {exit_text} | {one} | "
                     f"{'**yes**' if r.traceback else 'no'} | {intact} | "
                     f"{_cell(_message(r, root / f'{i:03d}'))} |")
    return "\n".join(lines)


def totals(results: list[Result]) -> dict[str, int]:
    return {
        "probes": len(results),
        "data losses": sum(bool(r.lost) for r in results),
        "tracebacks": sum(r.traceback for r in results),
        "not exactly one error line": sum(bool(r.exit) and not r.one_error_line for r in results),
        "undocumented exit codes": sum(r.exit is not None and not r.expected_exit for r in results),
        "timeouts": sum(r.exit is None for r in results),
        "commands": len({r.probe.command for r in results}),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="also write the Markdown report to this file")
    p.add_argument("--jobs", type=int, default=2, help="probes run at once (default 2)")
    p.add_argument("--only", action="append", metavar="GLOB",
                   help="run only probes whose 'command: name' matches this glob (repeatable)")
    p.add_argument("--fast", action="store_true", help="only the probes tests/test_bad_inputs.py runs")
    p.add_argument("--work", help="folder for materials and probe folders (default: a temporary one, removed)")
    p.add_argument("--keep", action="store_true", help="keep the probe folders")
    p.add_argument("--shared-data", default=str(SHARED_DATA), help=f"real data (default {SHARED_DATA})")
    args = p.parse_args(argv)

    probes = [pr for pr in PROBES if (not args.fast or pr.fast) and
              (not args.only or any(fnmatch.fnmatch(f"{pr.command}: {pr.name}", g) for g in args.only))]
    root = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="synthswap_probes_"))
    materials = Materials(root / "materials", Path(args.shared_data))
    runs = root / "runs"
    if runs.exists():
        shutil.rmtree(runs)
    start = time.monotonic()
    # Materials first (in this process), so probes running side by side do not race to make them.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(f"making inputs in {materials.root} ...", file=sys.stderr, flush=True)
    for probe in probes:
        scratch = root / "scratch"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        for step in probe.setup:
            step(scratch, materials)
        shutil.rmtree(scratch)
    made = time.monotonic() - start

    def one(item: tuple[int, Probe]) -> Result:
        i, probe = item
        result = run_probe(probe, materials, runs / f"{i:03d}")
        flag = " TRACEBACK" * result.traceback + " DATA LOSS" * bool(result.lost) + \
            " (exit not documented)" * (not result.expected_exit)
        print(f"[{i:3d}/{len(probes)}] {probe.command}: {probe.name}: exit {result.exit}, "
              f"{result.seconds:.0f} s{flag}", file=sys.stderr, flush=True)
        return result

    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        results = list(pool.map(one, enumerate(probes, 1)))
    elapsed = time.monotonic() - start
    t = totals(results)
    report = "\n".join([
        f"**{t['probes']} probes over {t['commands']} commands: {t['data losses']} data losses, "
        f"{t['tracebacks']} tracebacks**; {t['not exactly one error line']} refusals without exactly one "
        f"`error:` line, {t['undocumented exit codes']} undocumented exit codes, {t['timeouts']} timeouts.",
        "",
        f"Measured with `{shlex.join(['python', 'benchmarks/probe_bad_inputs.py', *(argv or sys.argv[1:])])}` in "
        f"{elapsed / 60:.1f} min (inputs made in {made:.0f} s; --jobs {args.jobs}; "
        f"load average {os.getloadavg()[0]:.1f} at the end).",
        "",
        table(results, runs),
        "",
    ])
    print(report)
    if args.out:
        Path(args.out).write_text(report)
    if not args.keep and not args.work:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if not (t["data losses"] or t["tracebacks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
