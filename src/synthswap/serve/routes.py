"""The JSON API: the form's settings, uploads, and the job queue (list, one job with its stages
and progress, submit, cancel, retry, delete). Every refusal is {"error": message}; what a request
raises becomes one too (guard.handle_exception)."""

from __future__ import annotations

import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from synthswap import space
from synthswap.serve import progress
from synthswap.serve.estimates import estimate_request, planned, time_left
from synthswap.serve.guard import Refused, declared_length, error, json_answer, read_json
from synthswap.serve.jobs import BROKEN, Job, JobStore
from synthswap.serve.options import OUT_NAME, OptionError, describe, presets, run_options, settings_of
from synthswap.serve.pages import GAN_SAMPLES, job_file, job_or_404
from synthswap.serve.submit import create_job, media_files
from synthswap.serve.uploads import ROLES, UploadError, extension_for, receive, safe_label, store
from synthswap.stages import report_files

REPORT_HTML, REPORT_MD = (report_files(OUT_NAME)[kind].name for kind in ("html", "md"))
DOWNLOADS = (OUT_NAME, REPORT_HTML, REPORT_MD, "evaluation.json", "log.txt")
PAGE_SIZE, MAX_PAGE_SIZE = 50, 200  # jobs per answer of GET /api/jobs


def _int_param(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and low <= int(raw) <= high):
        raise Refused(f"{name} must be a whole number from {low} to {high}", 422)
    return int(raw)


async def options(request: Request) -> Response:
    settings = request.app.state.settings
    return json_answer({"options": describe(), "presets": presets(), "max_upload_bytes": settings.max_upload_bytes,
                        "media": await run_in_threadpool(media_files, settings.media)})


async def estimate(request: Request) -> Response:
    """How long a job with the form's settings and inputs would take here (the same body as a new job)."""
    state = request.app.state
    body = await read_json(request)
    try:
        answer = await run_in_threadpool(estimate_request, state.jobs, state.settings.media, state.settings.device,
                                         body)
    except OptionError as exc:
        return error(str(exc), 400)
    return json_answer(answer)


async def upload(request: Request) -> Response:
    state = request.app.state
    jobs, settings = state.jobs, state.settings
    role = request.query_params.get("role", "")
    if role not in ROLES:
        return error(f"role must be one of {', '.join(ROLES)}")
    label = safe_label(request.query_params.get("name", ""))
    try:
        ext = extension_for(label, role)
        await run_in_threadpool(jobs.expire_uploads, settings.upload_max_age_s)
        # Uploads no job has taken yet share a quota: nobody can fill the disk with them.
        used = await run_in_threadpool(jobs.uploads_size)
        limit = max(0, min(settings.max_upload_bytes, settings.upload_quota_bytes - used))
        length = declared_length(request)
        if length is not None and length > limit:
            if limit < settings.max_upload_bytes:
                raise UploadError(f"{label}: uploads no job has used yet take {used / 2**20:.0f} MB of the "
                                  f"{settings.upload_quota_bytes / 2**20:.0f} MB they may; submit a job with them "
                                  f"or wait until they expire", 413)
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
                        "detail": item.detail, "size": item.size, "faces": list(checked.faces),
                        "seen": list(checked.seen), "searched": checked.searched})


async def new_job(request: Request) -> Response:
    state = request.app.state
    body = await read_json(request)
    data, status = await run_in_threadpool(create_job, state.jobs, state.checker, state.settings.media,
                                           state.settings.device, body, state.settings.max_waiting)
    if status == 201:
        state.worker.wake()
    return json_answer(data, status)


async def list_jobs(request: Request) -> Response:
    """A page of the queue, newest first: ?limit=N (default 50) and ?before=ID (the jobs older than
    ID; the answer's `next_before` names the next page). Its ETag changes with the job list only: a
    page that sends it back in If-None-Match gets 304 and no body while nothing has changed."""
    state = request.app.state
    limit = _int_param(request, "limit", PAGE_SIZE, 1, MAX_PAGE_SIZE)
    before = _int_param(request, "before", None, 1, 2**63 - 1)
    tag = f'"{state.jobs.version}.{state.worker.current}.{limit}.{before}"'
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers={"etag": tag, "cache-control": "no-cache"})
    jobs, more = await run_in_threadpool(state.jobs.list, limit, before)
    return json_answer({"jobs": [j.public() for j in jobs], "running": state.worker.current,
                        "next_before": jobs[-1].id if more else None,
                        "disk": await run_in_threadpool(_disk, state.jobs)}, headers={"etag": tag})


_disk_seen: dict[str, dict[str, int]] = {}  # the job list's version -> what the data folder held then


def _disk(jobs: JobStore) -> dict[str, int]:
    """Bytes the app's data folder uses and bytes free on its disk, measured again when the job list
    changes (a walk of every job's files: not at every poll)."""
    if jobs.version not in _disk_seen:
        _disk_seen.clear()
        _disk_seen[jobs.version] = {"used_bytes": space.used_bytes(jobs.data),
                                    "free_bytes": space.free_bytes(jobs.data)}
    return _disk_seen[jobs.version]


async def remove_upload(request: Request) -> Response:
    """An upload taken off the form before any job used it: its file goes now, not when it expires."""
    upload_id = request.path_params["upload_id"]
    if not (upload_id.isascii() and upload_id.isalnum()):
        return error("no such upload", 404)
    if not await run_in_threadpool(request.app.state.jobs.remove_upload, upload_id):
        return error("no such upload (a job took it, or it expired)", 404)
    return json_answer({"id": upload_id, "removed": True})


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
    active = job.state in ("queued", "running")
    expected = planned(state.jobs, state.settings.device, opts) if active else {}
    stages = progress.stages(job, opts, expected)
    left = time_left(expected, stages) if active else None
    return {**job.public(), "settings": settings_of(job.options), "time_left_s": left,
            "stages": stages, "loss": progress.loss_curve(opts),
            "preview": url("preview.png"), "gan_samples": url(GAN_SAMPLES),
            "synthetic": {"count": len(synthetic),
                          "url": f"/api/jobs/{job.id}/synthetic.png?n={len(synthetic)}" if synthetic else None},
            "video": url(OUT_NAME) if done else None,
            "report": url(REPORT_HTML) if done else None,
            "downloads": [{"name": n, "url": url(n)} for n in DOWNLOADS if url(n) and (done or n == "log.txt")],
            "log": progress.log_tail(job_dir), "now": time.time()}


async def get_job(request: Request) -> Response:
    job = job_or_404(request)
    if isinstance(job, Response):
        return job
    if job.state == BROKEN:  # its record cannot be read: nothing more to show than that
        return json_answer({**job.public(), "settings": [], "time_left_s": None, "stages": [], "loss": [],
                            "preview": None, "gan_samples": None,
                            "synthetic": {"count": 0, "url": None}, "video": None, "report": None,
                            "downloads": [], "log": "", "now": time.time()})
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
