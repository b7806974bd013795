"""Overlapping a stream's stages on threads: reading ahead of the consumer, and doing the last
stage of each item (e.g. watermark and encode) behind it.

Decoding, OpenCV and numpy release the GIL, so on a 2-core machine a frame can be decoded and
the previous one encoded while the current one goes through the face pipeline. Items stay in
order, memory is bounded by `depth`, and an error on a worker thread is raised in the caller.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
_END = object()
_POLL_S = 0.1  # how often a blocked worker looks whether it should stop


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> bool:
    """Put `item`, waiting while the queue is full; False when told to stop first."""
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def read_ahead(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """The items of `items`, produced on a background thread up to `depth` ahead of the consumer.

    An exception raised while producing is raised here, after the items before it. When the
    consumer stops early, the producer is stopped and joined (and a generator closed)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        source = iter(items)
        try:
            for item in source:
                if not _put(q, (item, None), stop):
                    return
            _put(q, (_END, None), stop)
        except BaseException as exc:  # handed to the consumer, which raises it
            _put(q, (_END, exc), stop)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = q.get()
            if item is _END:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        thread.join()


class Behind:
    """Runs submitted calls in order on one background thread, at most `depth` waiting.

    `submit` raises the first error a call raised (so the caller stops feeding a failed stage),
    and `finish` waits for every call and raises it too. Use as a context manager: leaving it on an
    error stops the thread without running what is still queued."""

    def __init__(self, depth: int = 4, name: str = "behind"):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            call = self._queue.get()
            if call is _END or self._stop.is_set():
                return
            if self._error is not None:
                continue  # a failed stage does no more work; the caller is told on its next submit
            try:
                call()
            except BaseException as exc:
                self._error = exc

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, call: Callable[[], Any]) -> None:
        self._raise_error()
        self._queue.put(call)  # blocks while `depth` calls wait: the worker always drains the queue

    def finish(self) -> None:
        """Wait until every submitted call has run; raise the first error one raised."""
        self._queue.put(_END)
        self._thread.join()
        self._raise_error()

    def __enter__(self) -> Behind:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
            return
        self._stop.set()  # the worker returns at the next call it takes, without running it
        if not self._queue.full():  # only this thread puts, so the queue cannot fill up in between
            self._queue.put(_END)
        self._thread.join()
