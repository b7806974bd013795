"""Pieces every trainer shares: device choice, safetensors checkpoints, DDP, stop signals, logs.

Checkpoints hold tensors only (safetensors: loading never executes code). Optimizer
state is flattened to named tensors, and everything that is not a tensor (step,
hyper-parameters of the param groups, counters) travels as JSON in the file's
metadata. Files are written to a temporary name, read back and only then renamed, so a
crash or a full disk mid-write leaves the previous checkpoint intact; the one before that is
kept as NAME.prev, which a trainer resumes from when NAME is broken. Weights holding NaN or
infinity are never written, and never loaded.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import signal
import sys
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
from synthswap import atomic
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


def previous_version(path: str | os.PathLike) -> Path:
    """Where the checkpoint before `path`'s current one is kept (NAME.prev)."""
    path = Path(path)
    return path.with_name(path.name + ".prev")


def _verify_written(tmp: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Read the header back: every tensor there at its shape, and the file as long as the header says
    (safetensors checks that on open). A short write never replaces a good checkpoint."""
    with safe_open(str(tmp), framework="pt") as fh:
        written = {key: list(fh.get_slice(key).get_shape()) for key in fh.keys()}
    if written != {key: list(value.shape) for key, value in tensors.items()}:
        raise OSError(errno.EIO, "the checkpoint read back differs from what was written", str(tmp))


def atomic_save_tensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, Any],
                        max_bytes: int | None = None) -> list[str]:
    """Write the tensors to `path` atomically; with `max_bytes`, in as many files as keep each under it
    (`shard_names`; `path` names the others in its metadata and is written last). Returns the files."""
    path = Path(path)
    parts = _split(tensors, max_bytes) if max_bytes else [tensors]
    names = shard_names(path, len(parts))
    for name, part in list(zip(names, parts))[1:]:
        _atomic_save_one(part, path.parent / name, {})
    _atomic_save_one(parts[0], path, dict(metadata, **({SHARDS: names[1:]} if len(parts) > 1 else {})))
    return names


def _atomic_save_one(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    try:
        save_file(tensors, str(tmp), metadata={"synthswap": json.dumps(metadata)})
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # like any file the user writes (the library creates it private)
        _verify_written(tmp, tensors)
        if path.is_file():  # the current one becomes the fallback (a hard link: no copy, no moment without `path`)
            previous = previous_version(path)
            previous.unlink(missing_ok=True)
            try:
                os.link(path, previous)
            except OSError:
                pass  # a file system without hard links: no fallback, the write itself is still atomic
        os.replace(tmp, path)
    except SafetensorError as exc:  # the library's own error for a failed write (a full disk among them)
        tmp.unlink(missing_ok=True)
        code = errno.ENOSPC if "No space left" in str(exc) else errno.EIO
        raise OSError(code, f"{os.strerror(code)} (writing the checkpoint)", str(path)) from exc
    except BaseException:  # a failed or interrupted write leaves no temporary file behind
        tmp.unlink(missing_ok=True)
        raise


SHARDS = "shards"  # in a checkpoint's metadata: the files beside it that hold the rest of its tensors


def _read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads((fh.metadata() or {}).get("synthswap", "{}"))
    except (SafetensorError, OSError, json.JSONDecodeError, ValueError) as exc:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({exc})") from exc
    return tensors, meta


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A checkpoint's tensors and metadata; a checkpoint saved in shards (`atomic_save_tensors` with
    `max_bytes`) is read whole, its other files named in its metadata and found beside it."""
    path = Path(path)
    tensors, meta = _read_tensors(path)
    for name in meta.get(SHARDS, []):
        if not isinstance(name, str) or Path(name).name != name or not name.endswith(".safetensors"):
            raise CheckpointError(f"{path}: corrupt checkpoint (shard {name!r} is not a file name beside it)")
        part, _ = _read_tensors(path.parent / name)
        if part.keys() & tensors.keys():
            raise CheckpointError(f"{path}: corrupt checkpoint (shard {name} repeats tensors of another file)")
        tensors.update(part)
    return tensors, meta


def shard_names(path: str | os.PathLike, count: int) -> list[str]:
    """The files a checkpoint saved in `count` parts is made of: NAME.safetensors, NAME-2.safetensors..."""
    path = Path(path)
    return [path.name] + [f"{path.stem}-{i}{path.suffix}" for i in range(2, count + 1)]


def _split(tensors: dict[str, torch.Tensor], max_bytes: int) -> list[dict[str, torch.Tensor]]:
    """The tensors, in their order, in parts that each stay under `max_bytes` (less room for the
    file's header): aiming at equal parts, a part closes before the tensor that would take it past
    its share, so a large tensor can add a part."""
    sizes = {k: v.numel() * v.element_size() for k, v in tensors.items()}
    room = max_bytes - 64 * 1024  # the JSON header: names, shapes, offsets, metadata
    if max(sizes.values(), default=0) > room:
        raise ValueError(f"a single tensor is larger than {max_bytes} bytes; it cannot be sharded")
    count = max(1, -(-sum(sizes.values()) // room))
    while True:
        target = -(-sum(sizes.values()) // count)
        parts: list[dict[str, torch.Tensor]] = [{}]
        filled = 0
        for key, value in tensors.items():
            if filled + sizes[key] > target and parts[-1]:
                parts.append({})
                filled = 0
            parts[-1][key] = value
            filled += sizes[key]
        if all(sum(sizes[k] for k in part) <= room for part in parts):
            return parts
        count += 1


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
    """Modules' weights, optimizers' state and a JSON-able `state` in one safetensors file.

    Weights holding NaN or infinity (a diverged training) are refused with a CheckpointError:
    the last good checkpoint stays in place."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for key, value in _unwrap(module).state_dict().items():
            tensors[f"model.{name}.{key}"] = value
    bad = non_finite(tensors)
    if bad:
        raise CheckpointError(f"{path}: not saved: training diverged, {bad}; the last good checkpoint is kept "
                              f"(lower the learning rate and resume)")
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


def non_finite(tensors: dict[str, torch.Tensor]) -> str | None:
    """What holds NaN or infinity among floating-point `tensors`, in a few words; None when nothing does."""
    bad = [key for key, value in tensors.items() if value.is_floating_point() and not torch.isfinite(value).all()]
    if not bad:
        return None
    return f"NaN or infinite values in {len(bad)} of {len(tensors)} weight tensors (first: {bad[0]})"


def _mismatch(have: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> str | None:
    """How a checkpoint's weights differ from a model's, in one short phrase; None when they fit."""
    missing = [k for k in want if k not in have]
    unexpected = [k for k in have if k not in want]
    shapes = [k for k in want if k in have and tuple(have[k].shape) != tuple(want[k].shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensors missing (first: {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} not in the model (first: {unexpected[0]})")
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} of another shape (first: {k} is {list(have[k].shape)}, the model's "
                     f"{list(want[k].shape)})")
    return "; ".join(parts) or None


def load_checkpoint(
    path: str | os.PathLike,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer] | None = None,
    map_location: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Restore what `save_checkpoint` wrote; returns its `state`. Raises CheckpointError, in one line,
    when the file is broken, holds NaN or infinite weights, or does not fit the modules' architecture.

    A trainer resuming (`optimizers` given) falls back to the previous checkpoint (NAME.prev) when
    NAME is broken; a model loaded for use never does: it must be exactly the file whose hash
    the output records."""
    try:
        return _load_checkpoint(Path(path), modules, optimizers, map_location)
    except CheckpointError as exc:
        previous = previous_version(path)
        if optimizers is None or not previous.is_file():
            raise
        print(f"warning: {exc}; resuming from the checkpoint before it, {previous.name}", file=sys.stderr)
        return _load_checkpoint(previous, modules, optimizers, map_location)


def _load_checkpoint(path: Path, modules: dict[str, torch.nn.Module],
                     optimizers: dict[str, torch.optim.Optimizer] | None, map_location: torch.device | str
                     ) -> dict[str, Any]:
    tensors, meta = load_tensors(path)
    for name, module in modules.items():
        prefix = f"model.{name}."
        sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not sd:
            raise CheckpointError(f"{path}: holds no weights for '{name}'")
        bad = non_finite(sd)
        if bad:
            raise CheckpointError(f"{path}: unusable weights for '{name}': {bad}")
        mismatch = _mismatch(sd, _unwrap(module).state_dict())
        if mismatch:  # said in one line, not as PyTorch's list of every key
            raise CheckpointError(f"{path}: the weights for '{name}' do not fit this architecture: {mismatch} "
                                  f"(does its model.json describe the model it was trained as?)")
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


@contextmanager
def process_group(device_name: str = "auto") -> Iterator[tuple[DistInfo, torch.device]]:
    """`init_distributed` for the block, then leave the process group. When the block succeeds every
    rank first waits for the others, so that none tears its connections down while rank 0 still writes
    the model after the last collective (a rank that left first once died with SIGABRT in CI, failing
    the whole torchrun). When it raises nobody waits: the other ranks may never arrive."""
    dinfo, device = init_distributed(device_name)
    succeeded = False
    try:
        yield dinfo, device
        succeeded = True
    finally:
        if dist.is_initialized():
            if succeeded:
                dist.barrier()
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

    def __init__(self, steps: int | None = None, minutes: float | None = None, first_step: int = 0):
        if steps is None and minutes is None:
            raise ValueError("give a step budget, a time budget, or both")
        self.steps = steps
        self.first_step = first_step
        self.start = time.monotonic()
        self.deadline = None if minutes is None else self.start + minutes * 60

    def done(self, step: int) -> bool:
        if self.steps is not None and step >= self.steps:
            return True
        return self.deadline is not None and time.monotonic() >= self.deadline

    def progress(self, step: int) -> float:
        """How much of this run's budget is spent, 0-1: of its steps (from `first_step`) or of its
        minutes, whichever is further along."""
        spent = 0.0
        if self.steps is not None and self.steps > self.first_step:
            spent = (step - self.first_step) / (self.steps - self.first_step)
        if self.deadline is not None:
            spent = max(spent, (time.monotonic() - self.start) / max(self.deadline - self.start, 1e-9))
        return min(max(spent, 0.0), 1.0)


def annealed_lr(lr: float, progress: float, anneal: float, floor: float = 0.1) -> float:
    """`lr` until the last `anneal` of the budget, then falling linearly to `floor` x `lr` at its end."""
    if anneal <= 0 or progress <= 1.0 - anneal:
        return lr
    return lr * (1.0 - (1.0 - floor) * (progress - (1.0 - anneal)) / anneal)


class CsvLog:
    """Append-only metrics log (one row per logged step); survives resume by appending."""

    def __init__(self, path: str | os.PathLike, fields: list[str]):
        self.path = Path(path)
        new = not self.path.exists() or self.path.stat().st_size == 0
        if not new:
            fields = self._widen(fields)
        self.fields = fields
        self._fh = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._fh, fieldnames=fields, extrasaction="ignore")
        if new:
            self._writer.writeheader()

    def _widen(self, fields: list[str]) -> list[str]:
        """The existing log's columns, with any of `fields` it lacks added at the end.

        A log begun by an older version (or without an optional term, such as GAN power turned on at
        a resume) is rewritten once, atomically, with the wider header and its earlier rows left
        blank in the new columns, so the terms of the resumed run are logged too.
        """
        with open(self.path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        header = rows[0] if rows else []
        missing = [f for f in fields if f not in header]
        if not missing:
            return header
        wider = header + missing
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(wider)
        writer.writerows(row + [""] * (len(wider) - len(row)) for row in rows[1:])
        atomic.write_text(self.path, text.getvalue())
        return wider

    def write(self, row: dict[str, Any]) -> None:
        self._writer.writerow(row)
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def library_versions() -> dict[str, str]:
    return {"synthswap": __version__, "torch": torch.__version__}
