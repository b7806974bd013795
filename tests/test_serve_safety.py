"""`synthswap serve` on a shared machine and a LAN: hostile and careless requests get a JSON error
with its status (never a 500 and a traceback), nothing half-written stays, the token guards
localhost too, the data folder is private, and the server's memory stays bounded.

Real servers (`python -m synthswap serve`) on real faces and clips of ../shared, as in tests/test_serve.py."""

from __future__ import annotations

import asyncio
import http.client
import json
import shutil
import socket
import sqlite3
import stat
import subprocess
import threading
import time
import zlib
from pathlib import Path
from urllib.parse import urlencode

import av
import cv2
import numpy as np
import pytest
from serve_helpers import TOKEN, Server, subject_photos

from synthswap.cli import main
from synthswap.media import iter_video_frames, write_png
from synthswap.serve.app import Settings, create_app
from synthswap.serve.guard import JSON_BODY_LIMIT
from synthswap.serve.jobs import DB_NAME, JobStore
from synthswap.serve.listen import HeaderTimeoutProtocol


def declared_png(path: Path, width: int, height: int) -> Path:
    """A few hundred bytes of PNG whose header declares `width` x `height` pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    idat = zlib.compress(b"\0" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def huge_video(shared_data: Path, path: Path, side: int = 8000) -> Path:
    """Two frames of d6, upscaled to side x side (64 megapixels, over synthswap.media's 50), as MJPEG."""
    frame = next(iter_video_frames(shared_data / "videos/people/d6.mp4", max_frames=1)).bgr
    big = cv2.resize(frame, (side, side), interpolation=cv2.INTER_NEAREST)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = side, side, "yuvj420p"
        for _ in range(2):
            for packet in stream.encode(av.VideoFrame.from_ndarray(big, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _no_partial_uploads(data: Path) -> bool:
    return not list((data / "uploads").glob(".incoming-*"))


def _raw(s: Server, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
         chunked: bool = False, token: bool = True) -> tuple[int, dict, bytes]:
    """One request on its own connection, redirects not followed (a chunked body has no Content-Length)."""
    conn = http.client.HTTPConnection(s.host, s.port, timeout=60)
    try:
        hdrs = {"X-Synthswap": "1", **({"Authorization": f"Bearer {TOKEN}"} if token else {}), **(headers or {})}
        if chunked:
            conn.request(method, path, body=iter([body[i:i + 8192] for i in range(0, len(body), 8192)]),
                         headers=hdrs, encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _vm_hwm_mb(pid: int) -> float:
    """The peak resident memory of a process (Linux), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_hostile_requests_get_a_json_error_with_its_status_and_leave_nothing(shared_data, tmp_path, server):
    data = tmp_path / "data"
    s = server(data, "--media", str(shared_data / "videos/grid"), "--max-upload-mb", "8")
    files = tmp_path / "files"
    files.mkdir()
    photo = subject_photos(shared_data, files, 1)[0]

    def expect(answer: tuple[int, dict], status: int, message: str) -> None:
        assert answer[0] == status and message in answer[1].get("error", ""), answer

    # job ids that are no 64-bit integer name no job
    for job_id in ("9" * 30, "18446744073709551616", "9" * 5000, "-1", "0", "1e5", "%D9%A3"):  # the last: ٣
        expect(s.call("GET", f"/api/jobs/{job_id}"), 404, "no such job")
        expect(s.call("DELETE", f"/api/jobs/{job_id}"), 404, "no such job")
        expect(s.call("POST", f"/api/jobs/{job_id}/cancel"), 404, "no such job")
    # bodies of the wrong shape, depth or size
    expect(s.call("POST", "/api/jobs", {"subject": ["x"], "video": "y", "options": ["engine", "warp"]}), 422,
           "options must be a JSON object")
    expect(s.call("POST", "/api/jobs", {"subject": "x"}), 422, "must be lists of names")
    expect(s.call("POST", "/api/jobs", ["a list"]), 422, "must be a JSON object")
    expect(s.call("POST", "/api/jobs", raw=b"{not json"), 400, "not JSON")
    deep = b"[" * 30000 + b"]" * 30000  # under the body limit, over any parser's depth
    assert len(deep) < JSON_BODY_LIMIT
    expect(s.call("POST", "/api/jobs", raw=deep), 400, "nested too deep")
    status, _, body = _raw(s, "POST", "/api/jobs", headers={"Content-Length": str(200_000)})  # refused unread
    assert status == 413 and "larger than the limit of 64 KB" in json.loads(body)["error"]
    status, _, body = _raw(s, "POST", "/api/jobs", b" " * 80_000, chunked=True)  # no length: counted as it comes
    assert status == 413 and "larger than the limit" in json.loads(body)["error"]
    # names with a NUL or 256 characters, in a media pick and an upload
    for name in ("bbaf2n\0.mpg", "x" * 256, "a/" + "x" * 256 + ".mpg"):
        expect(s.call("POST", "/api/jobs", {"subject_media": ["bbaf2n.mpg"], "video_media": name}), 400,
               "not a file of the media folder")
    code, up = s.upload(photo, "subject", name="me\0" + "x" * 300 + ".jpg")
    assert code == 200 and up["label"].endswith("....jpg") and len(up["label"]) == 120 and "\0" not in up["label"]
    # the page's list parameters
    expect(s.call("GET", "/api/jobs?limit=0"), 422, "limit must be a whole number from 1 to 200")
    expect(s.call("GET", "/api/jobs?before=" + "9" * 40), 422, "before must be a whole number")

    # pictures that would take the server's memory, or break the face detector, are refused from their header
    t0 = time.monotonic()
    expect(s.upload(declared_png(files / "bomb.png", 60000, 60000), "subject"), 422,
           "bomb.png: image declares over")
    expect(s.upload(declared_png(files / "wall.png", 7100, 7100), "subject"), 422,
           "wall.png: image is 7100x7100 = 50 megapixels, over the limit of 50")
    long_png = files / "long.png"
    write_png(long_png, np.zeros((1, 40000, 3), np.uint8))
    expect(s.upload(long_png, "subject"), 422, "long.png: the picture is 40000x1, too small to hold a face")
    expect(s.upload(huge_video(shared_data, files / "huge.avi"), "video"), 422,
           "huge.avi: video frames are 8000x8000 = 64 megapixels, over the limit of 50")
    # three 49-megapixel photos at once (a phone's largest): checked one at a time, each decoded small
    big = files / "big.jpg"
    cv2.imwrite(str(big), cv2.resize(cv2.imread(str(photo)), (7000, 7000)), [cv2.IMWRITE_JPEG_QUALITY, 90])
    answers: list[tuple[int, dict]] = []
    threads = [threading.Thread(target=lambda: answers.append(s.upload(big, "subject"))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [(code, a["detail"]) for code, a in answers] == [(200, "photo 7000x7000, 1 face")] * 3, answers
    peak = _vm_hwm_mb(s.proc.pid)
    print(f"pixel bombs refused in {time.monotonic() - t0:.1f} s; the server's peak memory: {peak:.0f} MB")
    assert peak < 1024, f"the server peaked at {peak:.0f} MB"

    # an upload whose client goes away half-way leaves nothing, and no traceback
    with socket.create_connection((s.host, s.port)) as sock:
        sock.sendall(f"POST /api/uploads?role=video&name=cut.mp4 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"X-Synthswap: 1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 5000000\r\n\r\n".encode())
        sock.sendall((shared_data / "videos/people/d0.mp4").read_bytes()[:300_000])
    deadline = time.monotonic() + 10
    while not _no_partial_uploads(data) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _no_partial_uploads(data)

    # every answer, refusals included, may not be embedded by another site
    for path in ("/", "/static/app.js", "/api/jobs", "/api/jobs/99", "/jobs/1/files/out.mp4"):
        assert s.request("GET", path)[1]["cross-origin-resource-policy"] == "same-origin", path
    s.token = None
    assert s.request("GET", "/api/jobs")[1]["cross-origin-resource-policy"] == "same-origin"
    s.token = TOKEN

    # a row of the database that cannot be read is one broken job; the list and the other jobs still work
    db = sqlite3.connect(data / DB_NAME)
    for i in range(7):
        db.execute("INSERT INTO jobs (name, state, created, options, inputs) VALUES (?, 'done', ?, '{}', '{}')",
                   (f"old job {i}", time.time()))
    db.execute("UPDATE jobs SET options='{broken', state='done' WHERE id=4")
    db.commit()
    db.close()
    listed = s.get("/api/jobs")["jobs"]
    assert [(j["id"], j["state"]) for j in listed] == [(i, "broken" if i == 4 else "done") for i in range(7, 0, -1)]
    broken = s.get("/api/jobs/4")
    assert broken["state"] == "broken" and "record in the database is damaged" in broken["message"]

    # the list comes in pages, and a poll that already has the latest list gets 304 and no body
    page = s.get("/api/jobs?limit=3")
    assert [j["id"] for j in page["jobs"]] == [7, 6, 5] and page["next_before"] == 5
    page = s.get("/api/jobs?limit=3&before=5")
    assert [j["id"] for j in page["jobs"]] == [4, 3, 2] and page["next_before"] == 2
    assert [j["id"] for j in s.get("/api/jobs?limit=3&before=2")["jobs"]] == [1]
    status, headers, _ = s.request("GET", "/api/jobs")
    tag = headers["etag"]
    status, _, body = s.request("GET", "/api/jobs", headers={"If-None-Match": tag})
    assert status == 304 and body == b""
    assert s.call("DELETE", "/api/jobs/4") == (200, {"id": 4, "result": "deleted"})  # the broken one goes too
    status, headers, body = s.request("GET", "/api/jobs", headers={"If-None-Match": tag})
    assert status == 200 and headers["etag"] != tag and 4 not in [j["id"] for j in json.loads(body)["jobs"]]

    # through all of it: no 500, no traceback, the token only in the printed link, the server still serving
    log = s.server_log()
    assert "Traceback" not in log and " 500 " not in log, log
    assert log.count(TOKEN) == 1 and log.splitlines()[0].endswith(f"?token={TOKEN}   (data: {data})")
    assert s.get("/api/options")["max_upload_bytes"] == 8 * 2**20


@pytest.mark.slow  # a server of its own: 10-20 s
def test_the_token_guards_localhost_too(shared_data, tmp_path, server, capsys):
    # a short token is refused before anything starts
    assert main(["serve", "--data", str(tmp_path / "d0"), "--token", "x" * 15]) == 2
    assert "--token (or $SYNTHSWAP_TOKEN) must be at least 16 characters long, not 15" in capsys.readouterr().err
    assert not (tmp_path / "d0").exists()

    # any loopback address: the printed link works there
    s = server(tmp_path / "data", host="127.0.0.2")
    link = s.server_log().splitlines()[0].split()[2]
    assert link == f"http://127.0.0.2:{s.port}/?token={TOKEN}"
    s.token = None
    status, headers, _ = _raw(s, "GET", link[len(s.url):], token=False)
    cookie = headers["set-cookie"].split(";")[0]
    assert status == 303 and headers["location"] == "/" and cookie == f"synthswap_token_{s.port}={TOKEN}"
    assert s.request("GET", "/", headers={"Cookie": cookie})[0] == 200
    assert s.request("GET", "/api/jobs", headers={"Cookie": cookie})[0] == 200

    # without the token nothing is answered, on localhost too; the redirect never leaves this site
    assert s.request("GET", "/api/jobs")[0] == 401
    assert s.request("GET", "/static/app.js")[0] == 401
    status, headers, _ = _raw(s, "GET", f"//evil.example/x?token={TOKEN}", token=False)
    assert status == 303 and headers["location"] == "/evil.example/x"

    # a wrong guess is answered after a one-second pause; guesses meanwhile are refused at once (not queued)
    answers: list[tuple[int, float]] = []

    def guess(i: int) -> None:
        t0 = time.monotonic()
        code = s.request("GET", "/api/jobs", headers={"Authorization": f"Bearer wrong-guess-{i:08d}"})[0]
        answers.append((code, time.monotonic() - t0))

    first = threading.Thread(target=guess, args=(0,))
    first.start()
    time.sleep(0.3)
    guess(1)
    guess(2)
    first.join()
    guess(3)
    codes = [code for code, _ in answers]
    assert codes == [429, 429, 401, 401] and [t >= 0.9 for _, t in answers] == [False, False, True, True], answers
    t0 = time.monotonic()
    assert s.request("GET", "/api/jobs", headers={"Cookie": cookie})[0] == 200  # the right token is not held up
    assert time.monotonic() - t0 < 1.0
    assert TOKEN not in "\n".join(s.server_log().splitlines()[1:])


@pytest.mark.slow  # a server of its own: 10-20 s
def test_private_folders_upload_quota_and_queue_limit(shared_data, tmp_path, server):
    data = tmp_path / "data"
    s = server(data, "--upload-quota-mb", "1", "--max-queued", "1")
    photos = subject_photos(shared_data, tmp_path / "photos", 2)
    video = shared_data / "videos/grid/bbaf2n.mpg"  # 0.43 MB
    ids = [s.upload(p, "subject")[1]["id"] for p in photos]
    code, clip = s.upload(video, "video")
    assert code == 200 and s.upload(video, "video")[0] == 200
    # the quota counts the uploads no job has taken: a third copy of the clip does not fit any more
    code, answer = s.upload(video, "video")
    assert code == 413 and "bbaf2n.mpg: uploads no job has used yet take 1 MB of the 1 MB they may" in answer["error"]
    assert _no_partial_uploads(data)

    # a queue with one job waiting (here one being made) takes no other
    db = sqlite3.connect(data / DB_NAME)
    db.execute("INSERT INTO jobs (name, state, created, options, inputs) VALUES ('other', 'creating', 0, '{}', '{}')")
    db.commit()
    form = {"subject": ids, "video": clip["id"], "options": {"engine": "warp", "swap_init": "none"}}
    code, answer = s.call("POST", "/api/jobs", form)
    assert code == 429 and answer["error"].startswith("The queue is full: 1 jobs are already waiting")
    assert [p.name for p in (data / "jobs").iterdir()] == []
    db.execute("DELETE FROM jobs")
    db.commit()
    db.close()
    code, job = s.call("POST", "/api/jobs", form)
    assert code == 201, job
    job_dir = data / "jobs" / str(job["id"])
    s.wait_for(job["id"], lambda j: j["state"] == "running", timeout=60, what="running")
    assert s.call("POST", f"/api/jobs/{job['id']}/cancel")[0] == 200
    s.wait_for(job["id"], lambda j: j["state"] == "cancelled", timeout=180, what="cancelled")

    # folders 0700, files 0600: no other account reads a face, a video or the database
    paths = [data, data / "uploads", data / "jobs", job_dir, job_dir / "inputs", data / DB_NAME,
             job_dir / "job.json", job_dir / "log.txt", *(job_dir / "inputs").iterdir()]
    modes = {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in paths}
    assert modes == {k: ("0o700" if (tmp_path / k).is_dir() else "0o600") for k in modes}, modes
    assert "Traceback" not in s.server_log()


@pytest.mark.slow  # a server of its own: 10-20 s
def test_a_full_disk_during_an_upload_is_507_and_leaves_nothing(shared_data, tmp_path, server):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("needs a small file system: mounting a 2 MB tmpfs takes root")
    try:
        data = disk / "data"
        s = server(data)
        code, answer = s.upload(shared_data / "videos/people/d0.mp4", "video")  # 2.8 MB into what is left of 2
        assert code == 507 and answer["error"].startswith("the server's disk is full: nothing was kept")
        assert list((data / "uploads").iterdir()) == []
        photo = subject_photos(shared_data, tmp_path / "photos", 1)[0]
        assert s.upload(photo, "subject")[0] == 200  # the space came back: uploads work again
        assert "Traceback" not in s.server_log()
        s.stop()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_look_at_a_photo_decodes_it_small_and_upright(shared_data, tmp_path):
    """read_image(max_side=...), what the upload check uses: the same picture as a whole decode
    scaled down, turned by its EXIF orientation, for a JPEG (decoded at a reduced scale) and a PNG."""
    from PIL import Image

    from synthswap.media import read_image

    frame = next(iter_video_frames(shared_data / "videos/people/d6.mp4", max_frames=1)).bgr
    wide = cv2.resize(frame, (3000, 1600))
    for name in ("side.jpg", "side.png"):
        path = tmp_path / name
        img = Image.fromarray(wide[:, :, ::-1])
        exif = img.getexif()
        exif[0x0112] = 6  # stored sideways: players turn it a quarter clockwise
        img.save(path, exif=exif.tobytes(), **({"quality": 95} if name.endswith(".jpg") else {}))
        whole = read_image(path)
        small = read_image(path, max_side=500)
        assert whole.shape == (3000, 1600, 3) and small.shape == (500, 267, 3), (name, small.shape)
        expected = cv2.resize(whole, (267, 500), interpolation=cv2.INTER_AREA)
        assert np.abs(small.astype(int) - expected).mean() < 3, name


def test_unused_uploads_expire_without_a_restart(shared_data, tmp_path):
    """The app's sweep removes an upload no job took once it is older than upload_max_age_s, file
    and row, while the server runs; a fresh one stays."""
    from synthswap.serve.jobs import Upload

    app = create_app(Settings(data=tmp_path / "data", run_worker=False, upload_max_age_s=60, sweep_every_s=0.2))
    store = app.app.state.jobs
    photo = subject_photos(shared_data, tmp_path / "photos", 1)[0]
    size = photo.stat().st_size

    async def serve_a_while() -> list[str]:
        async with app.app.router.lifespan_context(app.app):  # the server has started: no restart from here
            for name, age in (("old", 3600), ("new", 0)):
                shutil.copyfile(photo, store.uploads_dir / f"{name}.jpg")
                store.add_upload(Upload(id=name, file=f"{name}.jpg", label="me.jpg", role="subject", kind="image",
                                        detail="photo", size=size, created=time.time() - age))
            assert store.uploads_size() == 2 * size
            await asyncio.sleep(1.0)
            assert store.get_upload("old") is None and store.get_upload("new") is not None
            assert store.uploads_size() == size
            return [p.name for p in store.uploads_dir.iterdir()]

    assert asyncio.run(serve_a_while()) == ["new.jpg"]


def test_a_corrupt_database_is_moved_aside_not_deleted(tmp_path, capsys):
    data = tmp_path / "data"
    store = JobStore(data)
    job_id = store.begin_job("kept", {})
    store.close()
    damaged = b"this is not a database any more\n" * 200
    (data / DB_NAME).write_bytes(damaged)
    store = JobStore(data)
    err = capsys.readouterr().err
    assert "cannot be read" in err and "moved aside to synthswap.sqlite.corrupt-" in err and "the queue starts empty" in err
    aside = [p for p in data.iterdir() if p.name.startswith(f"{DB_NAME}.corrupt-") and not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and aside[0].read_bytes() == damaged
    assert store.list() == ([], False) and store.get(job_id) is None
    assert store.begin_job("new", {}) == 1  # a working queue again
    store.close()


def _read_answer(sock: socket.socket) -> str:
    """A whole answer: the headers, then as much body as Content-Length says."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return (head + b"\r\n\r\n" + body).decode()


def _uvicorn_thread(app, port: int, header_timeout_s: float):
    """The server's own protocol with a short header timeout, in this process."""
    import uvicorn

    class Quick(HeaderTimeoutProtocol):
        pass

    Quick.header_timeout_s = header_timeout_s
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=Quick, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return srv, thread


def test_slow_headers_stalled_bodies_and_unreadable_requests_are_cut_off(tmp_path):
    from serve_helpers import free_port

    app = create_app(Settings(data=tmp_path / "data", token=TOKEN, run_worker=False))
    app.body_timeout_s = 1.0
    app.max_requests = 1
    port = free_port()
    srv, thread = _uvicorn_thread(app, port, header_timeout_s=1.0)
    try:
        # headers trickled and never finished: the connection is closed
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            t0 = time.monotonic()
            assert sock.recv(100) == b"" and time.monotonic() - t0 < 5
        # a body that stops arriving: 408, and the partial upload is gone
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            query = urlencode({"role": "video", "name": "slow.mp4"})
            sock.sendall(f"POST /api/uploads?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Synthswap: 1\r\n"
                         f"Authorization: Bearer {TOKEN}\r\nContent-Length: 100000\r\n\r\n".encode() + b"x" * 1000)
            # meanwhile, with one request at a time allowed, another one is turned away: JSON, headers
            with socket.create_connection(("127.0.0.1", port), timeout=10) as other:
                other.sendall(f"GET /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
                              .encode())
                busy = _read_answer(other)
            assert busy.startswith("HTTP/1.1 503") and "the server is busy" in busy
            assert "cross-origin-resource-policy: same-origin" in busy
            answer = _read_answer(sock)
        assert answer.startswith("HTTP/1.1 408") and "body stopped arriving for 1 s" in answer
        assert _no_partial_uploads(tmp_path / "data")
        # a request uvicorn cannot parse is answered as the app answers: JSON, with the security headers
        for bad in (b"GARBAGE\r\n\r\n", b"POST /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 30 + b"\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(bad)
                answer = _read_answer(sock)
            head, _, body = answer.partition("\r\n\r\n")
            assert head.startswith("HTTP/1.1 400") and "cross-origin-resource-policy: same-origin" in head.lower()
            assert json.loads(body)["error"].startswith("not an HTTP request this server can read")
        # a request in good time is answered
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"GET /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                         f"Connection: close\r\n\r\n".encode())
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        srv.should_exit = True
        thread.join(10)
