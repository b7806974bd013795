"""Pieces every trainer shares: device choice, safetensors checkpoints, DDP, stop signals, logs.

Checkpoints hold tensors only (safetensors: loading never executes code). Optimizer
state is flattened to named tensors, and everything that is not a tensor (step,
hyper-parameters of the param groups, counters) travels as JSON in the file's
metadata. Files are written to a temporary name and renamed, so a crash mid-write
leaves the previous checkpoint intact.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as dist
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from synthswap import __version__
from synthswap.atomic import temp_path
from synthswap.precision import Precision, resolve_precision


class CheckpointError(Exception):
    """A checkpoint that is missing, corrupt, truncated or does not fit the model."""


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but this machine has no CUDA device")
    return torch.device(name)


def autocast(device: torch.device, precision: str | Precision = "auto"):
    """The autocast context for networks' forward passes on `device`: bf16 where it is faster
    (see synthswap.precision), otherwise a no-op."""
    if isinstance(precision, str):
        precision = resolve_precision(precision, device)
    return precision.autocast()


def atomic_save_tensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    try:
        save_file(tensors, str(tmp), metadata={"synthswap": json.dumps(metadata)})
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # like any file the user writes (the library creates it private)
        os.replace(tmp, path)
    except BaseException:  # a failed or interrupted write leaves no temporary file behind
        tmp.unlink(missing_ok=True)
        raise


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads((fh.metadata() or {}).get("synthswap", "{}"))
    except (SafetensorError, OSError, json.JSONDecodeError, ValueError) as exc:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({exc})") from exc
    return tensors, meta


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _unwrap(module: torch.nn.Module) -> torch.nn.Module:
    return module.module if isinstance(module, torch.nn.parallel.DistributedDataParallel) else module


def save_checkpoint(
    path: str | os.PathLike,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer] | None = None,
    state: dict[str, Any] | None = None,
) -> None:
    """Modules' weights, optimizers' state and a JSON-able `state` in one safetensors file."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for key, value in _unwrap(module).state_dict().items():
            tensors[f"model.{name}.{key}"] = value
    opt_meta = {}
    for name, opt in (optimizers or {}).items():
        sd = opt.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for pid, pstate in sd["state"].items():
            for key, value in pstate.items():
                if torch.is_tensor(value):
                    tensors[f"optim.{name}.{pid}.{key}"] = value
                else:
                    scalars.setdefault(str(pid), {})[key] = value
        opt_meta[name] = {"param_groups": sd["param_groups"], "scalars": scalars}
    atomic_save_tensors(tensors, path, {"state": state or {}, "optimizers": opt_meta})


def load_checkpoint(
    path: str | os.PathLike,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer] | None = None,
    map_location: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Restore what `save_checkpoint` wrote; returns its `state`. Raises CheckpointError on mismatch."""
    tensors, meta = load_tensors(path)
    for name, module in modules.items():
        prefix = f"model.{name}."
        sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not sd:
            raise CheckpointError(f"{path}: holds no weights for '{name}'")
        try:
            _unwrap(module).load_state_dict(sd)
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: weights for '{name}' do not fit this model ({exc})") from exc
    for name, opt in (optimizers or {}).items():
        if name not in meta.get("optimizers", {}):
            raise CheckpointError(f"{path}: holds no optimizer state for '{name}'")
        ometa = meta["optimizers"][name]
        prefix = f"optim.{name}."
        state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith(prefix):
                pid, field = key[len(prefix):].split(".", 1)
                state.setdefault(int(pid), {})[field] = value.to(map_location)
        for pid, scalars in ometa["scalars"].items():
            state.setdefault(int(pid), {}).update(scalars)
        opt.load_state_dict({"state": state, "param_groups": ometa["param_groups"]})
    return meta.get("state", {})


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_name: str = "auto") -> tuple[DistInfo, torch.device]:
    """Join the process group that torchrun describes (NCCL on GPU, gloo on CPU), if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistInfo(), resolve_device(device_name)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank, world_size, local_rank), device


def cleanup_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag the training loop polls, so it can checkpoint and exit."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handler(self, signum, frame) -> None:  # noqa: ARG002 - signal API
        self.requested = True

    @contextmanager
    def installed(self) -> Iterator["StopRequest"]:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handler)
        try:
            yield self
        finally:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)


class Budget:
    """A step budget and/or a wall-clock budget; whichever runs out first ends training."""

    def __init__(self, steps: int | None = None, minutes: float | None = None):
        if steps is None and minutes is None:
            raise ValueError("give a step budget, a time budget, or both")
        self.steps = steps
        self.deadline = None if minutes is None else time.monotonic() + minutes * 60

    def done(self, step: int) -> bool:
        if self.steps is not None and step >= self.steps:
            return True
        return self.deadline is not None and time.monotonic() >= self.deadline


class CsvLog:
    """Append-only metrics log (one row per logged step); survives resume by appending."""

    def __init__(self, path: str | os.PathLike, fields: list[str]):
        self.path = Path(path)
        new = not self.path.exists() or self.path.stat().st_size == 0
        if not new:
            # A log begun by an older version keeps its columns: rows must line up with its header.
            with open(self.path, newline="", encoding="utf-8") as fh:
                fields = next(csv.reader(fh), None) or fields
        self.fields = fields
        self._fh = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._fh, fieldnames=fields, extrasaction="ignore")
        if new:
            self._writer.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        self._writer.writerow(row)
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def library_versions() -> dict[str, str]:
    return {"synthswap": __version__, "torch": torch.__version__}
