"""The job queue: jobs and uploads in one SQLite file under the data directory.

    DATA/synthswap.sqlite   this database
    DATA/uploads/           validated uploads not yet part of a job (generated names)
    DATA/jobs/ID/           one job: inputs/, job.json, log.txt, result.json, out.mp4, report.html,
                            out_work/ (the per-stage work directory of `synthswap run`)

A job is created in the state "creating" (its files are being put in place), then "queued";
the worker takes queued jobs in order ("running") and leaves them "done", "failed" or
"cancelled". A job found "running" when the server starts was cut off by a restart or a crash:
it goes back to "queued" and resumes from its stage markers. One lock serialises every access,
so the web handlers and the worker thread never see a half-made transition.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATES = ("creating", "queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    options TEXT NOT NULL,
    inputs TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    summary TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel INTEGER NOT NULL DEFAULT 0,
    remove INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    label TEXT NOT NULL,
    role TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    size INTEGER NOT NULL,
    created REAL NOT NULL
);
"""


@dataclass
class Job:
    id: int
    name: str
    state: str
    created: float
    started: float | None
    finished: float | None
    options: dict[str, Any]
    inputs: dict[str, Any]
    message: str
    summary: dict[str, Any] | None
    attempts: int
    cancel: bool
    remove: bool

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "state": self.state, "created": self.created,
                "started": self.started, "finished": self.finished, "options": self.options,
                "inputs": self.inputs, "message": self.message, "summary": self.summary,
                "attempts": self.attempts, "cancel_requested": self.cancel}


@dataclass
class Upload:
    id: str
    file: str  # name inside DATA/uploads
    label: str  # the client's file name, for display only
    role: str  # "subject" or "video"
    kind: str  # "image" or "video"
    detail: str
    size: int
    created: float


