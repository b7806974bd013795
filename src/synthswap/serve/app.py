"""The web app: a JSON API over the job queue, the files a job made, and one static page.

    GET    /                          the page (static/index.html, app.js, style.css)
    GET    /api/options               the form's settings (from RunOptions), upload limit, media files
    POST   /api/uploads?role=&name=   one file as the raw request body -> {id, label, detail} or {error}
    POST   /api/jobs                  {"subject": [upload ids], "video": upload id, "subject_media": [...],
                                       "video_media": ..., "options": {...}} -> the queued job
    GET    /api/jobs, /api/jobs/ID    the queue; one job with its stages, progress, previews, log
    POST   /api/jobs/ID/cancel|retry
    DELETE /api/jobs/ID               the job and every file of it
    GET    /api/jobs/ID/synthetic.png the kept synthetic faces as a grid
    GET    /jobs/ID/files/gan_samples.png  the personal GAN prior's latest samples, while it trains
    GET    /jobs/ID/files/NAME        the output video, the report and its pictures, downloads (a fixed list)

Every answer about a refused request is {"error": message}, shown as it is on the page. Files
are only ever served from that fixed list, by job id; no request names a path on the server
except a file picked from the --media folder, which must resolve inside it.
"""

from __future__ import annotations

import hmac
import math
import os
import shutil
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from synthswap.cli.run import PIPELINE_ERRORS
from synthswap.media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from synthswap.run import prepare, report_files
from synthswap.serve import progress
from synthswap.serve.jobs import Job, JobStore
from synthswap.serve.options import OUT_NAME, OptionError, describe, parse, run_options, write_job_file
from synthswap.serve.uploads import ROLES, FaceChecker, UploadError, extension_for, receive, safe_label, store
from synthswap.serve.worker import LOG_FILE, Worker

STATIC = Path(__file__).parent / "static"
TOKEN_COOKIE = "synthswap_token"
CSRF_HEADER = "x-synthswap"  # fetch() from our page sets it; a cross-site form or image cannot
MEDIA_LIST_LIMIT = 500

# What /jobs/ID/files/NAME may serve, relative to the job's folder (the report's pictures sit
# beside it, so its relative links resolve here too).
JOB_FILES = {
    OUT_NAME: OUT_NAME,
    **{path.name: path.name for path in report_files(OUT_NAME).values()},  # out_report.html and its pictures
    "evaluation.json": "out_work/evaluation.json",
    "evaluation.md": "out_work/evaluation.md",
    "preview.png": "out_work/swap/preview.png",
    "log.txt": LOG_FILE,
}
REPORT_HTML, REPORT_MD = report_files(OUT_NAME)["html"].name, report_files(OUT_NAME)["md"].name
GAN_SAMPLES = "gan_samples.png"  # the personal prior's latest sample grid (out_work/gan/samples/kimgNNNN.N.png)

SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; media-src 'self'; "
                                 b"style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; "
                                 b"frame-ancestors 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


@dataclass
class Settings:
    data: Path
    max_upload_bytes: int = 1024 * 2**20
    media: Path | None = None  # a folder whose files the page may pick instead of uploading
    device: str = "auto"
    threads: int | None = None
    token: str | None = None  # required on every request when set (binding beyond localhost)
    allowed_hosts: tuple[str, ...] | None = ("127.0.0.1", "localhost", "::1")  # Host header check
    run_worker: bool = True


