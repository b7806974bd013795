"""Submitting a job: the form's settings and inputs checked, the job's files put in place, the job
queued. On any refusal nothing of it stays (its uploads stay available for the next try)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from synthswap.media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, MediaError, write_png
from synthswap.run import PIPELINE_ERRORS, prepare
from synthswap.serve.guard import refusal
from synthswap.serve.jobs import JobStore, QueueFull
from synthswap.serve.options import OptionError, parse, run_options, web_person, write_job_file
from synthswap.serve.uploads import FaceChecker, UploadError, extension_for, safe_label

MEDIA_LIST_LIMIT = 500

# (source path, label, detail, upload id or None for a media-folder file) of one input
Input = tuple[Path, str, str, "str | None"]


def media_files(media: Path | None) -> list[str]:
    """The photos and videos of the --media folder the page may pick, by relative name."""
    if media is None:
        return []
    root = media.resolve()
    found = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS and path.is_file():
            found.append(str(path.relative_to(root)))
            if len(found) >= MEDIA_LIST_LIMIT:
                break
    return found


def file_stem(label: str, limit: int = 60) -> str:
    """A file name's stem reduced to letters, digits, '-' and '_' (anything else becomes '_'), for a
    name on the server's disk that still says which of the user's files it was."""
    stem = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in Path(label).stem)
    return stem[:limit] or "file"


def media_path(media: Path | None, relative: str) -> Path:
    """A file of the --media folder, by its relative name; nothing outside it."""
    if media is None:
        raise UploadError("this server has no media folder to pick from (start it with --media DIR)", 400)
    root = media.resolve()
    try:
        path = (root / relative).resolve()
        inside = root in path.parents and path.is_file()
    except (OSError, ValueError):  # a NUL in the name, a name too long for the file system
        inside = False
    if not inside:
        raise UploadError(f"{safe_label(relative)}: not a file of the media folder", 400)
    return path


def _uploaded(jobs: JobStore, upload_id: Any, role: str) -> Input:
    item = jobs.get_upload(str(upload_id)) if isinstance(upload_id, str) and upload_id.isalnum() else None
    if item is None or item.role != role or not (jobs.uploads_dir / item.file).is_file():
        raise UploadError("an uploaded file is no longer on the server (uploads are kept for a day): "
                          "add it again", 400)
    return jobs.uploads_dir / item.file, item.label, item.detail, item.id


def _picked(checker: FaceChecker, media: Path | None, relative: str, role: str) -> Input:
    path = media_path(media, relative)
    extension_for(relative, role)
    return path, relative, checker.check(path, role, relative).detail, None


def create_job(jobs: JobStore, checker: FaceChecker, media: Path | None, device: str, body: dict[str, Any],
               max_waiting: int | None = None) -> tuple[dict[str, Any], int]:
    """Check everything, then put the job's files in place and queue it: (the job, 201), or
    ({"error": message}, status); 429 when `max_waiting` jobs already wait."""
    options = body.get("options") or {}
    if not isinstance(options, dict):
        return {"error": "options must be a JSON object of settings"}, 422
    try:
        values = parse(options)
    except OptionError as exc:
        return {"error": str(exc)}, 400
    subject_ids, subject_media = body.get("subject") or [], body.get("subject_media") or []
    video_id, video_media = body.get("video"), body.get("video_media")
    if not (isinstance(subject_ids, list) and isinstance(subject_media, list)
            and all(isinstance(v, str) for v in [*subject_ids, *subject_media])
            and all(v is None or isinstance(v, str) for v in (video_id, video_media))):
        return {"error": "subject and subject_media must be lists of names, video and video_media names"}, 422
    missing = []
    if not subject_ids and not subject_media:
        missing.append("add at least one photo (or a video) of the subject")
    if not video_id and not video_media:
        missing.append("add the destination video")
    if missing:
        return {"error": "The form is incomplete: " + "; ".join(missing) + "."}, 400
    try:
        subject = [_uploaded(jobs, upload_id, "subject") for upload_id in subject_ids]
        subject += [_picked(checker, media, str(rel), "subject") for rel in subject_media]
        video = _uploaded(jobs, video_id, "video") if video_id else _picked(checker, media, str(video_media), "video")
    except UploadError as exc:
        return {"error": str(exc)}, exc.status
    person = web_person(values["face"])
    try:  # searched before the job exists: a refusal leaves nothing behind
        person_photo = checker.person_photo(video[0], person, video[1]) if person else None
    except (UploadError, MediaError) as exc:
        return {"error": str(exc).replace(str(video[0]), video[1])}, 400
    name = ", ".join(s[1] for s in subject)
    name = (name if len(name) <= 80 else name[:77] + "...") + " → " + video[1]
    try:
        job_id = jobs.begin_job(name, values, max_waiting)
    except QueueFull as exc:
        return {"error": f"The queue is full: {exc}."}, 429
    job_dir = jobs.job_dir(job_id)
    try:
        inputs_dir = job_dir / "inputs"
        job_dir.mkdir(mode=0o700)
        inputs_dir.mkdir(mode=0o700)
        paths = []
        for i, (path, label, _, upload_id) in enumerate([*subject, video]):
            if upload_id is None:
                paths.append(str(path))  # a media-folder file is read where it is
                continue
            role = "video" if i == len(subject) else f"subject_{i}"
            # named after the user's file, so that the report and the log say which photo is which
            target = inputs_dir / f"{role}_{file_stem(label)}{path.suffix}"
            try:
                os.link(path, target)  # the upload itself is removed only once the job is queued
            except OSError:  # a file system without hard links
                shutil.copyfile(path, target)
            paths.append(str(target))
        run_values = dict(values)
        if person_photo is not None:  # the person chosen on the page, as run's --face PHOTO
            run_values["face"] = str(inputs_dir / f"video_person_{person}.png")
            write_png(run_values["face"], person_photo)
        write_job_file(job_dir, paths[:-1], paths[-1], run_values)
        prepare(run_options(job_dir, device))  # the same checks `synthswap run` starts with
    except PIPELINE_ERRORS as exc:
        jobs.abandon_job(job_id)
        if refusal(exc)[1] == 507:
            raise  # a full disk is the server's trouble, not the job's: the app answers 507
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
    job = jobs.get(job_id)
    assert job is not None  # just committed, under the store's lock
    return job.public(), 201
