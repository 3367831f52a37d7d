"""Read a capture ahead of the receiver, on a thread: reading overlaps receiving on two cores.

Replay reads each chunk (HDF5's raw chunk read, the fletcher32 check and the copy out, about a
fifth of the receiver's time on the default profile) and then receives it, one after the other
on one core.  A thread that reads the next chunks while the receiver works costs no start-up
(a read-ahead *process* was tried in session 9: 2.5 s to its first chunk) and releases the
interpreter lock in what takes the time (numba's checksum, numpy's copies, h5py's read), so
on two cores replay takes about the receiver's own time.  The chunks, their order and their
gaps are those of the iterator read: the results are identical.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_END = object()


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


def read_ahead(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """``items`` in order, produced by a daemon thread that keeps up to ``depth`` ready.

    An exception raised by the iterator is raised here, at the item where it happened (what was
    produced before it is delivered first).  Closing this generator early (or an error in the
    consumer) stops the thread at its next item and waits for it, so the source (an open file)
    may be closed right after.
    """
    if depth < 1:
        raise ValueError(f"read-ahead depth must be at least 1, got {depth}")
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # delivered to the consumer, raised there
            put(_Failed(exc))
            return
        put(_END)

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()
