"""The page and the files a job made: GET /, /jobs/ID/files/NAME and the synthetic faces' grid.

Files are only ever served from a fixed list, by job id; where each lies in the job's folder
comes from the stage declarations (`synthswap.stages.RUN_STAGES`), not from paths written here.
"""

from __future__ import annotations

from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from synthswap.run import RunOptions
from synthswap.serve import progress
from synthswap.serve.guard import error
from synthswap.serve.jobs import Job
from synthswap.serve.options import OUT_NAME, run_options
from synthswap.serve.worker import LOG_FILE
from synthswap.stages import EVALUATION, STAGE, report_files

STATIC = Path(__file__).parent / "static"
# The report run writes beside out.mp4 (out_report.html and its pictures, stages.report_files).
REPORT_FILES = tuple(path.name for path in report_files(OUT_NAME).values())
GAN_SAMPLES = "gan_samples.png"  # the personal prior's latest sample grid (its samples/kimgNNNN.N.png)


def job_file(job_dir: Path, opts: RunOptions, name: str) -> Path | None:
    """The file /jobs/ID/files/NAME serves, or None for a name not on the list. The report's
    pictures sit beside it, so its relative links resolve here too."""
    work = opts.work_dir()
    if name == OUT_NAME:
        return STAGE["convert"].path(opts)
    if name in REPORT_FILES:
        return STAGE["evaluate"].path(opts).parent / name
    if name in (f"{EVALUATION}.json", f"{EVALUATION}.md"):
        return work / name
    if name == "preview.png":
        return STAGE["swap"].path(opts) / "preview.png"
    if name == "log.txt":
        return job_dir / LOG_FILE
    if name == GAN_SAMPLES:
        grids = sorted((STAGE["gan"].path(opts) / "samples").glob("kimg*.png"))
        return grids[-1] if grids else None
    return None


def job_or_404(request: Request) -> Job | Response:
    raw = request.path_params["job_id"]
    # Ids are SQLite's 64-bit integers: anything else names no job (and must not reach the query).
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and 0 < int(raw) < 2**63):
        return error("no such job", 404)
    job = request.app.state.jobs.get(int(raw))
    return job if job is not None else error("no such job", 404)


def job_options(request: Request, job: Job) -> RunOptions:
    return run_options(request.app.state.jobs.job_dir(job.id), request.app.state.settings.device)


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})


async def synthetic_grid(request: Request) -> Response:
    job = job_or_404(request)
    if isinstance(job, Response):
        return job
    try:
        faces = progress.synthetic_faces(job_options(request, job))
    except FileNotFoundError:  # deleted while we looked
        return error("no such job", 404)
    if not faces:
        return error("no synthetic faces yet", 404)
    png = await run_in_threadpool(progress.face_grid, faces)
    return Response(png, media_type="image/png", headers={"cache-control": "no-store"})


async def serve_job_file(request: Request) -> Response:
    job = job_or_404(request)
    if isinstance(job, Response):
        return job
    try:
        opts = job_options(request, job)
    except FileNotFoundError:  # deleted while we looked
        return error("no such job", 404)
    path = job_file(request.app.state.jobs.job_dir(job.id), opts, request.path_params["name"])
    if path is None or not path.is_file():
        return error("this file does not exist (yet)", 404)
    media = {".txt": "text/plain; charset=utf-8", ".md": "text/plain; charset=utf-8"}.get(path.suffix)
    return FileResponse(path, media_type=media, headers={"cache-control": "no-store"})
