"""The web app: a JSON API over the job queue, the files a job made, and one static page.

    GET    /                          the page (static/index.html, app.js, style.css)
    GET    /api/options               the form's settings (from RunOptions), upload limit, media files
    POST   /api/uploads?role=&name=   one file as the raw request body -> {id, label, detail} or {error}
    POST   /api/jobs                  {"subject": [upload ids], "video": upload id, "subject_media": [...],
                                       "video_media": ..., "options": {...}} -> the queued job
    GET    /api/jobs?limit=&before=   a page of the queue, newest first (304 to its ETag while unchanged)
    GET    /api/jobs/ID               one job with its stages, progress, previews, log
    POST   /api/jobs/ID/cancel|retry
    DELETE /api/jobs/ID               the job and every file of it
    GET    /api/jobs/ID/synthetic.png the kept synthetic faces as a grid
    GET    /jobs/ID/files/gan_samples.png  the personal GAN prior's latest samples, while it trains
    GET    /jobs/ID/files/NAME        the output video, the report and its pictures, downloads (a fixed list)

The API is routes.py (submitting a job: submit.py), the page and the files pages.py, and the
request guard guard.py. Every answer about a refused request is {"error": message}, shown as it
is on the page, with its status; so is whatever a request raised (guard.handle_exception). Files are only ever served from that fixed list, by job id; no request names a
path on the server except a file picked from the --media folder, which must resolve inside it.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from synthswap.serve import pages, routes
from synthswap.serve.guard import Guard, Refused, handle_exception
from synthswap.serve.jobs import JobStore
from synthswap.serve.uploads import FaceChecker
from synthswap.serve.worker import Worker


@dataclass
class Settings:
    data: Path
    max_upload_bytes: int = 1024 * 2**20
    upload_quota_bytes: int = 4096 * 2**20  # all uploads not yet taken by a job, together
    upload_max_age_s: float = 24 * 3600  # an upload no job took is removed after this
    sweep_every_s: float = 600  # how often old uploads are looked for (also at start and at each upload)
    max_waiting: int = 20  # jobs queued at once; beyond, a submission is refused (429) until one finishes
    media: Path | None = None  # a folder whose files the page may pick instead of uploading
    device: str = "auto"
    threads: int | None = None
    token: str | None = None  # required on every request when set (`synthswap serve` always sets one)
    allowed_hosts: tuple[str, ...] | None = ("127.0.0.1", "localhost", "::1")  # Host header check
    port: int = 7860  # names the token's cookie
    run_worker: bool = True


ROUTES = [
    Route("/", pages.index),
    Route("/api/options", routes.options),
    Route("/api/estimate", routes.estimate, methods=["POST"]),
    Route("/api/uploads", routes.upload, methods=["POST"]),
    Route("/api/uploads/{upload_id}", routes.remove_upload, methods=["DELETE"]),
    Route("/api/jobs", routes.list_jobs, methods=["GET"]),
    Route("/api/jobs", routes.new_job, methods=["POST"]),
    Route("/api/jobs/{job_id}", routes.get_job, methods=["GET"]),
    Route("/api/jobs/{job_id}", routes.delete_job, methods=["DELETE"]),
    Route("/api/jobs/{job_id}/cancel", routes.cancel_job, methods=["POST"]),
    Route("/api/jobs/{job_id}/retry", routes.retry_job, methods=["POST"]),
    Route("/api/jobs/{job_id}/synthetic.png", pages.synthetic_grid),
    Route("/jobs/{job_id}/files/{name}", pages.serve_job_file),
    Mount("/static", StaticFiles(directory=pages.STATIC), name="static"),
]


def create_app(settings: Settings) -> Guard:
    """The app over the data directory `settings.data`: its job store, worker and face checker
    live on `app.state`, where the routes find them."""
    settings.data.mkdir(parents=True, exist_ok=True)
    jobs = JobStore(settings.data)
    worker = Worker(jobs, device=settings.device, threads=settings.threads)

    async def sweep_uploads() -> None:
        while True:  # unused uploads expire even when nobody uploads or restarts the server
            await asyncio.sleep(settings.sweep_every_s)
            await run_in_threadpool(jobs.expire_uploads, settings.upload_max_age_s)

    @asynccontextmanager
    async def lifespan(app):
        resumed = jobs.recover(settings.upload_max_age_s)
        if resumed:
            print(f"synthswap serve: resuming job(s) {', '.join(map(str, resumed))} from their last finished stage",
                  flush=True)
        if settings.run_worker:
            worker.start()
        sweeper = asyncio.create_task(sweep_uploads())
        try:
            yield
        finally:
            sweeper.cancel()
            running = worker.current
            if settings.run_worker:
                await run_in_threadpool(worker.stop)
            jobs.close()
            print("synthswap serve: stopped" + (f"; job {running} goes back to the queue and resumes at the next "
                                                f"start" if running else ""), flush=True)

    # One handler for every route: whatever a request raised becomes {"error": ...} with its status.
    handlers = {exc: handle_exception for exc in (Refused, ClientDisconnect, OSError, Exception)}
    app = Starlette(routes=ROUTES, lifespan=lifespan, exception_handlers=handlers)
    app.state.jobs, app.state.worker, app.state.settings = jobs, worker, settings
    app.state.checker = FaceChecker()
    return Guard(app, settings.token, settings.allowed_hosts, settings.port)
