"""app/read_ahead.py: the items of the iterator, in order, errors where they happened, and a
thread that stops when the consumer does."""

from __future__ import annotations

import threading
import time

import pytest

from app.read_ahead import read_ahead


def test_items_arrive_in_order_and_all_of_them():
    assert list(read_ahead(iter(range(1000)), depth=3)) == list(range(1000))
    assert list(read_ahead(iter([]))) == []


def test_an_error_in_the_source_is_raised_after_the_items_before_it():
    def source():
        yield from range(5)
        raise OSError("chunk 5 unreadable")

    got = []
    with pytest.raises(OSError, match="chunk 5"):
        for x in read_ahead(source(), depth=2):
            got.append(x)
    assert got == [0, 1, 2, 3, 4]


def test_closing_early_stops_the_reader_thread():
    produced = []

    def source():
        for i in range(10_000):
            produced.append(i)
            yield i

    before = threading.active_count()
    gen = read_ahead(source(), depth=2)
    assert [next(gen) for _ in range(3)] == [0, 1, 2]
    gen.close()  # joins the thread
    assert threading.active_count() == before
    n = len(produced)
    time.sleep(0.05)
    assert len(produced) == n <= 3 + 2 + 1  # what was taken, the queue, the one in hand


def test_depth_is_checked():
    with pytest.raises(ValueError, match="depth"):
        list(read_ahead(iter([1]), depth=0))
