"""Running jobs: one at a time, each in its own process.

Server side, `Worker` is a thread that takes the oldest queued job and runs

    python -m synthswap.serve.worker JOB_DIR

whose output goes to JOB_DIR/log.txt. A job runs in a process of its own so that the server
stays responsive while torch uses every core, and so that a crash of either one leaves the
other's state intact: `synthswap run`'s stage markers and checkpoints in the job's work
directory are what a job resumes from.

Stopping a job (cancel, delete, server shutdown) sends it SIGINT: the trainers save a
checkpoint and the stage stays "pending", so a retry or the next server start resumes it. If
the server dies without stopping it (kill -9), the job process notices it has lost its
parent and interrupts itself the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from synthswap import atomic
from synthswap.serve.jobs import Job, JobStore

RESULT_FILE = "result.json"  # written by the job process: {"summary": ...} or {"error": ...}
LOG_FILE = "log.txt"
EXIT_REFUSED = 1  # run() refused the job with a message (bad input, a model that does not fit, ...)
EXIT_INTERRUPTED = 130


class Worker:
    def __init__(self, store: JobStore, device: str = "auto", threads: int | None = None, stop_grace_s: float = 120):
        self.store = store
        self.device = device
        self.threads = threads
        self.stop_grace_s = stop_grace_s  # how long a stopped job may take to save its checkpoint
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="synthswap-worker", daemon=True)
        self.current: int | None = None

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """A job was queued or flagged: look now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Interrupt the running job (it goes back to the queue) and wait for the thread."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout if timeout is not None else self.stop_grace_s + 10)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            job = self.store.take_next()
            if job is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            self.current = job.id
            try:
                self._run(job)
            finally:
                self.current = None

    def _command(self, job_dir: Path) -> list[str]:
        cmd = [sys.executable, "-u", "-m", "synthswap.serve.worker", str(job_dir), "--device", self.device]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        return cmd

    def _run(self, job: Job) -> None:
        job_dir = self.store.job_dir(job.id)
        (job_dir / RESULT_FILE).unlink(missing_ok=True)
        with open(job_dir / LOG_FILE, "ab") as log:
            log.write(f"--- attempt {job.attempts}, {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
            log.flush()
            # Its own session: a Ctrl-C in the server's terminal reaches the server, which then
            # stops the job itself (and puts it back in the queue), instead of killing both at once.
            proc = subprocess.Popen(self._command(job_dir), stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        interrupted_at = None
        while proc.poll() is None:
            cancel, _ = self.store.flags(job.id)
            if interrupted_at is None and (cancel or self._stopping.is_set()):
                proc.send_signal(signal.SIGINT)
                interrupted_at = time.monotonic()
            elif interrupted_at is not None and time.monotonic() - interrupted_at > self.stop_grace_s:
                proc.kill()
            self._wake.wait(0.5)
            self._wake.clear()
        self._finish(job, proc.returncode, _read_result(job_dir))

    def _finish(self, job: Job, code: int, result: dict) -> None:
        cancel, remove = self.store.flags(job.id)
        if code == 0 and "summary" in result:
            self.store.finish(job.id, "done", "", result["summary"])
        elif cancel:
            self.store.finish(job.id, "cancelled", "cancelled; its finished stages are kept: retry resumes it")
        elif self._stopping.is_set() and code != EXIT_REFUSED:
            self.store.finish(job.id, "queued", "interrupted by a server shutdown: resumes when the server starts")
        elif "error" in result:
            self.store.finish(job.id, "failed", result["error"])
        else:
            self.store.finish(job.id, "failed", f"the job process stopped with exit code {code}; see its log")
        if remove:
            self.store.delete(job.id)


def _read_result(job_dir: Path) -> dict:
    try:
        return json.loads((job_dir / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


# --- the job process ---------------------------------------------------------------------------


def _interrupt_when_orphaned() -> None:
    """If the server dies without stopping us, stop as Ctrl-C would: checkpoint, marker pending."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, daemon=True).start()


def _wait_for_work_dir(work: Path, log, timeout_s: float = 300) -> None:
    """After a crash the previous process of this job may still be saving its checkpoint and
    hold the work directory's lock: wait for it rather than fail."""
    from synthswap.locking import LockError, exclusive_lock

    deadline = time.monotonic() + timeout_s
    said = False
    while work.is_dir():
        try:
            with exclusive_lock(work, "work directory"):
                return
        except LockError as exc:
            if time.monotonic() > deadline:
                raise
            if not said:
                log(f"waiting for the work directory: {exc}")
                said = True
            time.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synthswap.serve.worker",
                                     description="Run one job of `synthswap serve` (started by the server).")
    parser.add_argument("job_dir")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)

    from synthswap import quiet_native_logs

    quiet_native_logs()
    _interrupt_when_orphaned()
    # Heavy imports after the watch is running, so a job stopped while loading still stops.
    import torch

    from synthswap.run import PIPELINE_ERRORS, run
    from synthswap.serve.options import run_options

    if args.threads:
        torch.set_num_threads(args.threads)
    job_dir = Path(args.job_dir)

    def log(line: str) -> None:
        print(line, flush=True)

    try:
        opts = run_options(job_dir, args.device)
        _wait_for_work_dir(opts.work_dir(), log)
        summary = run(opts, log=log)
    except KeyboardInterrupt as exc:  # StageInterrupted: the trainer saved its checkpoint
        log(str(exc) or "interrupted")
        return EXIT_INTERRUPTED
    except PIPELINE_ERRORS as exc:
        log(f"error: {exc}")
        atomic.write_json(job_dir / RESULT_FILE, {"error": str(exc)})
        return EXIT_REFUSED
    atomic.write_json(job_dir / RESULT_FILE, {"summary": summary})
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
