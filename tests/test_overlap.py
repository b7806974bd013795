"""The threads convert overlaps its stages on: order kept, errors raised where the caller sees them,
nothing left running; and a converted real video is the same frame for frame as without them."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from synthswap.media import iter_video_frames
from synthswap.overlap import Behind, read_ahead


def _threads_named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def test_read_ahead_yields_real_frames_in_order_and_the_same_pixels(shared_data):
    video = shared_data / "videos" / "people" / "d0.mp4"
    plain = list(iter_video_frames(video, max_frames=20))
    ahead = list(read_ahead(iter_video_frames(video, max_frames=20), depth=3))
    assert [f.index for f in ahead] == [f.index for f in plain]
    assert [f.time_s for f in ahead] == [f.time_s for f in plain]
    assert all(np.array_equal(a.bgr, p.bgr) for a, p in zip(ahead, plain))
    assert not _threads_named("read-ahead")


def test_read_ahead_raises_the_producers_error_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise OSError("disk read failed")

    got = []
    with pytest.raises(OSError, match="disk read failed"):
        for item in read_ahead(items(), depth=1):
            got.append(item)
    assert got == [1, 2]


def test_a_consumer_that_stops_early_stops_and_closes_the_producer():
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    for item in read_ahead(endless(), depth=2):
        if item == 5:
            break
    assert closed.wait(2)
    assert not _threads_named("read-ahead")


def test_behind_runs_calls_in_order_and_finish_waits_for_them():
    done: list[int] = []
    with Behind(depth=2, name="test-behind") as work:
        for i in range(50):
            work.submit(lambda i=i: done.append(i))
    assert done == list(range(50))
    assert not _threads_named("test-behind")


def test_behind_reports_a_failed_call_to_the_caller_and_runs_no_more():
    ran: list[int] = []

    def call(i: int) -> None:
        if i == 3:
            raise OSError(28, "No space left on device")
        ran.append(i)

    with pytest.raises(OSError, match="No space left"):
        with Behind(depth=1, name="test-behind") as work:
            for i in range(100):
                work.submit(lambda i=i: call(i))
    assert ran == [0, 1, 2]  # nothing after the failure
    assert not _threads_named("test-behind")


def test_leaving_behind_on_an_error_does_not_run_what_is_queued():
    started = threading.Event()
    release = threading.Event()
    ran: list[int] = []

    def slow(i: int) -> None:
        started.set()
        release.wait(5)
        ran.append(i)

    with pytest.raises(KeyError):
        with Behind(depth=4, name="test-behind") as work:
            for i in range(4):
                work.submit(lambda i=i: slow(i))
            started.wait(5)
            threading.Timer(0.3, release.set).start()  # the running call ends after the caller has failed
            raise KeyError("caller failed")
    assert ran == [0]
    assert not _threads_named("test-behind")
