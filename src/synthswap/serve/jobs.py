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

Everything here is private to the account that runs the server: folders 0700, files 0600 (the
server also runs under umask 077, so what the jobs write is too). A row that cannot be read is
shown as one "broken" job, which can be deleted; a database file that cannot be read at all is
moved aside (never deleted) and the server starts with an empty queue.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATES = ("creating", "queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")
BROKEN = "broken"  # what a row that cannot be read is shown as
DB_NAME = "synthswap.sqlite"
UPLOAD_MAX_AGE_S = 24 * 3600  # an upload no job took is removed after this


class QueueFull(Exception):
    """More jobs are waiting than the server takes."""


def private_dir(path: Path) -> Path:
    """`path` as a folder only this account can enter (0700), made so if it was not."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path

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
        self.data = private_dir(Path(data))
        self.jobs_dir = private_dir(self.data / "jobs")
        self.uploads_dir = private_dir(self.data / "uploads")
        self._lock = threading.Lock()
        # Bumped by every change to the job list: a page that has seen this version needs nothing new.
        self._epoch, self._version = secrets.token_hex(4), 0
        self._db = self._open()

    def _connect(self, path: Path) -> sqlite3.Connection:
        # One connection shared by the server's threads, always used under the lock.
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA journal_mode=WAL")
            bad = [r[0] for r in db.execute("PRAGMA quick_check").fetchall() if r[0] != "ok"]
            if bad:
                raise sqlite3.DatabaseError(bad[0])
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm"):
            if (self.data / name).exists():
                (self.data / name).chmod(0o600)
        return db

    def _open(self) -> sqlite3.Connection:
        """The database; one that cannot be read is moved aside with its journal, and a new one made."""
        path = self.data / DB_NAME
        try:
            return self._connect(path)
        except sqlite3.DatabaseError as exc:
            aside = path.with_name(f"{DB_NAME}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}")
            for suffix in ("", "-wal", "-shm"):
                if Path(f"{path}{suffix}").exists():
                    os.rename(f"{path}{suffix}", f"{aside}{suffix}")
            print(f"synthswap serve: {path} cannot be read ({exc}): moved aside to {aside.name}, and the queue "
                  f"starts empty; the jobs' folders in {self.jobs_dir} are kept", file=sys.stderr, flush=True)
            return self._connect(path)

    def _changed(self) -> None:
        self._version += 1

    @property
    def version(self) -> str:
        """Changes whenever the job list does (and at every start)."""
        return f"{self._epoch}.{self._version}"

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

    def recover(self, upload_max_age_s: float = UPLOAD_MAX_AGE_S) -> list[int]:
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
            self._changed()
        self.expire_uploads(upload_max_age_s)
        for partial in self.uploads_dir.glob(".incoming-*"):
            partial.unlink(missing_ok=True)
        for trash in self.jobs_dir.glob(".deleting-*"):  # those hidden above, and any cut off by a stop
            shutil.rmtree(trash, ignore_errors=True)
        return resumed

    # --- uploads --------------------------------------------------------------------------------

    def expire_uploads(self, max_age_s: float = UPLOAD_MAX_AGE_S) -> None:
        """Remove the uploads no job took within `max_age_s` (at start, and before every new upload)."""
        with self._lock:
            old = time.time() - max_age_s
            for row in self._db.execute("SELECT id, file FROM uploads WHERE created < ?", (old,)).fetchall():
                (self.uploads_dir / row["file"]).unlink(missing_ok=True)
                self._db.execute("DELETE FROM uploads WHERE id=?", (row["id"],))

    def uploads_size(self) -> int:
        """Bytes held by uploads no job has taken yet (what the upload quota counts)."""
        with self._lock:
            return int(self._db.execute("SELECT COALESCE(SUM(size), 0) FROM uploads").fetchone()[0])

    def remove_upload(self, upload_id: str) -> bool:
        """Remove an upload no job has taken (the page's "remove" button); False if there is none."""
        with self._lock:
            row = self._db.execute("SELECT file FROM uploads WHERE id=?", (upload_id,)).fetchone()
            if row is None:
                return False
            (self.uploads_dir / row["file"]).unlink(missing_ok=True)
            self._db.execute("DELETE FROM uploads WHERE id=?", (upload_id,))
            return True

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

    def begin_job(self, name: str, options: dict[str, Any], max_waiting: int | None = None) -> int:
        """A new job in the state "creating": its id, for the folder its files go into. QueueFull
        when `max_waiting` jobs are already queued (or being made)."""
        with self._lock:
            if max_waiting is not None:
                waiting = self._db.execute("SELECT COUNT(*) FROM jobs WHERE state IN ('creating', 'queued')")
                if waiting.fetchone()[0] >= max_waiting:
                    raise QueueFull(f"{max_waiting} jobs are already waiting: wait for one to finish, or cancel one")
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
            self._changed()

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

    def list(self, limit: int = 50, before: int | None = None) -> tuple[list[Job], bool]:
        """Up to `limit` jobs, newest first, older than job `before` when given; and whether there
        are more."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs WHERE state!='creating' AND id < ? ORDER BY id DESC LIMIT ?",
                                    (before if before is not None else 2**63 - 1, limit + 1)).fetchall()
        return [_job(r) for r in rows[:limit]], len(rows) > limit

    def take_next(self) -> Job | None:
        """The oldest queued job, now "running" (the worker calls this). A queued job whose row
        cannot be read fails instead."""
        with self._lock:
            while True:
                row = self._db.execute("SELECT * FROM jobs WHERE state='queued' ORDER BY id LIMIT 1").fetchone()
                if row is None:
                    return None
                self._changed()
                if _job(row).state == BROKEN:
                    self._db.execute("UPDATE jobs SET state='failed', message=? WHERE id=?",
                                     (_job(row).message, row["id"]))
                    continue
                # A resumed or retried job keeps its first start: its page counts from there.
                self._db.execute("UPDATE jobs SET state='running', started=COALESCE(started, ?), finished=NULL, "
                                 "attempts=attempts+1 WHERE id=?", (time.time(), row["id"]))
                row = self._db.execute("SELECT * FROM jobs WHERE id=?", (row["id"],)).fetchone()
                return _job(row)

    def finish(self, job_id: int, state: str, message: str = "", summary: dict[str, Any] | None = None) -> None:
        assert state in STATES
        with self._lock:
            self._db.execute("UPDATE jobs SET state=?, message=?, summary=?, finished=?, cancel=0 WHERE id=?",
                             (state, message, json.dumps(summary) if summary is not None else None,
                              time.time() if state in FINISHED else None, job_id))
            self._changed()

    def request_cancel(self, job_id: int) -> str | None:
        """Cancel: a queued job at once, a running one when the worker has stopped it. Returns the
        job's state afterwards, or None if there is no such job."""
        with self._lock:
            self._db.execute("UPDATE jobs SET state='cancelled', finished=?, message='cancelled before it started' "
                             "WHERE id=? AND state='queued'", (time.time(), job_id))
            self._db.execute("UPDATE jobs SET cancel=1 WHERE id=? AND state='running'", (job_id,))
            self._changed()
            row = self._db.execute("SELECT state FROM jobs WHERE id=? AND state!='creating'", (job_id,)).fetchone()
        return row["state"] if row else None

    def retry(self, job_id: int) -> bool:
        """A failed or cancelled job goes back in the queue; its finished stages are kept."""
        with self._lock:
            cur = self._db.execute("UPDATE jobs SET state='queued', message='', cancel=0 "
                                   "WHERE id=? AND state IN ('failed', 'cancelled')", (job_id,))
            self._changed()
        return cur.rowcount == 1

    def delete(self, job_id: int) -> str | None:
        """Remove a job and its files; a running one is marked, and the worker removes it once it has
        stopped it. Returns "deleted", "deleting" (running) or None (no such job)."""
        with self._lock:
            row = self._db.execute("SELECT state FROM jobs WHERE id=? AND state!='creating'", (job_id,)).fetchone()
            if row is None:
                return None
            self._changed()
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
    """The job of a row; a row that cannot be read (a damaged file, a hand edit) is a "broken" job
    with what is wrong as its message, so the rest of the list still shows and it can be deleted."""
    d = dict(row)
    try:
        job = Job(id=d["id"], name=str(d["name"]), state=d["state"], created=float(d["created"]),
                  started=_time(d["started"]), finished=_time(d["finished"]), options=json.loads(d["options"]),
                  inputs=json.loads(d["inputs"]), message=str(d["message"]),
                  summary=json.loads(d["summary"]) if d["summary"] else None, attempts=int(d["attempts"]),
                  cancel=bool(d["cancel"]), remove=bool(d["remove"]))
        if job.state not in STATES or not isinstance(job.options, dict) or not isinstance(job.inputs, dict) \
                or not isinstance(job.summary, (dict, type(None))):
            raise ValueError("a field holds a value no job has")
        return job
    except (ValueError, TypeError, RecursionError) as exc:
        return Job(id=d["id"], name=f"job {d['id']}", state=BROKEN, created=0.0, started=None, finished=None,
                   options={}, inputs={}, message=f"this job's record in the database is damaged ({exc}); delete it",
                   summary=None, attempts=0, cancel=False, remove=False)


def _time(value: Any) -> float | None:
    return None if value is None else float(value)
