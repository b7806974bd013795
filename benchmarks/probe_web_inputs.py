"""Bad-input probes for the web app: hostile or careless HTTP requests to one live `synthswap serve`.

    .venv/bin/python benchmarks/probe_web_inputs.py --out docs/bad_inputs_web.md

The web half of the catalogue in benchmarks/probe_bad_inputs.py (which probes the commands): one
server (`python -m synthswap serve`, a fresh data folder, `--media` the GRID clips, `--max-upload-mb
8`), then each probe sends one request as a browser, a script or an attacker would, made from the
same real inputs (frames of ../shared/data/videos/people/d0.mp4, the GRID clip bbaf2n.mpg).
Recorded per probe:

- the HTTP status, and whether it is the one the probe documents;
- whether the answer is a JSON `{"error": ...}` (refusals) and carries Cross-Origin-Resource-Policy;
- whether the server's output gained a traceback during the probe.

At the end: the server's peak memory (VmHWM), partial uploads left behind, and whether the token
appears anywhere in the server's output but the link it printed. A few seconds in all.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shlex
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from probe_bad_inputs import SHARED_DATA, SRC, TRACEBACK, Materials  # noqa: E402

TOKEN = "probe-token-0123456789abcdef"

INTRO = """# Bad inputs to the web app

The web half of the bad-input catalogue ([bad_inputs.md](bad_inputs.md) has the commands'):
hostile or careless HTTP requests to one live `synthswap serve`, made from the same real inputs
(frames of `../shared/data/videos/people/d0.mp4`, the GRID clip `bbaf2n.mpg`). Each row is one
request; recorded are its status (`(!)` when it is not the one the probe documents), whether the
answer is a JSON `{"error": ...}`, whether it carries `Cross-Origin-Resource-Policy: same-origin`,
and whether the server's output gained a traceback. This page is written by

```
.venv/bin/python benchmarks/probe_web_inputs.py --out docs/bad_inputs_web.md
```

The same cases, and those that take longer or need root (a body that stalls for the body timeout,
headers trickled past the header timeout, a full disk during an upload on a 2 MB tmpfs, a corrupt
database file at start, the upload quota, the queue limit, file modes), are tests in
`tests/test_serve_safety.py`. Issue 28's probing of the code before them found a bare 500 with a
traceback for the long job ids, NUL and long names, the `options` list, deep JSON, the 40000x1 PNG,
aborted uploads, a corrupt row and a full disk; the off-site link redirected off-site, and
localhost needed no token.

"""


@dataclass
class Call:
    """One request: `body` is bytes, or a function of the materials making them."""
    method: str
    path: str
    body: bytes | Callable[[Materials], bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    token: bool = True
    chunked: bool = False
    abort_after: int | None = None  # send this many bytes of the body, then hang up (no answer)


@dataclass
class WebProbe:
    name: str
    call: Call
    expect: int | None  # None: no answer expected (the client left)
    before: Callable[[Path], None] | None = None  # done to the data folder first


def _json(value) -> bytes:
    return json.dumps(value).encode()


def _upload(name: str, role: str = "subject") -> str:
    return "/api/uploads?" + urlencode({"role": role, "name": name})


def _material(name: str) -> Callable[[Materials], bytes]:
    return lambda m: m.path(name).read_bytes()


def _long_png(m: Materials) -> bytes:
    import numpy as np

    from synthswap.media import write_png
    path = m.root / "long.png"
    if not path.exists():
        write_png(path, np.zeros((1, 40000, 3), np.uint8))
    return path.read_bytes()


def _huge_video(m: Materials) -> bytes:
    """Two frames of d0 upscaled to 8000x8000 (64 megapixels), MJPEG: 2 MB of file."""
    import av
    import cv2

    path = m.root / "huge.avi"
    if not path.exists():
        big = cv2.resize(m._frames(1)[0], (8000, 8000), interpolation=cv2.INTER_NEAREST)
        with av.open(str(path), "w") as container:
            stream = container.add_stream("mjpeg", rate=1)
            stream.width, stream.height, stream.pix_fmt = 8000, 8000, "yuvj420p"
            for _ in range(2):
                container.mux(stream.encode(av.VideoFrame.from_ndarray(big, format="bgr24")))
            container.mux(stream.encode())
    return path.read_bytes()


def _big_photo(m: Materials) -> bytes:
    """A 49-megapixel JPEG (a phone's largest) of d0's face: a file to accept, checked small."""
    import cv2

    path = m.root / "big_photo.jpg"
    if not path.exists():
        cv2.imwrite(str(path), cv2.resize(m._frames(1)[0], (7000, 7000)), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path.read_bytes()


def _break_a_row(data: Path) -> None:
    db = sqlite3.connect(data / "synthswap.sqlite")
    for i in range(3):
        db.execute("INSERT INTO jobs (name, state, created, options, inputs) VALUES (?, 'done', 0, '{}', '{}')",
                   (f"job {i}",))
    db.execute("UPDATE jobs SET options='{broken' WHERE id=(SELECT MIN(id) FROM jobs)")
    db.commit()
    db.close()


PROBES: list[WebProbe] = [
    WebProbe("no token (on localhost)", Call("GET", "/api/jobs", token=False), 401),
    WebProbe("a wrong token (answered after a pause)", Call("GET", "/api/jobs", token=False,
                                                           headers={"Authorization": "Bearer " + "x" * 27}), 401),
    WebProbe("another site's host name (DNS rebinding)", Call("GET", "/api/jobs", headers={"Host": "evil.example"}),
             403),
    WebProbe("a change without the page's header (cross-site form)",
             Call("DELETE", "/api/jobs/1", headers={"X-Synthswap": ""}), 403),
    WebProbe("the token link pointing off-site", Call("GET", f"//evil.example/x?token={TOKEN}", token=False), 303),
    WebProbe("a Content-Length of 30 digits", Call("POST", "/api/jobs", headers={"Content-Length": "9" * 30}), 400),
    WebProbe("a job id beyond 64 bits", Call("GET", "/api/jobs/18446744073709551616"), 404),
    WebProbe("a job id of 5000 digits", Call("DELETE", "/api/jobs/" + "9" * 5000), 404),
    WebProbe("a job id in Arabic-Indic digits", Call("POST", "/api/jobs/%D9%A3/cancel"), 404),
    WebProbe("options sent as a list", Call("POST", "/api/jobs", _json({"subject": ["a"], "options": ["x"]})), 422),
    WebProbe("a JSON list for the form", Call("POST", "/api/jobs", _json(["a"])), 422),
    WebProbe("not JSON", Call("POST", "/api/jobs", b"{subject: 1"), 400),
    WebProbe("JSON nested 30000 deep (60 KB)", Call("POST", "/api/jobs", b"[" * 30000 + b"]" * 30000), 400),
    WebProbe("JSON of 300 MB announced", Call("POST", "/api/jobs", headers={"Content-Length": str(300 * 2**20)}),
             413),
    WebProbe("JSON of 100 KB, chunked (no length)", Call("POST", "/api/jobs", b" " * 100_000, chunked=True), 413),
    WebProbe("a media pick with a NUL", Call("POST", "/api/jobs", _json({"subject_media": ["bbaf2n.mpg"],
                                                                         "video_media": "bb\0af2n.mpg"})), 400),
    WebProbe("a media pick of 256 characters", Call("POST", "/api/jobs", _json({"subject_media": ["x" * 256],
                                                                                "video_media": "bbaf2n.mpg"})), 400),
    WebProbe("a media pick outside the folder", Call("POST", "/api/jobs", _json({"subject_media": ["../../etc/passwd"],
                                                                                 "video_media": "bbaf2n.mpg"})), 400),
    WebProbe("an upload named with a NUL and 300 characters", Call("POST", _upload("me\0" + "x" * 300 + ".png"),
                                                                   _material("photo.png")), 200),
    WebProbe("a text file as a photo", Call("POST", _upload("notes.txt"), b"my notes\n"), 415),
    WebProbe("an empty upload", Call("POST", _upload("empty.png"), b""), 422),
    WebProbe("a PNG declaring 144 megapixels in 100 bytes", Call("POST", _upload("big.png"), _material("big.png")),
             422),
    WebProbe("a 40000x1 PNG", Call("POST", _upload("long.png"), _long_png), 422),
    WebProbe("a 2 MB video of two 8000x8000 frames", Call("POST", _upload("huge.avi", "video"), _huge_video), 422),
    WebProbe("a 49-megapixel JPEG photo (accepted)", Call("POST", _upload("big_photo.jpg"), _big_photo), 200),
    WebProbe("a 2 GB upload announced", Call("POST", _upload("film.mp4", "video"),
                                              headers={"Content-Length": str(2 * 2**30)}), 413),
    WebProbe("an upload whose client leaves half-way", Call("POST", _upload("cut.mpg", "video"),
                                                            _material("video.mpg"), abort_after=200_000), None),
    WebProbe("?limit=0 on the job list", Call("GET", "/api/jobs?limit=0"), 422),
    WebProbe("one corrupt row in the database: the list", Call("GET", "/api/jobs"), 200, before=_break_a_row),
    WebProbe("one corrupt row in the database: that job", Call("GET", "/api/jobs/1"), 200),
]


@dataclass
class WebResult:
    probe: WebProbe
    status: int | None
    json_error: bool
    corp: bool
    traceback: bool
    message: str


def send(port: int, call: Call, materials: Materials) -> tuple[int | None, dict[str, str], bytes]:
    body = call.body(materials) if callable(call.body) else call.body
    headers = {"Host": f"127.0.0.1:{port}", "X-Synthswap": "1", **call.headers}
    if call.token:
        headers.setdefault("Authorization", f"Bearer {TOKEN}")
    headers = {k: v for k, v in headers.items() if v}
    if call.abort_after is not None:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            sock.sendall(f"{call.method} {call.path} HTTP/1.1\r\n{head}Content-Length: {len(body or b'')}\r\n\r\n"
                         .encode() + (body or b"")[:call.abort_after])
        return None, {}, b""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.putrequest(call.method, call.path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        if call.chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        elif "Content-Length" not in headers and body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if body and call.chunked:
            for i in range(0, len(body), 8192):
                piece = body[i:i + 8192]
                conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            conn.send(b"0\r\n\r\n")
        elif body and "Content-Length" not in call.headers:
            conn.send(body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="also write the Markdown report to this file")
    p.add_argument("--shared-data", default=str(SHARED_DATA), help=f"real data (default {SHARED_DATA})")
    args = p.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="synthswap_web_probes_"))
    materials = Materials(root / "materials", Path(args.shared_data))
    start = time.monotonic()
    for probe in PROBES:  # the inputs first, so that the server's memory is its own
        if callable(probe.call.body):
            probe.call.body(materials)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data, log_path = root / "data", root / "server.log"
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "SYNTHSWAP_TOKEN": TOKEN}
    log = open(log_path, "wb")
    server = subprocess.Popen([sys.executable, "-m", "synthswap", "serve", "--data", str(data), "--port", str(port),
                               "--media", str(Path(args.shared_data) / "videos/grid"), "--max-upload-mb", "8"],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    results: list[WebResult] = []
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if send(port, Call("GET", "/api/options"), materials)[0] == 200:
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"the server did not start: {log_path.read_text()[-2000:]}") from None
                time.sleep(0.3)
        for probe in PROBES:
            if probe.before:
                probe.before(data)
            seen = len(log_path.read_text(errors="replace"))
            status, headers, body = send(port, probe.call, materials)
            time.sleep(0.3 if status is None else 0)  # the server notices a client that left
            try:
                answer = json.loads(body) if body else {}
            except ValueError:
                answer = {}
            message = answer.get("error") if isinstance(answer, dict) else None
            if message is None and status == 303:
                message = f"Location: {headers.get('location')}"
            elif message is None and status == 200 and isinstance(answer, dict):
                message = (f"label {answer['label']!r}" if "label" in answer else
                           f"state {answer['state']}: {answer['message']}" if "state" in answer else
                           "states " + ", ".join(j["state"] for j in answer.get("jobs", [])))
            elif message is None:
                message = body.decode(errors="replace")[:100]
            results.append(WebResult(probe, status, isinstance(answer, dict) and "error" in answer,
                                     headers.get("cross-origin-resource-policy") == "same-origin" or status is None,
                                     TRACEBACK in log_path.read_text(errors="replace")[seen:], message))
            print(f"{probe.name}: {status}", file=sys.stderr, flush=True)
        peak = _peak_mb(server.pid)
    finally:
        server.terminate()
        server.wait(60)
        log.close()
    output = log_path.read_text(errors="replace")
    partial = len(list((data / "uploads").glob(".incoming-*")))
    elapsed = time.monotonic() - start
    lines = ["| # | request | probe | status | JSON error? | CORP? | traceback? | answer |",
             "| ---: | --- | --- | ---: | --- | --- | --- | --- |"]
    for i, r in enumerate(results, 1):
        status = "(left)" if r.status is None else str(r.status)
        status += "" if r.status == r.probe.expect else " (!)"
        path = r.probe.call.path if len(r.probe.call.path) <= 60 else r.probe.call.path[:57] + "..."
        lines.append(f"| {i} | `{r.probe.call.method} {_cell(path)}` | {_cell(r.probe.name)} | {status} | "
                     f"{'yes' if r.json_error else '-'} | {'yes' if r.corp else '**no**'} | "
                     f"{'**yes**' if r.traceback else 'no'} | {_cell(r.message[:110])} |")
    wrong = sum(r.status != r.probe.expect for r in results)
    tracebacks = sum(r.traceback for r in results)
    report = "\n".join([
        INTRO + f"**{len(results)} web probes: {wrong} unexpected statuses, {tracebacks} tracebacks, "
        f"{sum(not r.corp for r in results)} answers without Cross-Origin-Resource-Policy**; the server's peak "
        f"memory {peak:.0f} MB; {partial} partial uploads left; the token in the server's output "
        f"{output.count(TOKEN)} time(s) (the printed link).",
        "",
        f"Measured with `{shlex.join(['python', 'benchmarks/probe_web_inputs.py', *(argv or sys.argv[1:])])}` in "
        f"{elapsed:.0f} s (load average {os.getloadavg()[0]:.1f} at the end).",
        "",
        *lines,
        "",
    ])
    print(report)
    if args.out:
        Path(args.out).write_text(report)
    shutil.rmtree(root, ignore_errors=True)
    return 0 if not (wrong or tracebacks or partial) else 1


if __name__ == "__main__":
    sys.exit(main())