class JobStore:
    def __init__(self, data: str | Path):
        self.data = Path(data)
        self.jobs_dir = self.data / "jobs"
        self.uploads_dir = self.data / "uploads"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # One connection shared by the server's threads, always used under the lock.
        self._db = sqlite3.connect(self.data / "synthswap.sqlite", check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def job_dir(self, job_id: int) -> Path:
        return self.jobs_dir / str(int(job_id))

    def _hide_files(self, job_id: int) -> Path:
        """Take the job's folder out of sight at once (a rename), to be removed with `shutil.rmtree`
        afterwards, outside the lock: nobody sees a job half gone, and nobody waits for the removal."""
        trash = self.jobs_dir / f".deleting-{int(job_id)}-{time.monotonic_ns()}"
        try:
            os.rename(self.job_dir(job_id), trash)
        except FileNotFoundError:
            pass
        return trash

    # --- start-up -------------------------------------------------------------------------------

    def recover(self, upload_max_age_s: float = 24 * 3600) -> list[int]:
        """Put the queue back in order after a restart or a crash; returns the jobs to resume.

        A "creating" job never got all its files: it is removed. A "running" job was cut off: it
        is queued again, and resumes from its stage markers. Uploads never attached to a job are
        removed after a day, partial ones (".incoming-*") at once.
        """
        with self._lock:
            for row in self._db.execute("SELECT id FROM jobs WHERE state='creating'").fetchall():
                self._hide_files(row["id"])
                self._db.execute("DELETE FROM jobs WHERE id=?", (row["id"],))
            resumed = [r["id"] for r in self._db.execute("SELECT id FROM jobs WHERE state='running'").fetchall()]
            self._db.execute("UPDATE jobs SET state='queued', message=? WHERE state='running'",
                             ("interrupted by a server restart: resuming from its last finished stage",))
            # A job being deleted when the server stopped is deleted now.
            for row in self._db.execute("SELECT id FROM jobs WHERE remove=1").fetchall():
                self._hide_files(row["id"])
                self._db.execute("DELETE FROM jobs WHERE id=?", (row["id"],))
            old = time.time() - upload_max_age_s
            for row in self._db.execute("SELECT id, file FROM uploads WHERE created < ?", (old,)).fetchall():
                (self.uploads_dir / row["file"]).unlink(missing_ok=True)
                self._db.execute("DELETE FROM uploads WHERE id=?", (row["id"],))
        for partial in self.uploads_dir.glob(".incoming-*"):
            partial.unlink(missing_ok=True)
        for trash in self.jobs_dir.glob(".deleting-*"):  # those hidden above, and any cut off by a stop
            shutil.rmtree(trash, ignore_errors=True)
        return resumed

    # --- uploads --------------------------------------------------------------------------------

    def add_upload(self, upload: Upload) -> None:
        with self._lock:
            self._db.execute("INSERT INTO uploads VALUES (?,?,?,?,?,?,?,?)",
                             (upload.id, upload.file, upload.label, upload.role, upload.kind, upload.detail,
                              upload.size, upload.created))

    def get_upload(self, upload_id: str) -> Upload | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM uploads WHERE id=?", (upload_id,)).fetchone()
        return Upload(**dict(row)) if row else None

    # --- jobs -----------------------------------------------------------------------------------

    def begin_job(self, name: str, options: dict[str, Any]) -> int:
        """A new job in the state "creating": its id, for the folder its files go into."""
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO jobs (name, state, created, options, inputs) VALUES (?, 'creating', ?, ?, '{}')",
                (name, time.time(), json.dumps(options)))
            assert cur.lastrowid is not None  # an INSERT always sets it
            return int(cur.lastrowid)

    def commit_job(self, job_id: int, inputs: dict[str, Any], used_uploads: list[str]) -> None:
        """The job's files are in place: queue it, and forget the uploads it took over."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("UPDATE jobs SET state='queued', inputs=? WHERE id=?", (json.dumps(inputs), job_id))
            self._db.executemany("DELETE FROM uploads WHERE id=?", [(u,) for u in used_uploads])
            self._db.execute("COMMIT")

    def abandon_job(self, job_id: int) -> None:
        """A job whose creation failed: nothing of it stays."""
        with self._lock:
            trash = self._hide_files(job_id)
            self._db.execute("DELETE FROM jobs WHERE id=?", (job_id,))
        shutil.rmtree(trash, ignore_errors=True)

    def get(self, job_id: int) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id=? AND state!='creating'", (job_id,)).fetchone()
        return _job(row) if row else None

    def list(self) -> list[Job]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs WHERE state!='creating' ORDER BY id DESC").fetchall()
        return [_job(r) for r in rows]

    def take_next(self) -> Job | None:
        """The oldest queued job, now "running" (the worker calls this)."""
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE state='queued' ORDER BY id LIMIT 1").fetchone()
            if row is None:
                return None
            self._db.execute("UPDATE jobs SET state='running', started=?, finished=NULL, attempts=attempts+1 "
                             "WHERE id=?", (time.time(), row["id"]))
            row = self._db.execute("SELECT * FROM jobs WHERE id=?", (row["id"],)).fetchone()
        return _job(row)

    def finish(self, job_id: int, state: str, message: str = "", summary: dict[str, Any] | None = None) -> None:
        assert state in STATES
        with self._lock:
            self._db.execute("UPDATE jobs SET state=?, message=?, summary=?, finished=?, cancel=0 WHERE id=?",
                             (state, message, json.dumps(summary) if summary is not None else None,
                              time.time() if state in FINISHED else None, job_id))

    def request_cancel(self, job_id: int) -> str | None:
        """Cancel: a queued job at once, a running one when the worker has stopped it. Returns the
        job's state afterwards, or None if there is no such job."""
        with self._lock:
            self._db.execute("UPDATE jobs SET state='cancelled', finished=?, message='cancelled before it started' "
                             "WHERE id=? AND state='queued'", (time.time(), job_id))
            self._db.execute("UPDATE jobs SET cancel=1 WHERE id=? AND state='running'", (job_id,))
            row = self._db.execute("SELECT state FROM jobs WHERE id=? AND state!='creating'", (job_id,)).fetchone()
        return row["state"] if row else None

    def retry(self, job_id: int) -> bool:
        """A failed or cancelled job goes back in the queue; its finished stages are kept."""
        with self._lock:
            cur = self._db.execute("UPDATE jobs SET state='queued', message='', cancel=0 "
                                   "WHERE id=? AND state IN ('failed', 'cancelled')", (job_id,))
        return cur.rowcount == 1

    def delete(self, job_id: int) -> str | None:
        """Remove a job and its files; a running one is marked, and the worker removes it once it has
        stopped it. Returns "deleted", "deleting" (running) or None (no such job)."""
        with self._lock:
            row = self._db.execute("SELECT state FROM jobs WHERE id=? AND state!='creating'", (job_id,)).fetchone()
            if row is None:
                return None
            if row["state"] == "running":
                self._db.execute("UPDATE jobs SET cancel=1, remove=1 WHERE id=?", (job_id,))
                return "deleting"
            self._db.execute("DELETE FROM jobs WHERE id=?", (job_id,))
            trash = self._hide_files(job_id)
        shutil.rmtree(trash, ignore_errors=True)
        return "deleted"

    def flags(self, job_id: int) -> tuple[bool, bool]:
        """(cancel requested, delete requested) of a running job (the worker polls this)."""
        with self._lock:
            row = self._db.execute("SELECT cancel, remove FROM jobs WHERE id=?", (job_id,)).fetchone()
        return (bool(row["cancel"]), bool(row["remove"])) if row else (True, True)


def _job(row: sqlite3.Row) -> Job:
    d = dict(row)
    return Job(id=d["id"], name=d["name"], state=d["state"], created=d["created"], started=d["started"],
               finished=d["finished"], options=json.loads(d["options"]), inputs=json.loads(d["inputs"]),
               message=d["message"], summary=json.loads(d["summary"]) if d["summary"] else None,
               attempts=d["attempts"], cancel=bool(d["cancel"]), remove=bool(d["remove"]))
