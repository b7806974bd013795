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


def test_behind_hands_results_back_in_order_on_the_callers_thread():
    worker_threads: set[str] = set()

    def square(i: int) -> int:
        worker_threads.add(threading.current_thread().name)
        return i * i

    got = []
    with Behind(depth=2, name="test-behind") as work:
        for i in range(50):
            due = work.submit(lambda i=i: square(i), tag=i)
            assert len(due) == (1 if i >= 2 else 0)  # each result once two later calls are in
            got += due
        got += work.drain()
    assert got == [(i * i, i) for i in range(50)]
    assert all(name.startswith("test-behind") for name in worker_threads)
    assert not [t for t in threading.enumerate() if t.name.startswith("test-behind")]


def test_behind_raises_a_failed_calls_error_where_its_result_is_handed_back():
    def call(i: int) -> int:
        if i == 3:
            raise OSError(28, "No space left on device")
        return i

    handed = []
    with pytest.raises(OSError, match="No space left"):
        with Behind(depth=1, name="test-behind") as work:
            for i in range(100):
                handed += [r for r, _ in work.submit(lambda i=i: call(i))]
    assert handed == [0, 1, 2]
    assert not [t for t in threading.enumerate() if t.name.startswith("test-behind")]
