"""Overlapping a stream's stages on threads: reading ahead of the consumer, and doing a stage of
each item (e.g. the watermark) behind it, its results handed back in order.

Decoding, OpenCV and numpy release the GIL, so on a 2-core machine a frame can be decoded and
the previous one watermarked while the current one goes through the face pipeline. Items stay in
order, memory is bounded by `depth`, and an error on a worker thread is raised in the caller.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
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
    """Runs calls on one background thread and hands their results back to the caller's thread in
    order, each once `depth` later calls have been submitted (the rest at `drain`).

    `submit(call, tag)` returns the (result, tag) pairs that are due, so the caller does the next stage
    (e.g. encoding, whose output depends on the thread it runs on) itself. An error a call raised is
    raised by the `submit` or `drain` that hands its result back. Leaving the `with` block waits for
    the calls still running and drops their results."""

    def __init__(self, depth: int = 2, name: str = "behind"):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: deque[tuple[Future, Any]] = deque()
        self._depth = depth

    def submit(self, call: Callable[[], T], tag: Any = None) -> list[tuple[T, Any]]:
        self._pending.append((self._pool.submit(call), tag))
        due = []
        while len(self._pending) > self._depth:
            future, done_tag = self._pending.popleft()
            due.append((future.result(), done_tag))
        return due

    def drain(self) -> list[tuple[Any, Any]]:
        due = []
        while self._pending:
            future, tag = self._pending.popleft()
            due.append((future.result(), tag))
        return due

    def __enter__(self) -> Behind:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for future, _ in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True)
