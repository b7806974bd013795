"""Shared by tests/test_serve.py and tests/test_serve_browser.py: a real `synthswap serve` process,
HTTP calls to it, and the inputs (real faces from ../shared, and bad files made here)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from synthswap.media import VideoWriter, iter_video_frames, write_png

SRC = Path(__file__).resolve().parents[1] / "src"

TOKEN = "test-token-0123456789abcdef"  # every server of the tests; requests carry it as a Bearer token

# The tiny job of tests/test_run_study.py: 3 subject photos, the 75-frame GRID clip, the warp engine.
TINY = {"engine": "warp", "synthetic": "6", "swap_steps": "16", "batch_size": "4", "swap_resolution": "64",
        "swap_init": "none", "every_n": "5", "swap_id_weight": "0"}  # no identity loss: no landmark fit per job


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m synthswap serve` on a data folder; start(), stop() (SIGTERM: a graceful
    shutdown), crash() (SIGKILL), and JSON calls to it with the token (`token=None`: without)."""

    def __init__(self, data: Path, port: int | None = None, *extra: str, host: str = "127.0.0.1"):
        self.data, self.port, self.extra = data, port or free_port(), extra
        self.proc: subprocess.Popen | None = None
        self.host = host
        self.url = f"http://{host}:{self.port}"
        self.token: str | None = TOKEN

    def start(self, timeout: float = 180) -> "Server":
        env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               "SYNTHSWAP_TOKEN": TOKEN}
        self.log = open(self.data.parent / f"server_{self.port}.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "synthswap", "serve", "--data", str(self.data),
                                      "--host", self.host, "--port", str(self.port), "--threads", "2",
                                      *self.extra],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}: {self.server_log()}")
            try:
                self.get("/api/options")
                return self
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"the server did not answer within {timeout} s: {self.server_log()}")

    def server_log(self) -> str:
        return (self.data.parent / f"server_{self.port}.log").read_text(errors="replace")[-3000:]

    def stop(self, timeout: float = 180) -> str:
        """SIGTERM, as a service manager stops it; returns the server's last line."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout)  # uvicorn ends by re-raising the signal it shut down for: the code is -15
        self.log.close()
        return self.server_log().strip().splitlines()[-1]

    def crash(self) -> None:
        self.proc.kill()
        self.proc.wait(30)
        self.log.close()

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """(status, headers, body bytes); HTTP errors are answers too."""
        headers = dict(headers or {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()

    def call(self, method: str, path: str, payload=None, raw: bytes | None = None) -> tuple[int, dict]:
        headers = {"X-Synthswap": "1"}
        body = raw
        if payload is not None:
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        status, _, data = self.request(method, path, body, headers)
        return status, json.loads(data or b"{}")

    def get(self, path: str) -> dict:
        status, data = self.call("GET", path)
        assert status == 200, (status, data)
        return data

    def upload(self, path: Path, role: str, name: str | None = None) -> tuple[int, dict]:
        from urllib.parse import urlencode

        return self.call("POST", "/api/uploads?" + urlencode({"role": role, "name": name or path.name}),
                         raw=path.read_bytes())

    def announce_upload(self, size: int, name: str, role: str) -> tuple[int, dict]:
        """Send only the headers of an upload of `size` bytes and read the answer: a server that
        refuses it from its Content-Length answers before reading any of the body."""
        import http.client
        from urllib.parse import urlencode

        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.putrequest("POST", "/api/uploads?" + urlencode({"role": role, "name": name}))
            conn.putheader("X-Synthswap", "1")
            conn.putheader("Authorization", f"Bearer {self.token}")
            conn.putheader("Content-Length", str(size))
            conn.endheaders()
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"{}")
        finally:
            conn.close()

    def wait_for(self, job_id: int, condition, timeout: float = 600, what: str = "") -> dict:
        deadline = time.monotonic() + timeout
        job = {}
        while time.monotonic() < deadline:
            try:
                job = self.get(f"/api/jobs/{job_id}")
            except OSError:
                job = {}
            if job and condition(job):
                return job
            if job.get("state") == "failed":
                raise AssertionError(f"job {job_id} failed: {job.get('message')}\n{job.get('log')}")
            time.sleep(0.5)
        raise TimeoutError(f"job {job_id} did not reach {what or 'the condition'} in {timeout} s: "
                           f"{job.get('state')} {job.get('message')}\n{job.get('log')}\n{self.server_log()}")


def subject_photos(shared_data: Path, folder: Path, count: int = 3) -> list[Path]:
    """Frames of d6.mp4 (one woman, frontal) saved as JPEG photos, 100 frames apart."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for frame in iter_video_frames(shared_data / "videos/people/d6.mp4", every_n=100, max_frames=count):
        path = folder / f"d6_{frame.index:04d}.jpg"
        cv2.imwrite(str(path), frame.bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths


def two_face_photo(shared_data: Path, path: Path) -> Path:
    """Two people side by side: a frame of d6 beside a frame of d9."""
    import cv2

    a = next(iter_video_frames(shared_data / "videos/people/d6.mp4", max_frames=1)).bgr
    b = next(iter_video_frames(shared_data / "videos/people/d9.mp4", max_frames=1)).bgr
    b = cv2.resize(b, (a.shape[0] * b.shape[1] // b.shape[0], a.shape[0]))
    cv2.imwrite(str(path), np.concatenate([a, b], axis=1), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


def faceless_video(path: Path, frames: int = 25) -> Path:
    """A second of moving colour gradients: a valid video with no face in it."""
    y, x = np.mgrid[0:120, 0:160]
    with VideoWriter(path, 160, 120, 25) as writer:
        for i in range(frames):
            img = np.stack([(x + 4 * i) % 256, (y * 2) % 256, np.full_like(x, 90)], axis=2).astype(np.uint8)
            writer.write(img)
    return path


def not_media(path: Path) -> Path:
    path.write_text("this is a text file with an image's name\n" * 20)
    return path


def blank_png(path: Path) -> Path:
    write_png(path, np.full((200, 200, 3), 200, np.uint8))
    return path
