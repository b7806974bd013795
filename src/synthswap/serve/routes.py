"""The JSON API: the form's settings, uploads, and the job queue (list, one job with its stages
and progress, submit, cancel, retry, delete). Every refusal is {"error": message}."""

from __future__ import annotations

import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from synthswap.serve import progress
from synthswap.serve.guard import error, json_answer
from synthswap.serve.jobs import Job
from synthswap.serve.options import OUT_NAME, describe, run_options
from synthswap.serve.pages import GAN_SAMPLES, job_file, job_or_404
from synthswap.serve.submit import create_job, media_files
from synthswap.serve.uploads import ROLES, UploadError, extension_for, receive, safe_label, store

DOWNLOADS = (OUT_NAME, "report.html", "report.md", "evaluation.json", "log.txt")


async def options(request: Request) -> Response:
    settings = request.app.state.settings
    return json_answer({"options": describe(), "max_upload_bytes": settings.max_upload_bytes,
                        "media": await run_in_threadpool(media_files, settings.media)})


async def upload(request: Request) -> Response:
    state = request.app.state
    jobs, limit = state.jobs, state.settings.max_upload_bytes
    role = request.query_params.get("role", "")
    if role not in ROLES:
        return error(f"role must be one of {', '.join(ROLES)}")
    label = safe_label(request.query_params.get("name", ""))
    try:
        ext = extension_for(label, role)
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            raise UploadError(f"{label}: the file is larger than the limit of {limit / 2**20:.0f} MB", 413)
        try:
            partial, size = await receive(request.stream(), jobs.uploads_dir, ext, limit)
        except UploadError as exc:
            raise UploadError(f"{label}: {exc}", exc.status) from None
        try:
            checked = await run_in_threadpool(state.checker.check, partial, role, label)
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
        return error(str(exc), exc.status)
    return json_answer({"id": item.id, "label": item.label, "role": item.role, "kind": item.kind,
                        "detail": item.detail, "size": item.size})


async def new_job(request: Request) -> Response:
    state = request.app.state
    try:
        body = await request.json()
    except ValueError:
        return error("the request is not JSON")
    if not isinstance(body, dict):
        return error("the request must be a JSON object")
    data, status = await run_in_threadpool(create_job, state.jobs, state.checker, state.settings.media,
                                           state.settings.device, body)
    if status == 201:
        state.worker.wake()
    return json_answer(data, status)


async def list_jobs(request: Request) -> Response:
    state = request.app.state
    return json_answer({"jobs": [j.public() for j in await run_in_threadpool(state.jobs.list)],
                        "running": state.worker.current})


def job_detail(request: Request, job: Job) -> dict[str, Any]:
    """A job with its stages, training progress, previews, downloads and log tail."""
    state = request.app.state
    job_dir = state.jobs.job_dir(job.id)
    opts = run_options(job_dir, state.settings.device)
    base = f"/jobs/{job.id}/files"

    def url(name: str) -> str | None:
        path = job_file(job_dir, opts, name)
        return f"{base}/{name}?v={path.stat().st_mtime_ns}" if path is not None and path.is_file() else None

    synthetic = progress.synthetic_faces(opts)
    done = job.state == "done"
    return {**job.public(), "stages": progress.stages(job, opts), "loss": progress.loss_curve(opts),
            "preview": url("preview.png"), "gan_samples": url(GAN_SAMPLES),
            "synthetic": {"count": len(synthetic),
                          "url": f"/api/jobs/{job.id}/synthetic.png?n={len(synthetic)}" if synthetic else None},
            "video": url(OUT_NAME) if done else None,
            "report": url("report.html") if done else None,
            "downloads": [{"name": n, "url": url(n)} for n in DOWNLOADS if url(n) and (done or n == "log.txt")],
            "log": progress.log_tail(job_dir), "now": time.time()}


async def get_job(request: Request) -> Response:
    job = job_or_404(request)
    if isinstance(job, Response):
        return job
    try:
        return json_answer(await run_in_threadpool(job_detail, request, job))
    except FileNotFoundError:  # deleted while we looked
        return error("no such job", 404)


async def cancel_job(request: Request) -> Response:
    job = job_or_404(request)
    if isinstance(job, Response):
        return job
    if job.state not in ("queued", "running"):
        return error(f"job {job.id} is {job.state}: only a queued or running job can be cancelled", 409)
    state = request.app.state.jobs.request_cancel(job.id)
    request.app.state.worker.wake()
    return json_answer({"id": job.id, "state": state})


async def retry_job(request: Request) -> Response:
    job = job_or_404(request)
    if isinstance(job, Response):
        return job
    if not request.app.state.jobs.retry(job.id):
        return error(f"job {job.id} is {job.state}: only a failed or cancelled job can be retried", 409)
    request.app.state.worker.wake()
    return json_answer({"id": job.id, "state": "queued"})


async def delete_job(request: Request) -> Response:
    job = job_or_404(request)
    if isinstance(job, Response):
        return job
    result = await run_in_threadpool(request.app.state.jobs.delete, job.id)
    request.app.state.worker.wake()
    return json_answer({"id": job.id, "result": result})
