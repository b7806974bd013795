"""Shared fixtures: real data from ../shared/data, and facesets extracted once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED_DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session", autouse=True)
def signing_key_dir(tmp_path_factory) -> Path:
    """Outputs are signed (C2PA) with a key made on first use: tests make theirs here, never in ~/.config."""
    folder = tmp_path_factory.mktemp("signing") / "keys"
    old = os.environ.get("SYNTHSWAP_KEY_DIR")
    os.environ["SYNTHSWAP_KEY_DIR"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("SYNTHSWAP_KEY_DIR", None)
    else:
        os.environ["SYNTHSWAP_KEY_DIR"] = old


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder; tests that need it skip with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (a fresh clone has no ../shared)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def extracted(shared_data, tmp_path_factory):
    """Factory: extract a faceset from a file under ../shared/data once per session and reuse it.

    extracted("videos/people/d6.mp4", size=64, max_frames=40, every_n=5) -> Path
    """
    cache: dict[tuple, Path] = {}
    root = tmp_path_factory.mktemp("facesets")

    def make(relpath: str, size: int = 128, max_frames: int | None = 40, every_n: int = 1) -> Path:
        from synthswap.extract import extract

        key = (relpath, size, max_frames, every_n)
        if key not in cache:
            out = root / f"{Path(relpath).stem}_{size}_{max_frames}_{every_n}"
            extract([shared_data / relpath], out, size=size, max_frames=max_frames, every_n=every_n, progress=False)
            cache[key] = out
        return cache[key]

    return make


@pytest.fixture()
def server():
    """`server(data, *flags, host=...)` starts `synthswap serve` on a data folder (serve_helpers.Server);
    whichever are still running at the end are killed."""
    from serve_helpers import Server

    servers = []

    def start(data: Path, *extra: str, host: str = "127.0.0.1") -> Server:
        s = Server(data, None, *extra, host=host).start()
        servers.append(s)
        return s

    yield start
    for s in servers:
        if s.proc and s.proc.poll() is None:
            s.crash()
