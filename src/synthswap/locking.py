"""One writer per output folder: an exclusive, non-blocking advisory lock.

    with exclusive_lock(folder, what="faceset"):
        ...  # only this process writes into `folder`

The lock is `fcntl.flock` on `folder/.synthswap.lock`. The kernel drops it when the
holding process exits, however it exits (kill -9 included), so a lock left by a dead
process never blocks anyone. The file holds the holder's pid only so that the
second process can say who holds it. The file is never removed: deleting a lock file
while another process has it open would let two processes hold "the" lock at once.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

LOCK_FILE = ".synthswap.lock"


class LockError(Exception):
    """The folder is being written by another process, or cannot be locked at all."""


class FolderLock:
    """A held lock; `release()` or leaving the `with` block lets it go."""

    def __init__(self, folder: str | os.PathLike, what: str = "folder"):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        try:
            # O_NOFOLLOW: a lock file planted as a symlink must not make us write elsewhere.
            self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise LockError(f"{self.folder}: cannot lock this {what} for writing ({exc.strerror})") from exc
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(self._fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(self._fd)
            self._fd = None
            if not isinstance(exc, BlockingIOError):  # a file system without locks, for one
                raise LockError(f"{self.folder}: cannot lock this {what} ({exc.strerror})") from exc
            raise LockError(
                f"{self.folder}: this {what} is locked by pid {holder} (another synthswap is writing it); "
                f"wait for it to finish or choose another folder"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode("ascii"), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None

    def __enter__(self) -> "FolderLock":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.release()


def exclusive_lock(folder: str | os.PathLike, what: str = "folder") -> FolderLock:
    """Lock an existing folder for writing, or raise LockError naming the holder's pid.

    `what` names the folder in messages ("faceset", "model folder", "work directory").
    """
    return FolderLock(folder, what)


@contextmanager
def locked_output(folder: str | os.PathLike, what: str = "folder") -> Iterator[FolderLock]:
    """Create `folder` if needed and hold its lock while the block writes into it.

    If the block fails and the folder was created here and holds nothing but the lock file,
    the folder is removed again: a refused request leaves nothing behind.
    """
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with exclusive_lock(folder, what) as lock:
            yield lock
    except BaseException:
        if created and [p.name for p in folder.iterdir()] in ([], [LOCK_FILE]):
            (folder / LOCK_FILE).unlink(missing_ok=True)
            folder.rmdir()
        raise
