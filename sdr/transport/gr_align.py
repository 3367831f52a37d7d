"""Exact alignment of per-band GNU Radio item streams into ``[channel, sample]`` chunks, with gaps.

Every received item gets a *stream index* (a sample count at the capture rate, counting lost
samples); items of different bands with the same index were sampled at the same instant, and a
chunk is emitted only over indices every band has.  How the index is found (``align``):

``time``
    From the ``rx_time`` tags of the tag header: an ``rx_time`` of ``t`` seconds at item
    offset ``o`` gives the item at offset ``o + k`` the index ``round(t * rate) + k``.  Exact
    across sockets and even across flowgraphs sharing a device time (a timed start, a shared
    PPS).  Each socket waits for its first ``rx_time`` (items before it are discarded), so its
    sink must be connected from the flowgraph's start (PULL, or SUB connected first).
``offset``
    From the tag header's item offset (``nitems_read`` of the sink: items since the flowgraph
    started), which is the same for every output of one multi-channel source.  ``rx_time`` tags
    after the first one on a socket still reveal samples the source lost (a UHD overflow: the
    source re-tags ``rx_time`` after it, while its offsets run on without a hole).
``count``
    Without a tag header: the index is the count of items received on the socket.  Exact only
    if every socket receives from the first item on and loses nothing: PULL sockets (the PUSH
    sinks block rather than drop) connected before the flowgraph starts.  Losses are invisible.
``auto``
    ``time`` if the first message of every socket carries an ``rx_time`` tag on its first item,
    else ``offset`` (with tag headers); ``count`` without tag headers.

Gaps: indices missing on any socket (an offset jump after ZeroMQ dropped messages, a jump in
``rx_time``, a socket's buffer overflowing while another stalls) are lost for every band; the
next chunk carries their number as ``lost_before`` (what :class:`~sdr.transport.IQSubscriber`
reports for our own stream).  An offset or ``rx_time`` going backwards on a socket (a flowgraph
restart) restarts the alignment: the next chunk is the first of a new stream.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from sdr.transport.gr_tags import GrTag, rx_time_s

ALIGN_MODES = ("auto", "time", "offset", "count")


class AlignedChunk(NamedTuple):
    """``iq``: ``[channel, sample]`` complex64, or ``[channel, sample, 2]`` int16 (sc16)."""

    index: int  # stream index of the first sample (absolute device samples in ``time`` mode)
    capture_index: int  # index - the index of the stream's first aligned sample
    lost_before: int
    iq: np.ndarray
    new_stream: bool


class Restart(Exception):
    """A socket went backwards: the alignment starts over."""


@dataclass
class _Lane:
    segments: deque = field(default_factory=deque)  # (start_index, items [n] or [n, 2])
    buffered: int = 0
    end: int | None = None  # index after the last buffered item
    gapped: bool = False  # a buffered segment may not follow on from the one before
    base: int = 0  # index = item offset + base
    ref: tuple[int, int] | None = None  # (offset, index) of the last rx_time tag
    next_offset: int | None = None
    count: int = 0  # items received (``count`` mode offsets)
    pending: list = field(default_factory=list)  # messages before the mode is decided


class Aligner:
    """Aligns ``n_lanes`` item streams; :meth:`add` messages, :meth:`take` chunks.

    ``item_shape``: ``()`` for complex64 items, ``(2,)`` for int16 pairs.  ``tagged``: messages
    carry GNU Radio tag headers (their offsets and tags are given to :meth:`add`).
    """

    def __init__(
        self,
        n_lanes: int,
        capture_rate_hz: float,
        *,
        align: str = "auto",
        tagged: bool = True,
        dtype: np.dtype | type = np.complex64,
        item_shape: tuple[int, ...] = (),
        chunk_samples: int = 1 << 18,
        max_buffer_samples: int = 1 << 24,
    ):
        if align not in ALIGN_MODES:
            raise ValueError(f"align must be one of {ALIGN_MODES}, got {align!r}")
        if align in ("time", "offset") and not tagged:
            raise ValueError(f"align {align!r} needs tag headers (pass_tags=True on the GNU Radio sinks)")
        self.n_lanes, self.align, self.tagged = n_lanes, align, tagged
        self.rate = Fraction(capture_rate_hz)
        self.dtype, self.item_shape = np.dtype(dtype), tuple(item_shape)
        self.chunk_samples, self.max_buffer_samples = chunk_samples, max_buffer_samples
        self.restarts = 0
        self.overflow_samples = 0
        self.lane_lost = Counter()  # samples missing on each lane (by lane number)
        self.lane_overflow = Counter()  # samples a lane dropped while waiting for another
        self._reset()

    def _reset(self) -> None:
        self.mode = "count" if not self.tagged else (None if self.align == "auto" else self.align)
        self.lanes = [_Lane() for _ in range(self.n_lanes)]
        self.cursor: int | None = None
        self.origin = 0
        self._lost = 0
        self._new = True

    def _index_of_time(self, value: object) -> int:
        whole, frac = rx_time_s(value)
        return round(whole * self.rate + Fraction(frac) * self.rate)

    # ----- input ----------------------------------------------------------------------------------
    def add(self, lane: int, offset: int | None, items: np.ndarray, tags: list[GrTag] = ()) -> bool:
        """One message of ``lane``; ``offset`` is its tag header's (``None`` untagged).

        Returns ``False`` if it restarted the alignment (a socket went backwards).
        """
        ln = self.lanes[lane]
        if offset is None:
            offset = ln.count
        ln.count += len(items)
        try:
            if self.mode is None:
                ln.pending.append((offset, items, tags))
                if all(x.pending for x in self.lanes):
                    self._decide()
            else:
                self._ingest(ln, offset, items, tags)
        except Restart:
            self.restarts += 1
            self._reset()
            self.add(lane, offset if self.tagged else None, items, tags)
            return False
        return True

    def _decide(self) -> None:
        def timed(msg: tuple) -> bool:
            return any(t.key == "rx_time" and t.offset == msg[0] for t in msg[2])

        self.mode = "time" if all(timed(ln.pending[0]) for ln in self.lanes) else "offset"
        for ln in self.lanes:
            pending, ln.pending = ln.pending, []
            for offset, items, tags in pending:
                self._ingest(ln, offset, items, tags)  # a Restart here propagates to add()

    def _ingest(self, ln: _Lane, offset: int, items: np.ndarray, tags: list[GrTag]) -> None:
        n = len(items)
        if ln.next_offset is not None and offset < ln.next_offset:
            raise Restart
        ln.next_offset = offset + n
        if not tags and (self.mode != "time" or ln.ref is not None):  # the common case
            self._append(ln, offset + ln.base, items)
            return
        cuts = [offset]
        rx = sorted(
            (t.offset, t.value) for t in tags if t.key == "rx_time" and offset <= t.offset < offset + n
        )
        bases = [ln.base]
        for o, value in rx:
            index = self._index_of_time(value)
            if ln.ref is None:
                if self.mode == "time":
                    ln.base = index - o
            else:
                jump = index - (ln.ref[1] + o - ln.ref[0])
                if jump < 0:
                    raise Restart
                ln.base += jump
            ln.ref = (o, index)
            if o > cuts[-1]:
                cuts.append(o)
                bases.append(ln.base)
            else:
                bases[-1] = ln.base
        if self.mode == "time" and ln.ref is None:
            return  # before this socket's first rx_time: no index yet
        cuts.append(offset + n)
        for i, base in enumerate(bases):
            a, b = cuts[i] - offset, cuts[i + 1] - offset
            if b > a:
                self._append(ln, cuts[i] + base, items[a:b])

    def _append(self, ln: _Lane, start: int, items: np.ndarray) -> None:
        if ln.end is not None and start != ln.end:
            ln.gapped = True
        ln.segments.append((start, items))
        ln.end = start + len(items)
        ln.buffered += len(items)
        while ln.buffered > self.max_buffer_samples and len(ln.segments) > 1:
            _, dropped = ln.segments.popleft()
            ln.buffered -= len(dropped)
            self.overflow_samples += len(dropped)
            self.lane_overflow[self.lanes.index(ln)] += len(dropped)

    # ----- output ---------------------------------------------------------------------------------
    def _trim(self, ln: _Lane, index: int) -> None:
        while ln.segments:
            start, seg = ln.segments[0]
            if start + len(seg) <= index:
                ln.segments.popleft()
                ln.buffered -= len(seg)
            elif start < index:
                ln.segments[0] = (index, seg[index - start :])
                ln.buffered -= index - start
                break
            else:
                break

    @staticmethod
    def _run(ln: _Lane, index: int) -> tuple[int, bool]:
        """Samples available contiguously from ``index``, and whether a gap follows them."""
        n = 0
        for start, seg in ln.segments:
            if start != index + n:
                return n, True
            n += len(seg)
        ln.gapped = False  # every buffered segment follows on
        return n, False

    def take(self, flush: bool = False) -> AlignedChunk | None:
        """The next aligned chunk: ``chunk_samples`` long, shorter before a gap or with ``flush``."""
        while True:
            if self.mode is None or any(not ln.segments for ln in self.lanes):
                return None
            if (  # cheap test first: no full chunk buffered and no gap to stop at
                not flush
                and self.cursor is not None
                and min(ln.buffered for ln in self.lanes) < self.chunk_samples
                and not any(ln.gapped for ln in self.lanes)
            ):
                return None
            starts = [ln.segments[0][0] for ln in self.lanes]
            if self.cursor is None:
                self.cursor = self.origin = max(starts)
            for ln in self.lanes:
                self._trim(ln, self.cursor)
            if any(not ln.segments for ln in self.lanes):
                return None
            start = max(ln.segments[0][0] for ln in self.lanes)
            if start > self.cursor:  # missing on some lane: lost for every band
                for i, ln in enumerate(self.lanes):
                    self.lane_lost[i] += min(ln.segments[0][0], start) - self.cursor
                self._lost += start - self.cursor
                self.cursor = start
                continue
            runs = [self._run(ln, self.cursor) for ln in self.lanes]
            n = min(r[0] for r in runs)
            gap_next = any(closed and r == n for r, closed in runs)
            if not (n >= self.chunk_samples or gap_next or flush):
                return None
            n = min(n, self.chunk_samples)
            out = np.empty((self.n_lanes, n, *self.item_shape), self.dtype)
            for i, ln in enumerate(self.lanes):
                k = 0
                while k < n:
                    s, seg = ln.segments[0]
                    m = min(len(seg), n - k)
                    out[i, k : k + m] = seg[:m]
                    k += m
                    if m == len(seg):
                        ln.segments.popleft()
                    else:
                        ln.segments[0] = (s + m, seg[m:])
                ln.buffered -= n
            chunk = AlignedChunk(self.cursor, self.cursor - self.origin, self._lost, out, self._new)
            self.cursor += n
            self._lost, self._new = 0, False
            return chunk
