"""Replay's second core: a forked process reads a capture's chunks ahead of the receiver.

The receiver is one thread; reading a ``ci16_le`` capture (``os.preadv`` of whole chunks and
their fletcher32 check, ``captures/ingest.py``) took a quarter to a third of a replay's time on
that same thread.  A reader *thread* did not help (its GIL-holding steps delayed the receiver,
docs/RECEIVER.md), so the reads run in a child process made by ``fork`` that holds no GIL of
ours:

* the child writes each piece of samples straight into a slot of an anonymous shared mapping
  (``mmap``, ``MAP_SHARED``), by raw reads alone (``SlabReader.fill_pairs_raw``: the chunk places
  are listed before the fork, and the child makes no HDF5 call);
* the parent sends ``(slot, start, stop)`` over a pipe, keeps ``depth`` pieces in flight and
  hands the receiver a view of the slot, the same int16 ``[channel, sample, 2]`` that
  ``Capture.read(..., pairs=True)`` gives;
* a slot is asked for again only once nothing refers to it (its CPython reference count, as
  ``dsp.chunks.BufferPool`` decides: the receiver keeps views of recent chunks);
* anything the child could not read and verify, or no free slot, is read by the parent as
  before, so errors name the file as ``Capture.read`` names it.

Not used where it cannot help or is not safe: no ``fork`` (Windows), a file still growing
(SWMR), another layout than the writer's raw-chunk one, or a capture of fewer than two pieces.
The child touches no lock another thread could hold at the fork (no HDF5, no allocation
inside numba, no logging), so a fork from a process with threads is safe here.
"""

from __future__ import annotations

import mmap
import os
import sys
import warnings
from collections.abc import Iterator
from multiprocessing.connection import Connection, Pipe
from types import TracebackType

import numpy as np

from captures.ingest import SlabReader, fletcher32
from captures.reader import Capture

DEPTH = 4
"""Pieces asked of the child ahead of the one the receiver takes next."""
SLOTS = 40
"""Shared slots (a piece each: 3 MiB for three channels of 2**18 samples); pages are touched
only as slots are used, and the lowest free slot is taken first."""
_FREE_REFS = 2  # the slot list and getrefcount's argument


def _serve(reader: SlabReader, slots: list[np.ndarray], conn: Connection) -> None:
    """The child's loop: fill ``slots[i][:, :stop - start]`` for each ``(i, start, stop)`` and
    answer ``(i, ok)``; returns when the parent has closed its end."""
    while True:
        try:
            i, start, stop = conn.recv()
        except (EOFError, OSError):
            return
        try:
            ok = reader.fill_pairs_raw(start, stop, slots[i][:, : stop - start])
        except Exception:  # the parent reads it again and raises what it finds
            ok = False
        conn.send((i, ok))


class ReadAhead:
    """``with ReadAhead(cap, chunk_samples) as pieces``: iterate ``(start, iq, lost)`` as
    ``Capture.iter_chunks(chunk_samples, pairs=True)`` gives them, read ahead by a child process
    where that applies (``active``).  The fork happens on entering, before any thread a caller
    starts afterwards (a progress bar's)."""

    def __init__(self, cap: Capture, chunk_samples: int, depth: int = DEPTH, slots: int = SLOTS):
        if depth < 1 or slots < depth + 1:
            raise ValueError(f"need depth >= 1 and slots > depth, got depth {depth}, slots {slots}")
        self.cap, self.chunk_samples, self.depth, self.n_slots = cap, int(chunk_samples), depth, slots
        self.ranges = list(cap.chunk_ranges(self.chunk_samples))
        self.slots: list[np.ndarray] = []
        self.pid = 0
        self._conn: Connection | None = None
        self.read_here = 0  # pieces the parent read itself (no free slot, or the child failed)

    @property
    def active(self) -> bool:
        return self.pid > 0

    def _applicable(self) -> bool:
        cap = self.cap
        return (
            hasattr(os, "fork")
            and hasattr(os, "sched_setaffinity")
            and len(os.sched_getaffinity(0)) > 1
            and len(self.ranges) > 1
            and cap.datatype == "ci16_le"
            and not cap.grows
            and cap.slab_reader.index_all_chunks()
        )

    def __enter__(self) -> ReadAhead:
        if not self._applicable():
            return self
        shape = (self.cap.n_channels, self.chunk_samples, 2)
        nbytes = int(np.prod(shape)) * 2
        self._mm = mmap.mmap(-1, self.n_slots * nbytes)  # anonymous and shared across the fork
        self.slots = [
            np.ndarray(shape, np.int16, buffer=self._mm, offset=i * nbytes) for i in range(self.n_slots)
        ]
        fletcher32(np.zeros(2, np.uint8))  # the checksum's kernel loaded before the fork
        parent, child = Pipe()
        cpus = os.sched_getaffinity(0)
        reader_cpu = max(cpus)
        with warnings.catch_warnings():  # 3.12+ warns of fork with threads: see the module doc
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: never returns into the caller's code
            code = 1
            try:
                parent.close()
                os.sched_setaffinity(0, {reader_cpu})
                _serve(self.cap.slab_reader, self.slots, child)
                code = 0
            finally:
                os._exit(code)
        child.close()
        # a core each: woken by each other's messages, the scheduler otherwise kept both on one
        self._cpus = cpus
        os.sched_setaffinity(0, cpus - {reader_cpu})
        self.pid, self._conn = pid, parent
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._conn is not None:
            self._conn.close()  # the child reads EOF and leaves
            self._conn = None
        if self.pid > 0:
            os.sched_setaffinity(0, self._cpus)
            os.waitpid(self.pid, 0)
            self.pid = 0

    def _free_slot(self, busy: set[int]) -> int | None:
        for i in range(len(self.slots)):  # not enumerate: its reused tuple holds a reference
            if i not in busy and sys.getrefcount(self.slots[i]) <= _FREE_REFS:
                return i
        return None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray, int]]:
        if not self.active:
            for start, stop, lost in self.ranges:
                yield start, self.cap.read(start, stop, pairs=True), lost
            return
        conn = self._conn
        asked: dict[int, int] = {}  # piece -> slot, in flight, answered in order
        busy: set[int] = set()
        nxt = 0  # the next piece to ask for
        for j, (start, stop, lost) in enumerate(self.ranges):
            nxt = max(nxt, j)
            while nxt < len(self.ranges) and nxt < j + 1 + self.depth:
                slot = self._free_slot(busy)
                if slot is None:
                    break
                a, b, _ = self.ranges[nxt]
                conn.send((slot, a, b))
                asked[nxt], nxt = slot, nxt + 1
                busy.add(slot)
            slot = asked.pop(j, None)
            if slot is not None:
                i, ok = conn.recv()
                if i != slot:
                    raise RuntimeError(f"read-ahead: slot {i} answered where {slot} was expected")
                busy.discard(slot)
                if ok:
                    yield start, self.slots[slot][:, : stop - start], lost
                    continue
            self.read_here += 1
            yield start, self.cap.read(start, stop, pairs=True), lost