def _finite(value: Any) -> Any:
    """JSON has no NaN: metrics that could not be measured are sent as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(_finite(data), status_code=status, headers={"cache-control": "no-store"})


def _error(message: str, status: int = 400) -> JSONResponse:
    return _json({"error": message}, status)


class Guard:
    """Checks every request before the app sees it: the Host header (a page of another site that
    resolves its own name to 127.0.0.1 must not reach us), the token when one is set, and the
    CSRF header on every request that changes something. Adds the security headers."""

    def __init__(self, app, settings: Settings):
        self.app = app
        self.settings = settings

    def _token_ok(self, request: Request) -> bool:
        token = self.settings.token
        given = request.cookies.get(TOKEN_COOKIE) or ""
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            given = auth[7:]
        return bool(given) and hmac.compare_digest(given.encode(), token.encode())

    async def __call__(self, scope, receive_, send):
        if scope["type"] != "http":
            return await self.app(scope, receive_, send)
        request = Request(scope)
        response: Response | None = None
        hosts = self.settings.allowed_hosts
        if hosts is not None and request.url.hostname not in hosts:
            response = PlainTextResponse("this server only answers requests for localhost", 403)
        elif self.settings.token:
            given = request.query_params.get("token")
            if given is not None and hmac.compare_digest(given.encode(), self.settings.token.encode()):
                # Once, from the link the server printed: keep it in a cookie, drop it from the address.
                response = RedirectResponse(request.url.path, 303)
                response.set_cookie(TOKEN_COOKIE, given, httponly=True, samesite="strict")
            elif not self._token_ok(request):
                response = PlainTextResponse("a token is required: open the link `synthswap serve` printed", 401)
        if response is None and request.method not in ("GET", "HEAD") and request.headers.get(CSRF_HEADER) != "1":
            response = _error("refused: requests that change something must come from the synthswap page", 403)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        if response is not None:
            return await response(scope, receive_, send_with_headers)
        await self.app(scope, receive_, send_with_headers)


def create_app(settings: Settings) -> Starlette:
    settings.data.mkdir(parents=True, exist_ok=True)
    jobs = JobStore(settings.data)
    worker = Worker(jobs, device=settings.device, threads=settings.threads)
    checker = FaceChecker()

    @asynccontextmanager
    async def lifespan(app):
        resumed = jobs.recover()
        if resumed:
            print(f"synthswap serve: resuming job(s) {', '.join(map(str, resumed))} from their last finished stage",
                  flush=True)
        if settings.run_worker:
            worker.start()
        try:
            yield
        finally:
            running = worker.current
            if settings.run_worker:
                await run_in_threadpool(worker.stop)
            jobs.close()
            print("synthswap serve: stopped" + (f"; job {running} goes back to the queue and resumes at the next "
                                                f"start" if running else ""), flush=True)

    # --- the form ---------------------------------------------------------------------------------

    def media_files() -> list[str]:
        if settings.media is None:
            return []
        root = settings.media.resolve()
        found = []
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS and path.is_file():
                found.append(str(path.relative_to(root)))
                if len(found) >= MEDIA_LIST_LIMIT:
                    break
        return found

    def media_path(relative: str) -> Path:
        """A file of the --media folder, by its relative name; nothing outside it."""
        if settings.media is None:
            raise UploadError("this server has no media folder to pick from (start it with --media DIR)", 400)
        root = settings.media.resolve()
        path = (root / relative).resolve()
        if root not in path.parents or not path.is_file():
            raise UploadError(f"{safe_label(relative)}: not a file of the media folder", 400)
        return path

    async def options(request: Request) -> Response:
        return _json({"options": describe(), "max_upload_bytes": settings.max_upload_bytes,
                      "media": await run_in_threadpool(media_files)})

    # --- uploads ----------------------------------------------------------------------------------

    async def upload(request: Request) -> Response:
        role = request.query_params.get("role", "")
        if role not in ROLES:
            return _error(f"role must be one of {', '.join(ROLES)}")
        label = safe_label(request.query_params.get("name", ""))
        try:
            ext = extension_for(label, role)
            length = request.headers.get("content-length")
            if length and length.isdigit() and int(length) > settings.max_upload_bytes:
                raise UploadError(f"{label}: the file is larger than the limit of "
                                  f"{settings.max_upload_bytes / 2**20:.0f} MB", 413)
            try:
                partial, size = await receive(request.stream(), jobs.uploads_dir, ext, settings.max_upload_bytes)
            except UploadError as exc:
                raise UploadError(f"{label}: {exc}", exc.status) from None
            try:
                checked = await run_in_threadpool(checker.check, partial, role, label)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            item = store(partial, jobs.uploads_dir, label, role, checked, size)
            try:
                jobs.add_upload(item)
            except BaseException:
                (jobs.uploads_dir / item.file).unlink(missing_ok=True)
                raise
        except UploadError as exc:
            return _error(str(exc), exc.status)
        return _json({"id": item.id, "label": item.label, "role": item.role, "kind": item.kind,
                      "detail": item.detail, "size": item.size})

    # --- jobs -------------------------------------------------------------------------------------

    def create_job(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Check everything, then put the job's files in place and queue it; on any refusal
        nothing of it stays (its uploads stay available for the next try)."""
        try:
            values = parse(body.get("options") or {})
        except OptionError as exc:
            return {"error": str(exc)}, 400
        subject_ids, subject_media = body.get("subject") or [], body.get("subject_media") or []
        video_id, video_media = body.get("video"), body.get("video_media")
        if not (isinstance(subject_ids, list) and isinstance(subject_media, list)
                and all(isinstance(v, str) for v in [*subject_ids, *subject_media])
                and all(v is None or isinstance(v, str) for v in (video_id, video_media))):
            return {"error": "subject and subject_media must be lists of names, video and video_media names"}, 400
        missing = []
        if not subject_ids and not subject_media:
            missing.append("add at least one photo (or a video) of the subject")
        if not video_id and not video_media:
            missing.append("add the destination video")
        if missing:
            return {"error": "The form is incomplete: " + "; ".join(missing) + "."}, 400
        # (source path, label, detail, upload id or None for a media-folder file) for every input
        subject: list[tuple[Path, str, str, str | None]] = []
        video: tuple[Path, str, str, str | None]
        try:
            for upload_id in subject_ids:
                subject.append(_uploaded(upload_id, "subject"))
            for rel in subject_media:
                path = media_path(str(rel))
                extension_for(str(rel), "subject")
                subject.append((path, str(rel), checker.check(path, "subject", str(rel)).detail, None))
            if video_id:
                video = _uploaded(video_id, "video")
            else:
                path = media_path(str(video_media))
                extension_for(str(video_media), "video")
                video = (path, str(video_media), checker.check(path, "video", str(video_media)).detail, None)
        except UploadError as exc:
            return {"error": str(exc)}, exc.status
        name = ", ".join(s[1] for s in subject)
        name = (name if len(name) <= 80 else name[:77] + "...") + " → " + video[1]
        job_id = jobs.begin_job(name, values)
        job_dir = jobs.job_dir(job_id)
        try:
            inputs_dir = job_dir / "inputs"
            inputs_dir.mkdir(parents=True)
            paths = []
            for i, (path, _, _, upload_id) in enumerate([*subject, video]):
                if upload_id is None:
                    paths.append(str(path))  # a media-folder file is read where it is
                    continue
                role = "video" if i == len(subject) else f"subject_{i}"
                target = inputs_dir / f"{role}{path.suffix}"
                try:
                    os.link(path, target)  # the upload itself is removed only once the job is queued
                except OSError:  # a file system without hard links
                    shutil.copyfile(path, target)
                paths.append(str(target))
            write_job_file(job_dir, paths[:-1], paths[-1], values)
            prepare(run_options(job_dir, settings.device))  # the same checks `synthswap run` starts with
        except PIPELINE_ERRORS as exc:
            jobs.abandon_job(job_id)
            return {"error": f"This job cannot run: {exc}"}, 400
        except BaseException:
            jobs.abandon_job(job_id)
            raise
        used = [s[3] for s in [*subject, video] if s[3]]
        inputs = {"subject": [{"label": s[1], "detail": s[2]} for s in subject],
                  "video": {"label": video[1], "detail": video[2]}}
        jobs.commit_job(job_id, inputs, used)
        for s in [*subject, video]:
            if s[3]:
                s[0].unlink(missing_ok=True)
        worker.wake()
        return jobs.get(job_id).public(), 201

    def _uploaded(upload_id: Any, role: str) -> tuple[Path, str, str, str]:
        item = jobs.get_upload(str(upload_id)) if isinstance(upload_id, str) and upload_id.isalnum() else None
        if item is None or item.role != role or not (jobs.uploads_dir / item.file).is_file():
            raise UploadError("an uploaded file is no longer on the server (uploads are kept for a day): "
                              "add it again", 400)
        return jobs.uploads_dir / item.file, item.label, item.detail, item.id

    async def new_job(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error("the request is not JSON")
        if not isinstance(body, dict):
            return _error("the request must be a JSON object")
        data, status = await run_in_threadpool(create_job, body)
        return _json(data, status)

    async def list_jobs(request: Request) -> Response:
        return _json({"jobs": [j.public() for j in await run_in_threadpool(jobs.list)],
                      "running": worker.current})

    def _job_or_404(request: Request) -> Job | Response:
        try:
            job_id = int(request.path_params["job_id"])
        except ValueError:
            return _error("no such job", 404)
        job = jobs.get(job_id)
        return job if job is not None else _error("no such job", 404)

    def job_detail(job: Job) -> dict[str, Any]:
        job_dir = jobs.job_dir(job.id)
        opts = run_options(job_dir, settings.device)
        work = opts.work_dir()
        base = f"/jobs/{job.id}/files"

        def url(name: str) -> str | None:
            path = _job_file(job.id, name)
            return f"{base}/{name}?v={path.stat().st_mtime_ns}" if path is not None and path.is_file() else None

        synthetic = progress.synthetic_faces(opts)
        done = job.state == "done"
        return {**job.public(), "stages": progress.stages(job, opts), "loss": progress.loss_curve(work),
                "preview": url("preview.png"), "gan_samples": url(GAN_SAMPLES),
                "synthetic": {"count": len(synthetic),
                              "url": f"/api/jobs/{job.id}/synthetic.png?n={len(synthetic)}" if synthetic else None},
                "video": url(OUT_NAME) if done else None,
                "report": url(REPORT_HTML) if done else None,
                "downloads": [{"name": n, "url": url(n)} for n in (OUT_NAME, REPORT_HTML, REPORT_MD,
                                                                     "evaluation.json", "log.txt")
                              if url(n) and (done or n == "log.txt")],
                "log": progress.log_tail(job_dir), "now": time.time()}

    async def get_job(request: Request) -> Response:
        job = _job_or_404(request)
        if isinstance(job, Response):
            return job
        try:
            return _json(await run_in_threadpool(job_detail, job))
        except FileNotFoundError:  # deleted while we looked
            return _error("no such job", 404)

    async def cancel_job(request: Request) -> Response:
        job = _job_or_404(request)
        if isinstance(job, Response):
            return job
        if job.state not in ("queued", "running"):
            return _error(f"job {job.id} is {job.state}: only a queued or running job can be cancelled", 409)
        state = jobs.request_cancel(job.id)
        worker.wake()
        return _json({"id": job.id, "state": state})

    async def retry_job(request: Request) -> Response:
        job = _job_or_404(request)
        if isinstance(job, Response):
            return job
        if not jobs.retry(job.id):
            return _error(f"job {job.id} is {job.state}: only a failed or cancelled job can be retried", 409)
        worker.wake()
        return _json({"id": job.id, "state": "queued"})

    async def delete_job(request: Request) -> Response:
        job = _job_or_404(request)
        if isinstance(job, Response):
            return job
        result = await run_in_threadpool(jobs.delete, job.id)
        worker.wake()
        return _json({"id": job.id, "result": result})

    async def synthetic_grid(request: Request) -> Response:
        job = _job_or_404(request)
        if isinstance(job, Response):
            return job
        faces = progress.synthetic_faces(run_options(jobs.job_dir(job.id), settings.device))
        if not faces:
            return _error("no synthetic faces yet", 404)
        png = await run_in_threadpool(progress.face_grid, faces)
        return Response(png, media_type="image/png", headers={"cache-control": "no-store"})

    async def job_file(request: Request) -> Response:
        job = _job_or_404(request)
        if isinstance(job, Response):
            return job
        path = _job_file(job.id, request.path_params["name"])
        if path is None or not path.is_file():
            return _error("this file does not exist (yet)", 404)
        media = {".txt": "text/plain; charset=utf-8", ".md": "text/plain; charset=utf-8"}.get(path.suffix)
        return FileResponse(path, media_type=media, headers={"cache-control": "no-store"})

    def _job_file(job_id: int, name: str) -> Path | None:
        """The file /jobs/ID/files/NAME serves, or None for a name not on the list."""
        job_dir = jobs.job_dir(job_id)
        if name == GAN_SAMPLES:
            grids = sorted((job_dir / "out_work" / "gan" / "samples").glob("kimg*.png"))
            return grids[-1] if grids else None
        return job_dir / JOB_FILES[name] if name in JOB_FILES else None

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    routes = [
        Route("/", index),
        Route("/api/options", options),
        Route("/api/uploads", upload, methods=["POST"]),
        Route("/api/jobs", list_jobs, methods=["GET"]),
        Route("/api/jobs", new_job, methods=["POST"]),
        Route("/api/jobs/{job_id}", get_job, methods=["GET"]),
        Route("/api/jobs/{job_id}", delete_job, methods=["DELETE"]),
        Route("/api/jobs/{job_id}/cancel", cancel_job, methods=["POST"]),
        Route("/api/jobs/{job_id}/retry", retry_job, methods=["POST"]),
        Route("/api/jobs/{job_id}/synthetic.png", synthetic_grid),
        Route("/jobs/{job_id}/files/{name}", job_file),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.jobs, app.state.worker, app.state.settings = jobs, worker, settings
    return Guard(app, settings)
